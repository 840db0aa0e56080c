"""The embedded demo data set: landmarks cut from scikit-image's bundled photos.

Every image is rendered from the real photographs that ship with scikit-image
(no download): a dozen distinct "landmarks" are cut from them and pasted into
scenes whose backgrounds and clutter come from the other photos' textures, under
viewpoint (perspective, rotation, scale), photometric, occlusion and crop
changes. Distractor scenes contain no landmark.

The output uses the real formats, so every tool runs on it as on the real data:

  <output_dir>/train/<id>.jpg        training images (GLDv2 layout)
  <output_dir>/train.csv             id,url,landmark_id (every training image)
  <output_dir>/train_clean.csv       landmark_id,images (the clean subset)
  <output_dir>/jpg/<name>.jpg        query and index images (Revisited layout)
  <output_dir>/gnd_demo.mat          imlist, qimlist, gnd (easy/hard/junk, bbx)
  <output_dir>/demo_info.json        what was rendered (landmarks, counts, seed)

Rendering is deterministic given the seed: each image draws from its own
generator seeded by (seed, role, landmark, index), so changing one count does
not change the other images.
"""

import csv
import dataclasses
import io
import json
import logging
import os
from collections.abc import Callable

import cv2
import numpy as np
from PIL import Image

from delf_tf.io import atomic, revisited

__all__ = ["CLUTTER_SOURCES", "LANDMARK_SOURCES", "TEXTURE_SOURCES", "DemoConfig", "DemoDataset",
           "GenerateDemoDataset", "WriteSfmTuplesDatabase", "load_landmark_patches",
           "load_photo", "render_scene"]

logger = logging.getLogger(__name__)

# Where each landmark is cut from: (skimage.data loader name, [y0, y1, x0, x1]
# in that photo's pixels). Regions are far apart from the background sources.
LANDMARK_SOURCES: dict[str, tuple[str, tuple[int, int, int, int]]] = {
    "astronaut": ("astronaut", (10, 420, 30, 420)),
    "coffee": ("coffee", (0, 400, 140, 530)),
    "chelsea": ("chelsea", (0, 300, 70, 390)),
    "rocket": ("rocket", (0, 427, 150, 500)),
    "motorcycle": ("stereo_motorcycle", (110, 490, 90, 650)),
    "hubble": ("hubble_deep_field", (180, 620, 240, 720)),
    "tissue": ("immunohistochemistry", (0, 330, 0, 330)),
    "retina": ("retina", (250, 1150, 80, 980)),
    "cameraman": ("camera", (30, 512, 40, 420)),
    "coins": ("coins", (0, 303, 0, 384)),
    "logo": ("logo", (0, 500, 0, 500)),
    "page": ("page", (0, 191, 0, 384)),
}

# Textures for backgrounds, clutter and occluders: none contains a landmark.
TEXTURE_SOURCES: tuple[str, ...] = (
    "brick", "grass", "gravel", "moon", "cell", "text", "clock", "microaneurysms")
# Colourful clutter objects (pasted whole or in part).
CLUTTER_SOURCES: tuple[str, ...] = ("colorwheel", "text", "clock", "cell", "moon")

_PATCH_SIDE = 256  # longer side of a stored landmark patch, in pixels

# Role codes for the per-image seeds.
_ROLE_TRAIN, _ROLE_QUERY, _ROLE_INDEX, _ROLE_DISTRACTOR = 1, 2, 3, 4


