"""Copy the real face sets from the project's shared data into the package, resized, each with its
licence and attribution beside it (CC BY 4.0 requires the credit to travel with every copy). Run
once by a maintainer; the output is committed so tests, the demo and `make starter-model` never
read ../shared at run time.

    python data_scripts/bundle_faces.py --shared ../shared/data
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from PIL import Image

DEST = Path(__file__).resolve().parents[1] / "dfdetect" / "sample_data"

LONDON = """# Face Research Lab London Set — bundled subset

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

CANADA = """# Young Adult White Faces — bundled copy

Images: 40 young adults (20 women, 20 men; students in Ontario, Canada), frontal, aligned on the
pupils, resized to 256×341 JPEG (quality 92). `attributes.csv`: face_id, face_age, face_gender.

Licence: Creative Commons Attribution 4.0 International (CC BY 4.0),
https://creativecommons.org/licenses/by/4.0/. Changes: resized; fakes derived in code.

Attribution: DeBruine, L., & Jones, B. (2017). Young Adult White Faces with Manipulated Versions
(Version 1). figshare. https://doi.org/10.6084/m9.figshare.4220517.v1
"""

VARIATION = """# Variation faces — bundled copy

One person photographed at different sizes, positions and in-plane rotations (`lisa_lisa1..4`) and
at about 15, 30, 45 and 60 cm from the camera (`zoom_*`), resized to 300×400 JPEG (quality 92).

Licence: CC0 1.0 (public domain dedication), from the webmorphR.stim stimulus package.
"""

ORL = """# The ORL (AT&T) face database — bundled copy

40 people × 10 images (`sN/1..10.png`), 92×112 8-bit greyscale, taken 1992–94 at the Olivetti
Research Laboratory in Cambridge, UK, with varying lighting, expression and glasses; converted from
PGM to PNG losslessly.

Terms: "When using these images, please give credit to Olivetti Research Laboratory."
Credit: Olivetti Research Laboratory (now AT&T Laboratories Cambridge). Reference: F. Samaria and
A. Harter, "Parameterisation of a stochastic model for human face identification", 2nd IEEE
Workshop on Applications of Computer Vision, 1994.
"""


def _save_resized(src: Path, dest: Path, width: int) -> float:
    """Save src resized to `width` (aspect kept) as JPEG; returns the scale applied."""
    with Image.open(src) as im:
        scale = width / im.width
        im.convert("RGB").resize((width, round(im.height * scale)), Image.LANCZOS).save(dest, quality=92)
    return scale


def bundle_london(src: Path, dest: Path, size: int = 256) -> None:
    scale = 1.0
    for sub in ("neutral", "smiling"):
        (dest / sub).mkdir(parents=True, exist_ok=True)
        for path in sorted((src / sub).glob("*.jpg")):
            scale = _save_resized(path, dest / sub / path.name, size)
    with open(src / "landmarks_189.csv") as fh, open(dest / "landmarks_189.csv", "w", newline="") as out:
        reader, writer = csv.reader(fh), csv.writer(out)
        writer.writerow(next(reader))
        for row in reader:
            writer.writerow(row[:2] + [f"{float(v) * scale:.2f}" for v in row[2:]])
    (dest / "attributes.csv").write_bytes((src / "attributes.csv").read_bytes())
    (dest / "ATTRIBUTION.md").write_text(LONDON)


def bundle_flat(src: Path, dest: Path, width: int, attribution: str, extra: tuple[str, ...] = ()) -> None:
    """A folder of JPEGs resized to `width`, the named extra files copied, and its attribution."""
    dest.mkdir(parents=True, exist_ok=True)
    for path in sorted(src.glob("*.jpg")):
        _save_resized(path, dest / path.name, width)
    for name in extra:
        (dest / name).write_bytes((src / name).read_bytes())
    (dest / "ATTRIBUTION.md").write_text(attribution)


def bundle_orl(src: Path, dest: Path) -> None:
    for person in sorted(src.glob("s*")):
        (dest / person.name).mkdir(parents=True, exist_ok=True)
        for path in sorted(person.glob("*.pgm")):
            with Image.open(path) as im:
                im.save(dest / person.name / f"{path.stem}.png", optimize=True)
    (dest / "ATTRIBUTION.md").write_text(ORL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shared", type=Path, required=True, help="the shared data folder")
    args = parser.parse_args()
    bundle_london(args.shared / "london_faces", DEST / "london_faces")
    bundle_flat(args.shared / "canada_faces", DEST / "canada_faces", 256, CANADA, extra=("attributes.csv",))
    bundle_flat(args.shared / "variation_faces", DEST / "variation_faces", 300, VARIATION)
    bundle_orl(args.shared / "orl_faces", DEST / "orl_faces")
    print(f"wrote {DEST}")


if __name__ == "__main__":
    main()
