"""Copy the London face set from shared data into the package at 256 px, with its landmarks
scaled to match and its attribution beside it (CC BY 4.0 requires the credit to travel with every
copy). Run once by a maintainer; the output is committed so tests and the demo never read
../shared at run time.

    python data_scripts/bundle_london_faces.py --src ../shared/data/london_faces
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from PIL import Image

DEST = Path(__file__).resolve().parents[1] / "dfdetect" / "sample_data" / "london_faces"
ATTRIBUTION = """# Face Research Lab London Set — bundled subset

Images: 102 adults, one neutral (`neutral/NNN_03.jpg`) and one smiling (`smiling/NNN_08.jpg`)
photo each, resized to 256×256 JPEG (quality 92) from the 512×512 copies in the project's shared data.
`landmarks_189.csv`: the 189 WebMorph landmark points of each neutral image, scaled to 256×256.
`attributes.csv`: self-reported age, gender and ethnicity per face id.

Every person gave signed consent for the images to be "used in lab-based and web-based studies in
their original or altered forms and to illustrate research".

Licence: Creative Commons Attribution 4.0 International (CC BY 4.0),
https://creativecommons.org/licenses/by/4.0/. Changes: resized; fakes derived in code.

Attribution: DeBruine, L., & Jones, B. (2017). Face Research Lab London Set (Version 5). figshare.
https://doi.org/10.6084/m9.figshare.5047666.v5
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--src", type=Path, required=True, help="the shared london_faces folder")
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args()
    for sub in ("neutral", "smiling"):
        (DEST / sub).mkdir(parents=True, exist_ok=True)
        for path in sorted((args.src / sub).glob("*.jpg")):
            with Image.open(path) as im:
                scale = args.size / im.width
                im.convert("RGB").resize((args.size, args.size), Image.LANCZOS).save(
                    DEST / sub / path.name, quality=92)
    with open(args.src / "landmarks_189.csv") as fh, open(DEST / "landmarks_189.csv", "w", newline="") as out:
        reader, writer = csv.reader(fh), csv.writer(out)
        header = next(reader)
        writer.writerow(header)
        for row in reader:
            writer.writerow(row[:2] + [f"{float(v) * scale:.2f}" for v in row[2:]])
    (DEST / "attributes.csv").write_bytes((args.src / "attributes.csv").read_bytes())
    (DEST / "ATTRIBUTION.md").write_text(ATTRIBUTION)
    print(f"wrote {DEST}")


if __name__ == "__main__":
    main()
