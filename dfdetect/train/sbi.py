"""Fakes made from real faces, so a detector can be trained without a deepfake dataset.

Self-blended images (Shiohara & Yamasaki, CVPR 2022): a face blended with a slightly altered copy of
itself carries the generic traces of face swapping — a blending boundary, a colour and sharpness
mismatch, a small misalignment — without the fingerprint of any one generator, which is why detectors
trained on them generalise to unseen methods. Identity swaps paste another real person's face, aligned
by landmarks, adding the identity mismatch that self-blending cannot show.

Every function draws its randomness from the numpy Generator it is given and nowhere else, so a seed
fixes the output. Pixels where the mask is 0 are returned bit-identical (before the optional JPEG), so
the label "fake" is carried only by the face region.
"""

from __future__ import annotations

import cv2
import numpy as np

from dfdetect.errors import DfdetectError
from dfdetect.media.quality import greyscale, jpeg

# The SBI paper's draw: a full replacement half the time, a partial blend otherwise. Equal weights
# made a quarter of the fakes 0.25 blends, the faintest kind and the first a codec wipes out.
BLEND_RATIOS = (0.25, 0.5, 0.75, 1.0, 1.0, 1.0)

# WebMorph FRL 189-point template: ears (115-124), hair outline and neck (145-157, 183, 184) lie outside
# the face; a hull over them would also blend hair and background.
_WEBMORPH_OFF_FACE = frozenset([*range(115, 125), *range(145, 158), 183, 184])
WEBMORPH_FACE_POINTS = np.array([i for i in range(189) if i not in _WEBMORPH_OFF_FACE])
MIN_LANDMARKS = 5
Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in image pixels


def face_outline(landmarks: np.ndarray) -> np.ndarray:
    """Points whose convex hull is the face region, from any supported landmark set.

    189 WebMorph points lose the hair, ear and neck points. The 6 BlazeFace keypoints (eyes, nose,
    mouth, ears) span only the middle of the face, so an ellipse reaching from the forehead to the
    chin is added around them. Other sets (≥5 points, e.g. 68-point or 5-point models) are used as
    they are.
    """
    points = np.asarray(landmarks, np.float32).reshape(-1, 2)
    if len(points) == 189:
        return points[WEBMORPH_FACE_POINTS]
    if len(points) == 6:
        return np.vstack([points, _blazeface_ellipse(points)])
    return points


def _blazeface_ellipse(points: np.ndarray, num_points: int = 24) -> np.ndarray:
    """An ellipse around a face from its BlazeFace keypoints, oriented along the eyes→mouth axis.

    Proportions of a frontal face: the chin lies about 0.6 eye-to-mouth distances below the mouth and
    the hairline about 0.9 above the eyes; the ears mark the face's width.
    """
    right_eye, left_eye, _nose, mouth, right_ear, left_ear = points.astype(np.float64)
    eye_mid = (right_eye + left_eye) / 2.0
    down = mouth - eye_mid
    length = max(float(np.hypot(*down)), 1e-6)
    unit_down = down / length
    unit_across = np.array([-unit_down[1], unit_down[0]])
    half_width = max(abs(float((left_ear - right_ear) @ unit_across)) / 2.0, length) * 1.05
    centre = eye_mid + 0.35 * down
    angles = np.linspace(0.0, 2.0 * np.pi, num_points, endpoint=False)
    ellipse = (centre + np.outer(np.cos(angles), unit_across * half_width)
               + np.outer(np.sin(angles), unit_down * length * 1.3))
    return ellipse.astype(np.float32)


def face_mask(shape: tuple[int, ...], landmarks: np.ndarray | None, box: Box | None = None,
              rng: np.random.Generator | None = None) -> np.ndarray:
    """Soft HxW float32 mask in [0, 1] of the face region: 1 inside, falling smoothly to exactly 0.

    The region is the convex hull of the landmarks (see face_outline), or the ellipse inscribed in the
    box when fewer than 5 landmarks are known. With an rng the boundary is elastically deformed and
    blurred by a random amount, so a detector cannot learn one fixed blending contour; without one it
    is only softened.
    """
    height, width = shape[:2]
    mask = np.zeros((height, width), np.float32)
    if landmarks is not None and len(np.asarray(landmarks).reshape(-1, 2)) >= MIN_LANDMARKS:
        outline = face_outline(landmarks)
        cv2.fillConvexPoly(mask, cv2.convexHull(np.round(outline).astype(np.int32)), 1.0)
        face_size = float(np.ptp(outline, axis=0).max())
    elif box is not None:
        x0, y0, x1, y1 = (float(v) for v in box)
        centre = (round((x0 + x1) / 2.0), round((y0 + y1) / 2.0))
        axes = (max(1, round((x1 - x0) / 2.0)), max(1, round((y1 - y0) / 2.0)))
        cv2.ellipse(mask, centre, axes, 0.0, 0.0, 360.0, 1.0, thickness=-1)
        face_size = max(x1 - x0, y1 - y0)
    else:
        raise DfdetectError("bad_input", f"a face mask needs at least {MIN_LANDMARKS} landmarks or a face box",
                            None, "detect the face first and pass its landmarks or box")
    if rng is None:
        return _soften(mask, 0.05 * face_size)
    mask = _elastic_warp(mask, rng, float(rng.uniform(0.02, 0.05)) * face_size)
    return _soften(mask, float(rng.uniform(0.03, 0.08)) * face_size)


