#!/usr/bin/env bash
# The scanner on a machine with an NVIDIA GPU, in one command (from the repository root):
#
#     bash benchmarks/gpu_bench.sh [OUT_DIR]          # default runs/gpu_bench
#
# 1. model only: EfficientNet-B4 at 380 px (random weights; speed does not depend on them), its fp16
#    sibling, the session exactly as `dfdetect scan --device cuda` opens it (TensorRT → CUDA, IO
#    binding, TensorRT engines cached in OUT_DIR/trt so the second run skips the minutes-long build),
#    crops/s at batch 32, 64 and 128, fp16 and fp32;
# 2. end to end: `dfdetect scan --device cuda` over 24 synthetic 10 s clips (720p and 1080p, one
#    moving face, benchmarks/make_clips.py), default decode workers (cores − 1, at most 8), batch 64;
#    videos/s, faces/s and the providers that ran, from the run manifest.
#
# Needs onnxruntime-gpu in .venv (`make setup EXTRAS=gpu,dev`; the CPU and GPU builds of ONNX Runtime
# cannot be installed together); the TensorRT provider also needs TensorRT's libraries (pip install
# tensorrt-cu12), and without them ONNX Runtime runs on CUDA alone and the output says so.
#
# Expected (estimates from published EfficientNet-B4 throughput, NOT measured here: no GPU was lent
# when this was written; replace them with the first real run's numbers in BENCHMARKS.md):
#   model only, B4@380 fp16, batch 64: ~1500 crops/s on CUDA, ~3000 crops/s with TensorRT (A100 class);
#                                      fp32 about half of that
#   end to end, 16 cores: ~10–20 videos/s, bound by CPU decoding and detection, not by the GPU
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/gpu_bench}
PY=.venv/bin/python
mkdir -p "$OUT"
date -u +"%Y-%m-%dT%H:%M:%SZ on $(hostname): $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
[ -x "$PY" ] || make setup EXTRAS=gpu,dev
if ! "$PY" -c "import onnxruntime as o, sys; sys.exit('CUDAExecutionProvider' not in o.get_available_providers())"; then
    echo "onnxruntime in .venv has no CUDA provider: rm -rf .venv && make setup EXTRAS=gpu,dev" >&2
    exit 2
fi

"$PY" - "$OUT" <<'EOF'
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, ".")
from benchmarks.scan_bench import export_random  # noqa: E402
from dfdetect.model.session import OnnxModel  # noqa: E402

out = Path(sys.argv[1])
model = out / "tf_efficientnet_b4_380.onnx"
if not model.exists():
    export_random(out, input_size=380, backbone="tf_efficientnet_b4", fp16=True)
for precision in ("fp16", "fp32"):
    session = OnnxModel(model, device="cuda", precision=precision, trt_cache=out / "trt")
    for batch_size in (32, 64, 128):
        batch = np.random.default_rng(0).standard_normal((batch_size, 3, 380, 380)).astype(np.float32)
        session.logits(batch)  # engine build (TensorRT, first run) and warm-up
        done, started = 0, time.perf_counter()
        while time.perf_counter() - started < 10:
            session.logits(batch)
            done += batch_size
        print(f"model only B4@380 {precision} batch {batch_size}: {done / (time.perf_counter() - started):.0f} "
              f"crops/s on {session.providers[0]} ({session.path.name})", flush=True)
EOF

"$PY" benchmarks/make_clips.py --out "$OUT/clips" --count 24 > /dev/null
rm -f "$OUT"/scan.jsonl*
DFDETECT_TRT_CACHE="$OUT/trt" "$PY" -m dfdetect scan "$OUT/clips" --model "$OUT/tf_efficientnet_b4_380.onnx" \
    --out "$OUT/scan.jsonl" --device cuda --batch-size 64
"$PY" -c "
import json, sys
m = json.load(open(sys.argv[1]))
print(f\"end to end: {m['throughput']['files_per_second']:.2f} videos/s, {m['throughput']['faces_per_second']:.0f} \"
      f\"faces/s, {m['model']['precision']} on {m['model']['providers'][0]}, {m['arguments']['workers'] or 'default'} \"
      f\"decode workers, batch {m['arguments']['batch_size']}\")" "$OUT/scan.jsonl.manifest.json"
echo "load after: $(cut -d' ' -f1 /proc/loadavg)"