@dataclasses.dataclass(frozen=True)
class DemoConfig:
    """Sizes and counts of the demo set (the flags of tools/make_demo_data.py and
    tools/run_demo.py). The landmarks are the first `num_landmarks` of LANDMARK_SOURCES, in
    their listed order; the noisy training images have their landmark mostly cut off, as
    GLDv2's noisy labels.

    Attributes:
      num_landmarks: Number of landmarks (at most 12).
      image_size: Longer side of every rendered image, in pixels.
      train_per_landmark: Training images per landmark.
      noisy_per_landmark: Training images per landmark that barely show it (in train.csv, not in
        train_clean.csv).
      queries_per_landmark: Query images per landmark.
      easy_per_landmark: Easy index images per landmark.
      hard_per_landmark: Hard index images per landmark.
      junk_per_landmark: Junk index images per landmark (landmark mostly cut off).
      num_distractors: Index images without any landmark.
      seed: Seed of the whole rendering.
    """

    num_landmarks: int = 12
    image_size: int = 256
    train_per_landmark: int = 24
    noisy_per_landmark: int = 2
    queries_per_landmark: int = 2
    easy_per_landmark: int = 4
    hard_per_landmark: int = 3
    junk_per_landmark: int = 1
    num_distractors: int = 40
    seed: int = 0

    def validate(self) -> None:
        if not 1 <= self.num_landmarks <= len(LANDMARK_SOURCES):
            raise ValueError(
                f"num_landmarks must be in [1, {len(LANDMARK_SOURCES)}], got {self.num_landmarks}")
        if self.image_size < 32:
            raise ValueError(f"image_size must be >= 32, got {self.image_size}")
        if self.train_per_landmark < 1 or not (
                0 <= self.noisy_per_landmark < self.train_per_landmark):
            raise ValueError(
                "need train_per_landmark >= 1 and 0 <= noisy_per_landmark < "
                f"train_per_landmark, got {self.train_per_landmark}, {self.noisy_per_landmark}")
        for name in ("queries_per_landmark", "easy_per_landmark", "hard_per_landmark",
                     "junk_per_landmark", "num_distractors"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.queries_per_landmark < 1:
            raise ValueError(f"queries_per_landmark must be >= 1, got {self.queries_per_landmark}")
        if self.easy_per_landmark + self.hard_per_landmark < 1:
            raise ValueError("easy_per_landmark + hard_per_landmark must be >= 1 (queries need "
                             "positives)")


@dataclasses.dataclass(frozen=True)
class _ViewParams:
    """Ranges a scene is drawn from (fractions of the image's shorter side)."""

    scale: tuple[float, float]        # landmark's longer side / shorter image side
    rotation_deg: float               # |rotation| bound
    perspective: float                # corner jitter, fraction of the landmark size
    visible: tuple[float, float]      # fraction of the landmark inside the frame
    occlusion: tuple[float, float]    # fraction of the landmark box covered
    photometric: float                # 0 = none, 1 = strong
    blur: float                       # max Gaussian sigma, pixels
    clutter: tuple[int, int]          # number of clutter objects


_EASY = _ViewParams(scale=(0.55, 0.85), rotation_deg=8, perspective=0.06, visible=(0.97, 1.0),
                    occlusion=(0.0, 0.08), photometric=0.3, blur=0.6, clutter=(1, 3))
_HARD = _ViewParams(scale=(0.35, 0.95), rotation_deg=30, perspective=0.2, visible=(0.75, 1.0),
                    occlusion=(0.15, 0.35), photometric=1.0, blur=1.5, clutter=(2, 5))
_JUNK = _ViewParams(scale=(0.6, 1.0), rotation_deg=20, perspective=0.12, visible=(0.1, 0.25),
                    occlusion=(0.0, 0.2), photometric=0.8, blur=1.2, clutter=(2, 4))
_QUERY_VIEW = _ViewParams(scale=(0.6, 0.85), rotation_deg=5, perspective=0.05, visible=(1.0, 1.0),
                     occlusion=(0.0, 0.0), photometric=0.2, blur=0.3, clutter=(2, 4))
_TRAIN_VIEW = _ViewParams(scale=(0.4, 0.95), rotation_deg=25, perspective=0.16,
                          visible=(0.8, 1.0), occlusion=(0.0, 0.25), photometric=0.8, blur=1.2,
                          clutter=(1, 4))
_NOISY = dataclasses.replace(_JUNK, visible=(0.05, 0.15))
_DISTRACTOR_CLUTTER = (3, 7)


def load_photo(name: str) -> np.ndarray:
    """Loads a bundled scikit-image photo as uint8 RGB [H, W, 3] (no download)."""
    from delf_tf.optional import import_optional  # pylint: disable=g-import-not-at-top

    skimage_data = import_optional("skimage.data", "demo")

    loader: Callable[[], np.ndarray] | None = getattr(skimage_data, name, None)
    if loader is None:
        raise ValueError(f"skimage.data has no image {name!r}")
    image = loader()
    if isinstance(image, tuple):  # stereo_motorcycle: (left, right, disparity)
        image = image[0]
    image = np.asarray(image)
    if image.dtype == bool:
        image = image.astype(np.uint8) * 255
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    if image.shape[2] == 4:  # logo: composite the alpha over white
        alpha = image[..., 3:].astype(np.float32) / 255.0
        image = image[..., :3] * alpha + 255.0 * (1.0 - alpha)
    return np.ascontiguousarray(image[..., :3]).astype(np.uint8)


def load_landmark_patches(num_landmarks: int) -> dict[str, np.ndarray]:
    """The first `num_landmarks` landmarks as uint8 RGB [h, w, 3], longer side 256."""
    patches = {}
    for name, (source, (y0, y1, x0, x1)) in list(LANDMARK_SOURCES.items())[:num_landmarks]:
        crop = load_photo(source)[y0:y1, x0:x1]
        s = _PATCH_SIDE / max(crop.shape[:2])
        size = (round(crop.shape[1] * s), round(crop.shape[0] * s))
        patches[name] = cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
    return patches


class _Materials:
    """The textures and clutter objects scenes are assembled from (grayscale float)."""

    def __init__(self) -> None:
        self.textures = [load_photo(n)[..., 0].astype(np.float32) for n in TEXTURE_SOURCES]
        self.clutter = [load_photo(n).astype(np.float32) for n in CLUTTER_SOURCES]


def _random_crop(rng: np.random.Generator, image: np.ndarray, h: int, w: int) -> np.ndarray:
    """A random crop of `image` resized to [h, w] (area ≥ 1/4 of the smaller side²)."""
    ih, iw = image.shape[:2]
    side = int(rng.uniform(0.35, 1.0) * min(ih, iw))
    aspect = w / h
    ch, cw = (side, min(iw, int(side * aspect))) if aspect <= 1 else (
        min(ih, int(side / aspect)), side)
    y = rng.integers(0, ih - ch + 1)
    x = rng.integers(0, iw - cw + 1)
    return cv2.resize(image[y:y + ch, x:x + cw], (w, h), interpolation=cv2.INTER_AREA)


def _tinted(rng: np.random.Generator, gray: np.ndarray) -> np.ndarray:
    """Colours a grayscale float texture [h, w] → float RGB [h, w, 3] in [0, 255]."""
    low = rng.uniform(0, 90, size=3)
    high = rng.uniform(140, 255, size=3)
    t = gray[..., None] / 255.0
    return low + t * (high - low)


def _background(rng: np.random.Generator, materials: _Materials, h: int, w: int) -> np.ndarray:
    """A float RGB [h, w, 3] background: one or two tinted textures blended by a ramp."""
    first = _tinted(rng, _random_crop(rng, materials.textures[
        rng.integers(len(materials.textures))], h, w))
    if rng.uniform() < 0.5:
        return first
    second = _tinted(rng, _random_crop(rng, materials.textures[
        rng.integers(len(materials.textures))], h, w))
    angle = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ramp = (np.cos(angle) * (xx / w - 0.5) + np.sin(angle) * (yy / h - 0.5)) * 6.0
    weight = (1.0 / (1.0 + np.exp(-ramp)))[..., None]
    return first * weight + second * (1.0 - weight)


def _shape_mask(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A random ellipse or (rotated) rectangle filling a [h, w] box, float [h, w] in [0, 1]."""
    mask = np.zeros((h, w), np.uint8)
    if rng.uniform() < 0.5:
        cv2.ellipse(mask, (w // 2, h // 2), (max(1, w // 2 - 1), max(1, h // 2 - 1)),
                    0, 0, 360, 255, -1)
    else:
        cv2.rectangle(mask, (0, 0), (w - 1, h - 1), 255, -1)
    return cv2.GaussianBlur(mask, (3, 3), 0).astype(np.float32) / 255.0


def _paste(canvas: np.ndarray, patch: np.ndarray, alpha: np.ndarray, y: int, x: int) -> None:
    """Alpha-blends float patch [h, w, 3] into canvas at (y, x), clipping at the borders."""
    h, w = alpha.shape
    ch, cw = canvas.shape[:2]
    y0, x0, y1, x1 = max(0, y), max(0, x), min(ch, y + h), min(cw, x + w)
    if y0 >= y1 or x0 >= x1:
        return
    p = patch[y0 - y:y1 - y, x0 - x:x1 - x]
    a = alpha[y0 - y:y1 - y, x0 - x:x1 - x, None]
    canvas[y0:y1, x0:x1] = canvas[y0:y1, x0:x1] * (1.0 - a) + p * a


def _add_clutter(rng: np.random.Generator, materials: _Materials, canvas: np.ndarray,
                 count: int) -> None:
    """Pastes `count` clutter objects (photo crops or tinted textures) into the canvas."""
    h, w = canvas.shape[:2]
    for _ in range(count):
        oh = int(rng.uniform(0.15, 0.45) * h)
        ow = int(rng.uniform(0.15, 0.45) * w)
        if rng.uniform() < 0.5:
            patch = _random_crop(rng, materials.clutter[rng.integers(len(materials.clutter))],
                                 oh, ow)
        else:
            patch = _tinted(rng, _random_crop(rng, materials.textures[
                rng.integers(len(materials.textures))], oh, ow))
        _paste(canvas, patch, _shape_mask(rng, oh, ow),
               int(rng.integers(-oh // 3, h - 2 * oh // 3)),
               int(rng.integers(-ow // 3, w - 2 * ow // 3)))


def _landmark_quad(rng: np.random.Generator, patch_hw: tuple[int, int], image_hw: tuple[int, int],
                   view: _ViewParams) -> np.ndarray:
    """Destination corners float32 [4, 2] (x, y) of the patch, before placement."""
    ph, pw = patch_hw
    h, w = image_hw
    scale = rng.uniform(*view.scale) * min(h, w) / max(ph, pw)
    corners = np.array([[0, 0], [pw, 0], [pw, ph], [0, ph]], np.float64)
    corners = (corners - [pw / 2, ph / 2]) * scale
    # Anisotropic squash imitates an oblique view, then rotation and corner jitter.
    squash = 1.0 - rng.uniform(0, view.perspective)
    corners *= [squash, 1.0] if rng.uniform() < 0.5 else [1.0, squash]
    theta = np.deg2rad(rng.uniform(-view.rotation_deg, view.rotation_deg))
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    corners = corners @ rot.T
    size = max(ph, pw) * scale
    corners += rng.uniform(-view.perspective, view.perspective, size=(4, 2)) * size
    return corners.astype(np.float32)


def _visible_fraction(quad: np.ndarray, h: int, w: int) -> float:
    """Fraction of the quadrilateral's area inside the [0, w] × [0, h] frame."""
    area = abs(cv2.contourArea(quad))
    if area <= 0:
        return 0.0
    frame = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    inter, _ = cv2.intersectConvexConvex(quad, frame)
    return float(inter) / area


def _place(rng: np.random.Generator, quad: np.ndarray, h: int, w: int,
           visible: tuple[float, float]) -> np.ndarray:
    """Translates the centred quad so its visible fraction falls in `visible`."""
    lo, hi = visible
    best, best_err = quad + [w / 2, h / 2], np.inf
    for _ in range(200):
        if lo >= 0.95:
            # Fully visible views: anywhere that keeps the quad inside (or centred).
            span_x = max(0.0, w - (quad[:, 0].max() - quad[:, 0].min()))
            span_y = max(0.0, h - (quad[:, 1].max() - quad[:, 1].min()))
            offset = [rng.uniform(0, span_x) - quad[:, 0].min() if span_x > 0 else w / 2,
                      rng.uniform(0, span_y) - quad[:, 1].min() if span_y > 0 else h / 2]
        else:
            offset = [rng.uniform(-0.6, 1.6) * w, rng.uniform(-0.6, 1.6) * h]
        cand = quad + np.asarray(offset, np.float32)
        frac = _visible_fraction(cand, h, w)
        if lo <= frac <= hi:
            return cand
        err = min(abs(frac - lo), abs(frac - hi))
        if err < best_err:
            best, best_err = cand, err
    return best


def _photometric(rng: np.random.Generator, image: np.ndarray, strength: float,
                 max_blur: float) -> np.ndarray:
    """Lighting, colour cast, gamma, blur and sensor noise on float RGB [h, w, 3]."""
    if strength > 0:
        gain = 1.0 + rng.uniform(-0.35, 0.35) * strength
        cast = 1.0 + rng.uniform(-0.2, 0.2, size=3) * strength
        gamma = np.exp(rng.uniform(-0.4, 0.4) * strength)
        mean = image.mean()
        contrast = 1.0 + rng.uniform(-0.35, 0.25) * strength
        image = (image - mean) * contrast + mean
        image = np.clip(image * gain * cast, 0, 255)
        image = 255.0 * (image / 255.0) ** gamma
    sigma = rng.uniform(0, max_blur)
    if sigma > 0.3:
        image = cv2.GaussianBlur(image, (0, 0), sigma)
    image = image + rng.normal(0, 1.0 + 4.0 * strength, size=image.shape)
    return np.clip(image, 0, 255)


def _random_image_hw(rng: np.random.Generator, size: int) -> tuple[int, int]:
    """Landscape, portrait or square frame with longer side `size`."""
    short = int(round(size * rng.choice([0.75, 0.75, 1.0])))
    return (short, size) if rng.uniform() < 0.6 else (size, short)


def render_scene(rng: np.random.Generator, materials: _Materials, patch: np.ndarray | None,
                 size: int, view: _ViewParams | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Renders one scene.

    Args:
      rng: the image's own generator.
      materials: textures and clutter.
      patch: uint8 RGB [h, w, 3] landmark, or None for a distractor.
      size: longer side of the output.
      view: how the landmark is seen (None for a distractor).

    Returns:
      uint8 RGB [H, W, 3] and the landmark's visible bounding box float [4] as
      [x1, y1, x2, y2] (Revisited bbx order), or None without a landmark.
    """
    h, w = _random_image_hw(rng, size)
    canvas = _background(rng, materials, h, w)
    if patch is None or view is None:
        _add_clutter(rng, materials, canvas, int(rng.integers(*_DISTRACTOR_CLUTTER)))
        return _photometric(rng, canvas, 0.6, 1.0).round().astype(np.uint8), None

    _add_clutter(rng, materials, canvas, int(rng.integers(view.clutter[0], view.clutter[1] + 1)))
    ph, pw = patch.shape[:2]
    quad = _place(rng, _landmark_quad(rng, (ph, pw), (h, w), view), h, w, view.visible)
    src = np.array([[0, 0], [pw, 0], [pw, ph], [0, ph]], np.float32)
    homography = cv2.getPerspectiveTransform(src, quad)
    warped = cv2.warpPerspective(patch.astype(np.float32), homography, (w, h),
                                 flags=cv2.INTER_AREA if max(h, w) < max(ph, pw) else
                                 cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    # A soft edge so the pasted landmark does not carry a razor-sharp outline.
    mask = cv2.warpPerspective(np.ones((ph, pw), np.float32), homography, (w, h),
                               flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    mask = cv2.GaussianBlur(mask, (3, 3), 0)
    canvas = canvas * (1.0 - mask[..., None]) + warped * mask[..., None]

    ys, xs = np.nonzero(mask > 0.5)
    if len(ys) == 0:
        return _photometric(rng, canvas, view.photometric, view.blur).round().astype(
            np.uint8), None
    box = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float64)

    occlusion = rng.uniform(*view.occlusion)
    if occlusion > 0.01:
        bw, bh = box[2] - box[0], box[3] - box[1]
        # An occluder (pole, passer-by, sign) covering `occlusion` of the box.
        oh = int(np.clip(bh * np.sqrt(occlusion) * rng.uniform(0.7, 1.4), 4, h))
        ow = int(np.clip(bw * bh * occlusion / max(oh, 1), 4, w))
        occluder = _tinted(rng, _random_crop(rng, materials.textures[
            rng.integers(len(materials.textures))], oh, ow))
        _paste(canvas, occluder, _shape_mask(rng, oh, ow),
               int(rng.uniform(box[1], max(box[1] + 1, box[3] - oh))),
               int(rng.uniform(box[0], max(box[0] + 1, box[2] - ow))))
    image = _photometric(rng, canvas, view.photometric, view.blur)
    return image.round().astype(np.uint8), box


def _write_jpeg(path: str, image: np.ndarray, quality: int) -> None:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=int(quality))
    atomic.write_bytes_atomic(path, buffer.getvalue())


def _write_text(path: str, text: str) -> None:
    atomic.write_bytes_atomic(path, text.encode("utf-8"))


def _image_rng(seed: int, role: int, landmark: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, role, landmark, index])


@dataclasses.dataclass
class DemoDataset:
    """Paths and contents of a generated demo set.

    Attributes:
      root: the output directory.
      train_dir, train_csv_path, train_clean_csv_path: the GLDv2-style training set.
      images_dir, dataset_file_path: the Revisited-style query/index set.
      landmarks: landmark names; GLDv2 landmark_id of landmark i is landmark_ids[i].
      imlist, qimlist: index and query image names (no extension).
      gnd: per query {"easy", "hard", "junk"}: 0-based int arrays into imlist,
        "bbx": float [4] as [x1, y1, x2, y2].
    """

    root: str
    train_dir: str
    train_csv_path: str
    train_clean_csv_path: str
    images_dir: str
    dataset_file_path: str
    landmarks: list[str]
    landmark_ids: list[int]
    imlist: list[str]
    qimlist: list[str]
    gnd: list[dict]


def GenerateDemoDataset(output_dir: str, config: DemoConfig = DemoConfig(),
                        log: Callable[[str], None] | None = None) -> DemoDataset:
    """Renders the demo set into `output_dir` (created if missing; files overwritten).

    Args:
      output_dir: destination directory.
      config: sizes, counts and seed.
      log: called with a progress line per stage; None: this module's logger (INFO).

    Returns:
      The DemoDataset describing what was written.
    """
    config.validate()
    log = log or logger.info
    train_dir = os.path.join(output_dir, "train")
    images_dir = os.path.join(output_dir, "jpg")
    os.makedirs(train_dir, exist_ok=True)
    os.makedirs(images_dir, exist_ok=True)

    patches = load_landmark_patches(config.num_landmarks)
    names = list(patches)
    materials = _Materials()
    # GLDv2 landmark ids are sparse integers; relabelling makes them contiguous.
    id_rng = np.random.default_rng([config.seed, 0])
    landmark_ids = sorted(int(v) for v in id_rng.choice(200000, config.num_landmarks,
                                                        replace=False))
    train_rows, clean = _render_training_set(config, materials, patches, landmark_ids, train_dir)
    log(f"demo data: {len(train_rows)} training images of {len(names)} landmarks")
    train_csv_path, train_clean_csv_path = _write_gldv2_csvs(output_dir, train_rows, clean)
    entries = _render_index_set(config, materials, patches, images_dir)
    imlist = [e[0] for e in entries]
    log(f"demo data: {len(imlist)} index images ({config.num_distractors} distractors)")
    qimlist, gnd = _render_queries(config, materials, patches, entries, images_dir)
    log(f"demo data: {len(qimlist)} queries")

    dataset_file_path = os.path.join(output_dir, "gnd_demo.mat")
    # The .mat file stores 1-based ids, as gnd_roxford5k.mat does.
    revisited.WriteDatasetFile(
        dataset_file_path, imlist, qimlist,
        [{**g, **{k: g[k] + 1 for k in ("easy", "hard", "junk")}} for g in gnd])
    info = {
        "seed": config.seed,
        "config": dataclasses.asdict(config),
        "landmarks": [{"name": n, "source": LANDMARK_SOURCES[n][0],
                       "region_yyxx": list(LANDMARK_SOURCES[n][1]),
                       "landmark_id": landmark_ids[i]} for i, n in enumerate(names)],
        "num_train": len(train_rows),
        "num_train_clean": sum(len(v) for v in clean.values()),
        "num_index": len(imlist),
        "num_queries": len(qimlist),
    }
    _write_text(os.path.join(output_dir, "demo_info.json"), json.dumps(info, indent=2) + "\n")
    return DemoDataset(root=output_dir, train_dir=train_dir, train_csv_path=train_csv_path,
                       train_clean_csv_path=train_clean_csv_path, images_dir=images_dir,
                       dataset_file_path=dataset_file_path, landmarks=names,
                       landmark_ids=landmark_ids, imlist=imlist, qimlist=qimlist, gnd=gnd)


def _render_training_set(config, materials, patches, landmark_ids, train_dir):
    """GLDv2 training images: (train.csv rows, {landmark id: clean image ids}).

    `noisy` renders barely show the landmark and are listed in train.csv only,
    as GLDv2's cleaning drops such images."""
    train_rows, clean = [], {lid: [] for lid in landmark_ids}
    for li, name in enumerate(patches):
        for k in range(config.train_per_landmark):
            rng = _image_rng(config.seed, _ROLE_TRAIN, li, k)
            noisy = k >= config.train_per_landmark - config.noisy_per_landmark
            image, _ = render_scene(rng, materials, patches[name], config.image_size,
                                    _NOISY if noisy else _TRAIN_VIEW)
            image_id = f"{rng.integers(2**63):016x}"
            _write_jpeg(os.path.join(train_dir, image_id + ".jpg"), image,
                        rng.integers(75, 96))
            train_rows.append((image_id, f"skimage://{LANDMARK_SOURCES[name][0]}/{name}",
                               landmark_ids[li]))
            if not noisy:
                clean[landmark_ids[li]].append(image_id)
    return train_rows, clean


def _write_gldv2_csvs(output_dir, train_rows, clean) -> tuple[str, str]:
    """Writes train.csv and train_clean.csv; returns their paths."""
    train_csv = io.StringIO()
    writer = csv.writer(train_csv, lineterminator="\n")
    writer.writerow(["id", "url", "landmark_id"])
    writer.writerows(train_rows)
    train_csv_path = os.path.join(output_dir, "train.csv")
    _write_text(train_csv_path, train_csv.getvalue())
    clean_csv = io.StringIO()
    writer = csv.writer(clean_csv, lineterminator="\n")
    writer.writerow(["landmark_id", "images"])
    writer.writerows((lid, " ".join(ids)) for lid, ids in clean.items())
    train_clean_csv_path = os.path.join(output_dir, "train_clean.csv")
    _write_text(train_clean_csv_path, clean_csv.getvalue())
    return train_csv_path, train_clean_csv_path


def _render_index_set(config, materials, patches, images_dir) -> list[tuple[str, int, str]]:
    """Revisited index images: easy, hard and junk views per landmark, then
    distractors, in a shuffled order so no rank is given away by position.
    Returns (name, landmark index or -1, kind) per image, in index order."""
    names = list(patches)
    entries: list[tuple[str, int, str]] = []
    for li, name in enumerate(names):
        kinds = (["easy"] * config.easy_per_landmark + ["hard"] * config.hard_per_landmark +
                 ["junk"] * config.junk_per_landmark)
        for k, kind in enumerate(kinds):
            entries.append((f"{name}_{k:06d}", li, kind))
    entries += [(f"distractor_{k:06d}", -1, "none") for k in range(config.num_distractors)]
    order = np.random.default_rng([config.seed, _ROLE_INDEX]).permutation(len(entries))
    entries = [entries[i] for i in order]
    views = {"easy": _EASY, "hard": _HARD, "junk": _JUNK}
    for image_name, li, kind in entries:
        index = int(image_name.rsplit("_", 1)[1])
        if li < 0:
            rng = _image_rng(config.seed, _ROLE_DISTRACTOR, 0, index)
            image, _ = render_scene(rng, materials, None, config.image_size, None)
        else:
            rng = _image_rng(config.seed, _ROLE_INDEX, li, index)
            image, _ = render_scene(rng, materials, patches[names[li]], config.image_size,
                                    views[kind])
        _write_jpeg(os.path.join(images_dir, image_name + ".jpg"), image, rng.integers(80, 96))
    return entries


def _render_queries(config, materials, patches, entries, images_dir):
    """Query images and their ground truth (0-based ids): (qimlist, gnd)."""
    qimlist, gnd = [], []
    for li, name in enumerate(patches):
        positives = {kind: np.array([i for i, e in enumerate(entries)
                                     if e[1] == li and e[2] == kind], np.int64)
                     for kind in ("easy", "hard", "junk")}
        for q in range(config.queries_per_landmark):
            rng = _image_rng(config.seed, _ROLE_QUERY, li, q)
            image, box = render_scene(rng, materials, patches[name], config.image_size, _QUERY_VIEW)
            query_name = f"{name}_query_{q:02d}"
            _write_jpeg(os.path.join(images_dir, query_name + ".jpg"), image, 92)
            qimlist.append(query_name)
            gnd.append({**positives, "bbx": box})
    return qimlist, gnd


def WriteSfmTuplesDatabase(demo_dir: str, output_root: str, name: str = "demo-SfM",
                           val_fraction: float = 0.25, pairs_per_landmark: int = 8,
                           seed: int = 0) -> str:
    """The demo's clean training images as an SfM-style tuples database (clusters = landmarks).

    Writes <output_root>/train/<name>/<name>.pkl and the images under .../ims/ in the SfM
    layout (hard links, copies where links fail) and links <output_root>/test/demo/ to the
    demo's Revisited set (gnd_demo.mat, jpg/), so the global-features training job reads the
    demo as it reads SfM-120k and Revisited Oxford. With a dozen landmarks there are too few
    to hold some out as SfM's val split does: the last `val_fraction` of each landmark's
    images form the "val" split instead. Returns the database path.
    """
    import shutil

    # Imported here: the global-features package owns the SfM format.
    from delf_tf.global_features import sfm

    with open(os.path.join(demo_dir, "train_clean.csv"), newline="") as f:
        rows = list(csv.reader(f))[1:]
    splits: dict[str, tuple[list[str], list[int]]] = {"train": ([], []), "val": ([], [])}
    for cluster, (_, images) in enumerate(rows):
        ids = images.split()
        num_val = max(1, int(round(len(ids) * val_fraction))) if len(ids) >= 4 else 0
        for position, image_id in enumerate(ids):
            split = "val" if position >= len(ids) - num_val else "train"
            splits[split][0].append(image_id)
            splits[split][1].append(cluster)
    train_root = os.path.join(output_root, "train", name)
    ims_root = os.path.join(train_root, "ims")
    for cids, _ in splits.values():
        for cid in cids:
            target = sfm.cid2filename(cid, ims_root)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            source = os.path.join(demo_dir, "train", cid + ".jpg")
            if not os.path.exists(target):
                try:
                    os.link(source, target)
                except OSError:
                    shutil.copyfile(source, target)
    database = {split: sfm.SplitFromClusters(cids, clusters, pairs_per_landmark,
                                             seed=seed + offset)
                for offset, (split, (cids, clusters)) in enumerate(splits.items()) if cids}
    path = os.path.join(train_root, f"{name}.pkl")
    sfm.WriteSfmDatabase(path, database)
    test_root = os.path.join(output_root, "test", "demo")
    os.makedirs(test_root, exist_ok=True)
    for entry in ("gnd_demo.mat", "jpg"):
        link = os.path.join(test_root, entry)
        if not os.path.lexists(link):
            os.symlink(os.path.abspath(os.path.join(demo_dir, entry)), link)
    return path