def _elastic_warp(mask: np.ndarray, rng: np.random.Generator, amplitude: float) -> np.ndarray:
    """Move the mask's pixels along a smooth random displacement field (a 4×4 grid of random vectors,
    interpolated bicubically), so the hull's straight edges become irregular curves."""
    height, width = mask.shape
    coarse = rng.uniform(-1.0, 1.0, size=(4, 4, 2)).astype(np.float32)
    field = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC) * np.float32(amplitude)
    grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    return cv2.remap(mask, grid_x + field[..., 0], grid_y + field[..., 1], cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)


def _soften(mask: np.ndarray, sigma: float) -> np.ndarray:
    """Blur the edge and rescale so the core is 1 again; the Gaussian's finite kernel keeps far pixels at 0."""
    blurred = cv2.GaussianBlur(mask, (0, 0), max(sigma, 0.5))
    peak = float(blurred.max())
    if peak > 0:
        blurred /= peak
    return np.clip(blurred, 0.0, 1.0)


def _blend(source: np.ndarray, target: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """alpha·source + (1−alpha)·target as uint8; where alpha is 0 the target's value comes back exactly."""
    weight = alpha[..., None].astype(np.float32)
    mixed = weight * source.astype(np.float32) + (1.0 - weight) * target.astype(np.float32)
    return np.clip(np.rint(mixed), 0, 255).astype(np.uint8)


def _jitter_colour(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Hue, saturation, per-channel shift, contrast and a brightness step of at least 3 levels, so the
    source always differs in colour from the target it is blended into."""
    hsv = cv2.cvtColor(rgb / np.float32(255.0), cv2.COLOR_RGB2HSV)
    hsv[..., 0] = (hsv[..., 0] + np.float32(rng.uniform(-10.0, 10.0))) % np.float32(360.0)
    hsv[..., 1] = np.clip(hsv[..., 1] * np.float32(rng.uniform(0.8, 1.2)), 0.0, 1.0)
    out = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB) * np.float32(255.0)
    out += rng.uniform(-10.0, 10.0, size=3).astype(np.float32)
    contrast = np.float32(rng.uniform(0.85, 1.15))
    brightness = np.float32(rng.choice((-1.0, 1.0)) * rng.uniform(3.0, 15.0))
    mean = np.float32(out.mean())
    return np.clip((out - mean) * contrast + mean + brightness, 0.0, 255.0)


def _jitter_frequency(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Sharpen (half the draws), or blur or down-and-up-scale: the sharpness mismatch a generator's
    output shows. Sharpening as often as softening (as in the SBI paper's Sharpen / RandomDownScale
    choice) keeps "the face is softer" from becoming the cue: a model that learned it would call every
    real face in compressed video fake."""
    height, width = rgb.shape[:2]
    choice = int(rng.integers(4))
    if choice == 0:
        return cv2.GaussianBlur(rgb, (0, 0), float(rng.uniform(0.6, 1.5)))
    if choice == 1:
        factor = float(rng.uniform(0.35, 0.7))
        small = cv2.resize(rgb, (max(1, round(width * factor)), max(1, round(height * factor))),
                           interpolation=cv2.INTER_AREA)
        return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
    detail = rgb - cv2.GaussianBlur(rgb, (0, 0), 1.0)
    return np.clip(rgb + np.float32(rng.uniform(1.0, 3.0)) * detail, 0.0, 255.0)


def _shift_and_scale(rgb: np.ndarray, rng: np.random.Generator, centre: tuple[float, float],
                     face_size: float) -> np.ndarray:
    """Scale by 0.95-1.05 about the face centre and shift by up to 3 % of the face size: the slight
    misalignment between a pasted face and the head it lands on."""
    height, width = rgb.shape[:2]
    matrix = cv2.getRotationMatrix2D(centre, 0.0, float(rng.uniform(0.95, 1.05)))
    matrix[:, 2] += rng.uniform(-0.03, 0.03, size=2) * face_size
    return cv2.warpAffine(rgb, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)


def sharpness(rgb: np.ndarray, region: np.ndarray) -> float:
    """Variance of the Laplacian of the grey image over a boolean region: the high-frequency energy
    that blur, downscaling and compression remove."""
    grey = cv2.cvtColor(np.clip(rgb, 0, 255).astype(np.float32), cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_32F)[region].var())


def _sharpen_or_blur(rgb: np.ndarray, amount: float) -> np.ndarray:
    """amount > 0 sharpens (unsharp mask of that strength), < 0 blurs (Gaussian σ = -2·amount)."""
    if amount >= 0:
        return np.clip(rgb + np.float32(amount) * (rgb - cv2.GaussianBlur(rgb, (0, 0), 1.0)), 0.0, 255.0)
    return cv2.GaussianBlur(rgb, (0, 0), -2.0 * amount)


def blend_matching_sharpness(source: np.ndarray, target: np.ndarray, alpha: np.ndarray, region: np.ndarray,
                             rng: np.random.Generator, spread: float = 0.5) -> np.ndarray:
    """Blend the source in after re-sharpening or re-blurring it so that the *fake's* face is as sharp
    as the real's times a factor drawn log-uniformly from [e^-spread, e^spread]. Resampling, the
    frequency jitter and the blend itself (two slightly misaligned copies averaged) otherwise leave
    ~95 % of self-blended faces softer than their real; a model then learns "soft = fake" and flags
    every real face in compressed video. Matched, a fake is as likely sharper as softer, and what is
    left to learn is the mismatch inside the face and at the blend boundary."""
    want = sharpness(target, region) * float(np.exp(rng.uniform(-spread, spread)))
    low, high = -1.5, 16.0  # the one-parameter family from strong blur to strong sharpening
    for _ in range(10):
        middle = (low + high) / 2.0
        if sharpness(_blend(_sharpen_or_blur(source, middle), target, alpha).astype(np.float32), region) < want:
            low = middle
        else:
            high = middle
    return _blend(_sharpen_or_blur(source, (low + high) / 2.0), target, alpha)


def paste(source: np.ndarray, target: np.ndarray, alpha: np.ndarray, region: np.ndarray, rng: np.random.Generator,
          match_sharpness: bool = True) -> np.ndarray:
    """Blend `source` into `target` through `alpha`, matching the fake face's sharpness to the real's when
    `match_sharpness` (our default, see blend_matching_sharpness) or as it is (the published SBI recipe,
    which keeps the source's blur or resampling against the target: the inner-face resolution drop of
    a real face swap).

    The fake of a black-and-white target stays black and white: a colour-jittered or another person's
    source would tint it, a cue no real greyscale footage carries (on the bundled ORL faces it made
    clean fakes trivial and video-quality ones, whose chroma H.264 flattens, hard)."""
    if match_sharpness:
        fake = blend_matching_sharpness(source, target, alpha, region, rng)
    else:
        fake = _blend(source, target, alpha)
    return greyscale(fake) if is_greyscale(target) else fake


def _core_geometry(mask: np.ndarray) -> tuple[np.ndarray, tuple[float, float], float]:
    """The mask's core (≥ 0.5), its bounding-box centre and size; raises when the face is off the image."""
    core = mask >= 0.5
    if not core.any():
        raise DfdetectError("bad_input", "the face region lies outside the image", None,
                            "check that the landmarks or box are in this image's pixel coordinates")
    ys, xs = np.nonzero(core)
    centre = ((float(xs.min()) + float(xs.max())) / 2.0, (float(ys.min()) + float(ys.max())) / 2.0)
    face_size = float(max(xs.max() - xs.min(), ys.max() - ys.min()) + 1)
    return core, centre, face_size


def mean_change(fake: np.ndarray, real: np.ndarray, region: np.ndarray) -> float:
    """Mean absolute difference in grey levels between two uint8 images over a boolean region."""
    if not region.any():
        return 0.0
    return float(np.abs(fake[region].astype(np.int16) - real[region].astype(np.int16)).mean())


def is_greyscale(rgb: np.ndarray, tolerance: int = 2) -> bool:
    """True when the three channels agree everywhere within `tolerance` levels: a black-and-white image."""
    channels = rgb.astype(np.int16)
    return int(np.abs(channels - channels[..., :1]).max()) <= tolerance


def self_blend(image: np.ndarray, landmarks: np.ndarray | None, rng: np.random.Generator, box: Box | None = None,
               blend_ratios: tuple[float, ...] = BLEND_RATIOS, jpeg_quality: int | None = None,
               min_change: float = 2.0, max_tries: int = 8, match_sharpness: bool = True
               ) -> tuple[np.ndarray, np.ndarray]:
    """A self-blended fake of one uint8 RGB face image, and the float32 mask it was blended through.

    The source is a colour- and frequency-jittered, slightly shifted and scaled copy of the image,
    blended at a ratio drawn from `blend_ratios`. A weak draw (small ratio, mild jitter, a flat face)
    can leave the face almost unchanged, which would put a real image under a fake label; such draws
    are redrawn until the face's core changes by at least `min_change` grey levels on average.
    `jpeg_quality` compresses the result once more, as a fake that was shared would be;
    `match_sharpness` is `paste`'s.
    """
    target = image.astype(np.float32)
    for _ in range(max_tries):
        mask = face_mask(image.shape, landmarks, box, rng)
        core, centre, face_size = _core_geometry(mask)
        source = _shift_and_scale(_jitter_frequency(_jitter_colour(target, rng), rng), rng, centre, face_size)
        ratio = np.float32(rng.choice(blend_ratios))
        fake = paste(source, image, mask * ratio, core, rng, match_sharpness)
        if mean_change(fake, image, core) >= min_change:
            return (fake if jpeg_quality is None else jpeg(fake, jpeg_quality)), mask
    raise DfdetectError("bad_input", f"self-blending changed the face by less than {min_change} grey levels "
                        f"in {max_tries} draws", None, "the face is too small or too flat to make a fake from")


def transfer_colour(source: np.ndarray, target: np.ndarray, region: np.ndarray) -> np.ndarray:
    """The source recoloured so its LAB mean and spread over `region` match the target's there
    (Reinhard et al. 2001), so a pasted face takes the skin tone and lighting of the head it lands on.
    Returns float32 RGB in [0, 255]."""
    source_lab = cv2.cvtColor(source.astype(np.float32) / np.float32(255.0), cv2.COLOR_RGB2LAB)
    target_lab = cv2.cvtColor(target.astype(np.float32) / np.float32(255.0), cv2.COLOR_RGB2LAB)
    source_mean, source_std = source_lab[region].mean(axis=0), source_lab[region].std(axis=0)
    target_mean, target_std = target_lab[region].mean(axis=0), target_lab[region].std(axis=0)
    lab = (source_lab - source_mean) / np.maximum(source_std, 1e-3) * target_std + target_mean
    return np.clip(cv2.cvtColor(lab.astype(np.float32), cv2.COLOR_LAB2RGB) * np.float32(255.0), 0.0, 255.0)


def identity_swap(target: np.ndarray, target_landmarks: np.ndarray, source: np.ndarray,
                  source_landmarks: np.ndarray, rng: np.random.Generator,
                  jpeg_quality: int | None = None, match_sharpness: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The source person's face pasted onto the target's head, and the float32 mask used.

    The source is aligned by the similarity transform (rotation, uniform scale, shift) that best maps
    its landmarks onto the target's, recoloured to the target's skin tone, brought to a sharpness
    drawn around the target's, and blended through the intersection of both faces' masks, so no
    background of the source is pasted.
    """
    target_points = np.asarray(target_landmarks, np.float32).reshape(-1, 2)
    source_points = np.asarray(source_landmarks, np.float32).reshape(-1, 2)
    if target_points.shape != source_points.shape or len(target_points) < MIN_LANDMARKS:
        raise DfdetectError("bad_input", f"landmark sets must match and have at least {MIN_LANDMARKS} points, got "
                            f"{len(target_points)} and {len(source_points)}", None,
                            "use the same landmark model on both faces")
    matrix, _inliers = cv2.estimateAffinePartial2D(source_points, target_points, method=cv2.LMEDS)
    if matrix is None:
        raise DfdetectError("bad_input", "no similarity transform maps the source landmarks onto the target's",
                            None, "check that both landmark sets are in the same point order")
    height, width = target.shape[:2]
    aligned = cv2.warpAffine(source, matrix, (width, height), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_REFLECT_101)
    aligned_points = source_points @ matrix[:, :2].T.astype(np.float32) + matrix[:, 2].astype(np.float32)
    mask = np.minimum(face_mask(target.shape, target_points, rng=rng), face_mask(target.shape, aligned_points))
    core, _centre, _size = _core_geometry(mask)
    fake = paste(transfer_colour(aligned, target, core), target, mask, core, rng, match_sharpness)
    return (fake if jpeg_quality is None else jpeg(fake, jpeg_quality)), mask
