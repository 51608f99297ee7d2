"""A detector on real benchmark deepfakes: the development set, split once into val (choose) and test (report).

The development set is 76 real benchmark videos (FF++ c40 fakes with the originals they were made from,
FF++ actor originals, Celeb-DF v2 face crops) and 76 images, rebuilt from public repositories into a
git-ignored folder by `../shared/devset/build_devset.py`. It is research-only: it measures and chooses
models, it never trains a shipped one.

The split lives in `benchmarks/realworld_split.csv` (relative path, label, dataset, group, pair, part),
written once by `--write-split` with the rule in `assign_parts`: groups are the leakage units (an FF++
pair of identities with every fake made between them and both originals; a Celeb-DF cluster of
identities linked by a swap; an FF++ actor; a DFDC original with its fakes), and within each dataset the
groups holding a fake and the groups holding only reals are each dealt alternately to val and test in
name order. Choose on val; report test.

    python3 ../shared/devset/build_devset.py --mirrors /work/.mirror --out runs/devset
    .venv/bin/python benchmarks/realworld_bench.py --devset runs/devset --part val [--model M.onnx] [--record]
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import re
import sys
from datetime import datetime, timezone
from pathlib import Path

from dfdetect.evaluate.report import interval
from dfdetect.model.resources import default_model
from dfdetect.recipes.media_evaluation import evaluate_media
from dfdetect.records import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS

HERE = Path(__file__).resolve().parent
SPLIT_CSV = HERE / "realworld_split.csv"
BENCHMARKS_MD = HERE.parent / "BENCHMARKS.md"
SECTION = "## Real deepfakes: the development set (benchmarks/realworld_bench.py)"
SPLIT_COLUMNS = ("path", "label", "dataset", "group", "pair", "part")

FFPP_FAKE = re.compile(r"^(?P<method>[A-Za-z0-9]+)_c\d+_(?P<target>\d{3})_(?P<source>\d{3})\.\w+$")
FFPP_ORIGINAL = re.compile(r"^original_youtube_c\d+_(?P<target>\d{3})\.\w+$")
FFPP_ACTOR = re.compile(r"^original_actors_c\d+_(?P<actor>\d+)__")
CELEBDF_FAKE = re.compile(r"^id(?P<target>\d+)_id(?P<source>\d+)_\d+")
CELEBDF_REAL = re.compile(r"^id(?P<target>\d+)_\d+")
DFDC_IMAGE = re.compile(r"^genconvit_\w+?_(?P<first>[a-z]{10})(?:_(?P<second>[a-z]{10}))?_\d+\.")


def leakage_units(relative: str) -> tuple[set[str], str]:
    """The identities a file shows (files sharing one share a group) and its pair key ('' if none).

    FF++ `<method>_c40_<target>_<source>` is made on target's original video with source's face: it
    shows both people, and is paired with `original_youtube_c40_<target>`. Celeb-DF `id<T>_id<S>_<n>` is
    made on id<T>'s video with id<S>'s face. A DFDC fake crop `<fake>_<original>_<k>` pairs with its
    original's crops `<original>_<k>`."""
    name = Path(relative).name
    if match := FFPP_FAKE.match(name):
        return {f"ffpp{match['target']}", f"ffpp{match['source']}"}, f"ffpp{match['target']}"
    if match := FFPP_ORIGINAL.match(name):
        return {f"ffpp{match['target']}"}, f"ffpp{match['target']}"
    if match := FFPP_ACTOR.match(name):
        return {f"actor{int(match['actor'])}"}, ""
    if match := CELEBDF_FAKE.match(name):
        return {f"celebdf{match['target']}", f"celebdf{match['source']}"}, ""
    if match := CELEBDF_REAL.match(name):
        return {f"celebdf{match['target']}"}, ""
    if match := DFDC_IMAGE.match(name):
        original = match["second"] or match["first"]
        return {f"dfdc_{original}"}, f"dfdc_{original}"
    if name.startswith("cyshih704_"):  # one FF++ c23 real/fake pair from one repository
        return {"cyshih704"}, "cyshih704"
    return {f"file:{relative}"}, ""


def group_files(relatives: list[str]) -> dict[str, str]:
    """Each file's group: the connected component of files linked by a shared identity (union-find)."""
    parent: dict[str, str] = {}

    def root(node: str) -> str:
        while parent.setdefault(node, node) != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    units = {relative: leakage_units(relative)[0] for relative in relatives}
    for identities in units.values():
        first, *rest = sorted(identities)
        for other in [first, *rest]:
            parent[root(other)] = root(first)
    members: dict[str, list[str]] = {}
    for identity in parent:
        members.setdefault(root(identity), []).append(identity)
    names = {top: "+".join(sorted(ids)) for top, ids in members.items()}
    return {relative: names[root(sorted(ids)[0])] for relative, ids in units.items()}


def assign_parts(rows: list[dict]) -> None:
    """Set each row's `part` to val or test: per dataset, deal the groups with a fake, then the groups of
    reals only, alternately to val and test in name order, so both halves hold both classes."""
    by_dataset: dict[str, dict[str, bool]] = {}
    for row in rows:
        groups = by_dataset.setdefault(row["dataset"], {})
        groups[row["group"]] = groups.get(row["group"], False) or row["label"] == "fake"
    part_of: dict[tuple[str, str], str] = {}
    for dataset, groups in by_dataset.items():
        for with_fake in (True, False):
            for i, group in enumerate(sorted(g for g, has_fake in groups.items() if has_fake == with_fake)):
                part_of[dataset, group] = ("val", "test")[i % 2]
    for row in rows:
        row["part"] = part_of[row["dataset"], row["group"]]


