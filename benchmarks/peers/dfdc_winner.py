"""The DFDC winner's own inference code, run on this machine as the scan benchmark's peer.

Selim Seferbekov's first-place DFDC solution (selimsef/dfdc_deepfake_challenge) predicts with
`kernel_utils.py`: OpenCV reads every frame up to the last of 32 evenly spaced ones, facenet-pytorch's
MTCNN finds faces on each sampled frame at half size, each face is resized and centred, and the
classifier scores each video's faces as one batch; `predict_folder.py` runs `predict_on_video_set`
over a folder with 6 threads. That code is fetched, not copied here, and run unchanged except for
what this machine and today's libraries need (ADAPTATIONS, applied to the source text at import and
each checked to apply): CUDA → CPU, fp16 → fp32, `np.int` → `int`, albumentations 2's new module
path, and one `tf_efficientnet_b0` with random weights (nothing is downloaded; speed does not depend
on the weights) registered in its encoder table in place of the B7 ensemble.

Get the code (the benchmark says this too when `--peer-src` is missing):

    git clone https://github.com/selimsef/dfdc_deepfake_challenge /work/peers/dfdc_winner
    git -C /work/peers/dfdc_winner checkout 89c6290490bac96b29193a4061b3db9dd3933e36
    .venv/bin/python -m pip install --no-deps facenet-pytorch   # its MTCNN; --no-deps keeps our torch

Run alone (prints one JSON line: seconds, videos/s, peak RSS, per-video predictions):

    .venv/bin/python benchmarks/peers/dfdc_winner.py --peer-src /work/peers/dfdc_winner --input-size 380 VIDEO...
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import types
from functools import partial
from pathlib import Path

PEER_REPO = "https://github.com/selimsef/dfdc_deepfake_challenge"
PEER_COMMIT = "89c6290490bac96b29193a4061b3db9dd3933e36"
FRAMES_PER_VIDEO = 32  # predict_folder.py's
NUM_WORKERS = 6  # predict_folder.py's thread count
ENCODER = "tf_efficientnet_b0"
ENCODER_FEATURES = 1280
# (why, text in kernel_utils.py, replacement): each must occur, or the fetched code is not the one pinned.
ADAPTATIONS = (
    ("CUDA → CPU (MTCNN and the batch tensor)", 'device="cuda"', 'device="cpu"'),
    ("fp16 → fp32 (half precision is slower than float on a CPU)", "model(x[:n].half())", "model(x[:n].float())"),
    ("np.int was removed in NumPy 1.24", "dtype=np.int)", "dtype=int)"),
    ("albumentations 2 moved image_compression", "albumentations.augmentations.functional",
     "albumentations.augmentations.pixel.functional"),
)


def how_to_get(target: str = "/work/peers/dfdc_winner") -> str:
    return (f"git clone {PEER_REPO} {target} && git -C {target} checkout {PEER_COMMIT} && "
            ".venv/bin/python -m pip install --no-deps facenet-pytorch")


def peer_commit(peer_src: Path) -> str:
    """The checkout's commit, or "" when it is not a git checkout."""
    done = subprocess.run(["git", "-C", str(peer_src), "rev-parse", "HEAD"], capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else ""


def load_kernel_utils(peer_src: Path) -> types.ModuleType:
    """The peer's kernel_utils module with ADAPTATIONS applied to its source."""
    path = peer_src / "kernel_utils.py"
    source = path.read_text()
    for why, old, new in ADAPTATIONS:
        if old not in source:
            raise SystemExit(f"{path}: {old!r} not found ({why}); check out commit {PEER_COMMIT}")
        source = source.replace(old, new)
    module = types.ModuleType("kernel_utils")
    module.__file__ = str(path)
    exec(compile(source, str(path), "exec"), module.__dict__)
    sys.modules["kernel_utils"] = module
    return module


def b0_classifier(peer_src: Path):
    """The peer's DeepFakeClassifier around a random-weight tf_efficientnet_b0, in eval mode, fp32."""
    import timm
    import torch

    sys.path.insert(0, str(peer_src))
    from training.zoo import classifiers

    classifiers.encoder_params[ENCODER] = {
        "features": ENCODER_FEATURES,
        "init_op": partial(timm.create_model, ENCODER, pretrained=False, drop_path_rate=0.2)}
    torch.manual_seed(0)
    return classifiers.DeepFakeClassifier(encoder=ENCODER).eval()


def predict(peer_src: Path, videos: list[Path], input_size: int) -> dict:
    """predict_folder.py's main on `videos`: the same reader, extractor, strategy and threaded runner.
    Seconds are counted as it counts them: from after the model is built to the last prediction."""
    kernel_utils = load_kernel_utils(peer_src)
    models = [b0_classifier(peer_src)]
    video_reader = kernel_utils.VideoReader()
    face_extractor = kernel_utils.FaceExtractor(lambda x: video_reader.read_frames(x, num_frames=FRAMES_PER_VIDEO))
    started = time.perf_counter()
    predictions = kernel_utils.predict_on_video_set(
        face_extractor=face_extractor, input_size=input_size, models=models,
        strategy=kernel_utils.confident_strategy, frames_per_video=FRAMES_PER_VIDEO,
        videos=[str(v.absolute()) for v in videos], num_workers=NUM_WORKERS, test_dir="")
    seconds = time.perf_counter() - started
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    return {"videos": len(videos), "seconds": round(seconds, 3), "videos_per_second": round(len(videos) / seconds, 4),
            "peak_rss_kb": int(status["VmHWM"].split()[0]), "input_size": input_size, "commit": peer_commit(peer_src),
            "predictions": {str(v): float(p) for v, p in zip(videos, predictions)}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--peer-src", type=Path, required=True, help="checkout of " + PEER_REPO)
    parser.add_argument("--input-size", type=int, default=380, help="classifier input (the winner's: 380)")
    parser.add_argument("videos", nargs="+", type=Path)
    args = parser.parse_args()
    if not (args.peer_src / "kernel_utils.py").exists():
        raise SystemExit(f"{args.peer_src} has no kernel_utils.py; get the peer with: {how_to_get()}")
    print(json.dumps(predict(args.peer_src, args.videos, args.input_size)))


if __name__ == "__main__":
    main()
