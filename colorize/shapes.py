"""The generated "shapes" dataset: scenes whose colours follow the shapes, needing no download.

For offline quickstarts and tests: the colour of every part is learnable from the gray image
(`draw`), and each image's first shape's kind is its class label. Every image is a pure
function of (split, index), so the splits are fixed without files.
"""
import colorsys

import grain
import numpy as np

from colorize.errors import UserError

# split -> (id for the rng, length). Each split is drawn from its own generator.
SPLITS = {"train": (0, 4096), "validation": (2, 256), "test": (1, 256)}
# (hue, saturation, value) ranges of discs (red/orange, mid gray), squares (blue/purple, dark)
# and triangles (yellow, bright).
_COLORS = [((-0.02, 0.08), (0.75, 0.95), (0.85, 1.0)),
           ((0.62, 0.78), (0.6, 0.85), (0.55, 0.75)),
           ((0.13, 0.17), (0.75, 0.95), (0.9, 1.0))]
NUM_KINDS = len(_COLORS)  # The class labels: 0 disc, 1 square, 2 triangle.


def dataset(split: str, size: int) -> grain.MapDataset:
  """The split's (uint8 [size, size, 3] image, its first shape's kind) pairs, by index.

  Args:
    split: one of SPLITS (config.train_split or config.eval_split).
    size: the images' height and width.

  Returns:
    A grain MapDataset of `draw`'s outputs.

  Raises:
    UserError: `split` is not one of SPLITS.
  """
  if split not in SPLITS:
    raise UserError(f"the shapes dataset has splits {list(SPLITS)}, not {split!r} "
                    "(config.train_split / config.eval_split)")
  split_id, length = SPLITS[split]
  return grain.MapDataset.range(length).map(
      lambda i: draw(np.random.default_rng([split_id, i]), size))


def draw(rng: np.random.Generator, size: int) -> tuple[np.ndarray, int]:
  """Draws a sky over a ground band with 1-3 outlined shapes coloured by their kind.

  The colour is learnable from the gray image: the smooth bright sky is blue, the dark
  textured ground green, discs red/orange (mid gray), squares blue/purple (dark) and triangles
  yellow (bright), each shape with a dark outline so it stands out from any background.

  Args:
    rng: the generator that decides everything about the image.
    size: height and width in pixels.

  Returns:
    (uint8 [size, size, 3], the kind of the first shape: 0 disc, 1 square, 2 triangle).
  """
  def hsv(hue, sat, val):
    return np.array(colorsys.hsv_to_rgb(rng.uniform(*hue) % 1, rng.uniform(*sat),
                                        rng.uniform(*val)))

  y, x = (np.mgrid[:size, :size] + 0.5) / size  # Pixel centres in (0, 1); y points down.
  horizon = rng.uniform(0.55, 0.8)
  sky_hue = rng.uniform(0.55, 0.62)
  sky_top = hsv((sky_hue, sky_hue), (0.55, 0.75), (0.75, 0.9))
  sky_low = hsv((sky_hue, sky_hue), (0.15, 0.3), (0.95, 1.0))  # Hazy near the horizon.
  ground = hsv((0.22, 0.33), (0.6, 0.8), (0.3, 0.45))
  t = np.minimum(y / horizon, 1)[..., None]
  is_sky = (y < horizon)[..., None]
  image = np.where(is_sky, (1 - t) * sky_top + t * sky_low, ground)
  image *= 1 + 0.12 * ~is_sky * rng.normal(size=(size, size, 1))  # Grass texture.

  kinds = []
  for _ in range(rng.integers(1, 4)):
    kind = rng.integers(3)
    kinds.append(int(kind))
    rgb = hsv(*_COLORS[kind])
    cx, cy = rng.uniform(0.15, 0.85, size=2)
    r = rng.uniform(0.1, 0.22)
    for radius, fill in ((r + 1.5 / size, 0.15 * rgb), (r, rgb)):  # Outline, then fill.
      dx, dy = np.abs(x - cx), y - cy
      if kind == 0:
        mask = dx**2 + dy**2 < radius**2
      elif kind == 1:
        mask = (dx < radius) & (np.abs(dy) < radius)
      else:  # Apex up: the half-width grows from 0 at the apex to `radius` at the base.
        mask = (np.abs(dy) < radius) & (dx < (dy + radius) / 2)
      image[mask] = fill
  image *= 1 + 0.03 * rng.normal(size=(size, size, 1))  # Mild texture everywhere.
  return np.clip(image * 255 + 0.5, 0, 255).astype(np.uint8), kinds[0]