def write_split(devset: Path) -> Path:
    """benchmarks/realworld_split.csv from the files under `devset` (<dataset>/<real|fake>/<file>)."""
    files = sorted(p.relative_to(devset).as_posix() for p in devset.rglob("*")
                   if p.suffix.lower() in VIDEO_EXTENSIONS + IMAGE_EXTENSIONS and len(p.relative_to(devset).parts) == 3)
    groups = group_files(files)
    rows = [{"path": f, "label": Path(f).parts[1], "dataset": Path(f).parts[0], "group": groups[f],
             "pair": leakage_units(f)[1]} for f in files]
    assign_parts(rows)
    with SPLIT_CSV.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, SPLIT_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return SPLIT_CSV


def labels_for(devset: Path, part: str, media: str, out: Path) -> Path:
    """A labels CSV for `evaluate --media`: the split's rows of one part and media kind, absolute paths."""
    extensions = {"video": VIDEO_EXTENSIONS, "image": IMAGE_EXTENSIONS}[media]
    with SPLIT_CSV.open() as fh:
        rows = [r for r in csv.DictReader(fh)
                if (part == "all" or r["part"] == part) and Path(r["path"]).suffix.lower() in extensions]
    missing = [r["path"] for r in rows if not (devset / r["path"]).exists()]
    if missing:
        sys.exit(f"{len(missing)} development-set files missing under {devset} (first: {missing[0]}); "
                 "build it with `python3 ../shared/devset/build_devset.py --mirrors /work/.mirror --out runs/devset`")
    out.mkdir(parents=True, exist_ok=True)
    labels = out / "labels.csv"
    with labels.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, ("path", "label", "dataset", "group", "pair"))
        writer.writeheader()
        writer.writerows({**{k: r[k] for k in ("label", "dataset", "group", "pair")},
                          "path": str((devset / r["path"]).resolve())} for r in rows)
    return labels


def evaluate_part(devset: Path, model: str, part: str, media: str, out: Path, frames: int | None = None) -> dict:
    """`evaluate --media` of one part of the split with `model`; writes under `out`, returns the metrics."""
    return evaluate_media(labels_for(devset, part, media, out), model, out / "eval", frames=frames)


def summary_line(name: str, metrics: dict) -> str:
    """One markdown table row: overall AUC [CI], per dataset, pairs won."""
    overall = metrics["overall"]
    parts = ", ".join(f"{dataset} {block['auc']:.3f}" if block["auc"] is not None else f"{dataset} –"
                      for dataset, block in metrics["per_dataset"].items())
    pairs = metrics["pairs"].get("all")
    won = f"{pairs['fake_above_real']:.2f} of {pairs['pairs']}" if pairs else "–"
    auc = "–" if overall["auc"] is None else f"{overall['auc']:.3f}"
    return f"| {name} | {overall['n']} | {auc} | {interval(overall['auc_ci95'])} | {parts} | {won} |"


def record_row(line: str) -> None:
    """Add a row to this benchmark's table in BENCHMARKS.md (made at the end of the file the first time)."""
    lines = BENCHMARKS_MD.read_text().rstrip("\n").split("\n")
    if SECTION not in lines:
        lines += ["", SECTION, "",
                  "`.venv/bin/python benchmarks/realworld_bench.py --devset runs/devset --part PART --model MODEL "
                  "--record`; the split is benchmarks/realworld_split.csv.", "",
                  "| model · part | files | AUC | 95 % CI | per dataset | fakes above their real | when, machine |",
                  "|---|---|---|---|---|---|---|"]
    at = lines.index(SECTION) + 1
    while at < len(lines) and not lines[at].startswith("## "):
        at += 1
    while not lines[at - 1].startswith("|"):
        at -= 1
    lines.insert(at, line)
    BENCHMARKS_MD.write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--devset", type=Path, default=Path("runs/devset"), help="folder built by build_devset.py")
    parser.add_argument("--model", default=None, help="model.onnx (default: the shipped starter)")
    parser.add_argument("--name", default=None, help="row name in BENCHMARKS.md (default: the model's folder)")
    parser.add_argument("--part", choices=("val", "test", "all"), default="val")
    parser.add_argument("--media", choices=("video", "image"), default="video")
    parser.add_argument("--out", type=Path, default=None, help="default runs/realworld/<name>/<part>-<media>")
    parser.add_argument("--frames", type=int, default=None, help="frames per video (default: the model's)")
    parser.add_argument("--record", action="store_true", help="append the result row to BENCHMARKS.md")
    parser.add_argument("--write-split", action="store_true", help="(re)write realworld_split.csv and stop")
    parser.add_argument("--labels-only", action="store_true",
                        help="write OUT/labels.csv (the part as an `evaluate --media` labels file) and stop")
    args = parser.parse_args(argv)
    if args.write_split:
        print(f"wrote {write_split(args.devset)}")
        return
    model = args.model
    name = args.name or (Path(model).parent.name if model else "starter (shipped)")
    out = args.out or Path("runs/realworld") / re.sub(r"\W+", "_", name) / f"{args.part}-{args.media}"
    if args.labels_only:
        print(f"wrote {labels_for(args.devset, args.part, args.media, out)}")
        return
    metrics = evaluate_part(args.devset, str(model or default_model()), args.part, args.media, out, args.frames)
    row = summary_line(f"{name} · dev-{args.part} {args.media}s", metrics)
    print("| model · part | files | AUC | 95 % CI | per dataset | fakes above their real |")
    print(row)
    print(f"wrote {out / 'eval' / 'report.html'}")
    if args.record:
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        load = os.getloadavg()[0]
        line = f"{row} {stamp}, {platform.node()}, {os.cpu_count()} cores, load {load:.1f} |"
        record_row(line)


if __name__ == "__main__":
    main()
