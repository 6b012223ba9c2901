r"""The README's before/after figure: grayscale input | colorized | original.

    python scripts/before_after.py --workdir=runs/cifar10_subset \
        --data_dir=/path/to/tensorflow_datasets --output=docs/colorize_before_after.png

Rows: CIFAR-10 test images (past index 8; `num_cifar` of them, drawn 8x with nearest
neighbours so their pixels stay visible) and one larger photo, `skimage.data.chelsea()`
(451x300), made grayscale first and colorized through the same `Colorizer` at full size.
`--data_dir` is the tfds directory where CIFAR-10 is prepared (`configs/cifar10.py:subset`
names the 10% subset this figure was made with). Needs tensorflow-datasets and scikit-image.
"""
import argparse
import os
import sys

import numpy as np
from PIL import Image
from PIL import ImageDraw
from skimage import data as skimage_data

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from colorize import inference  # pylint: disable=g-import-not-at-top
from colorize import input_pipeline  # pylint: disable=g-import-not-at-top
from colorize import restore  # pylint: disable=g-import-not-at-top
from colorize.errors import UserError  # pylint: disable=g-import-not-at-top

_GAP = 6
_HEADER = 22
_COLUMNS = ("grayscale input", "colorized", "original")


def _parse_args() -> argparse.Namespace:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--workdir", required=True, help="Training workdir to restore.")
  p.add_argument("--data_dir", required=True, help="tfds data_dir holding cifar10.")
  p.add_argument("--output", default="docs/colorize_before_after.png")
  p.add_argument("--first_cifar", type=int, default=9, help="First CIFAR-10 test index.")
  p.add_argument("--num_cifar", type=int, default=4)
  p.add_argument("--zoom", type=int, default=8, help="Display scale of the CIFAR images.")
  args = p.parse_args()
  if min(args.first_cifar, args.num_cifar) < 0 or args.zoom < 1:
    p.error(f"--first_cifar={args.first_cifar} --num_cifar={args.num_cifar} "
            f"--zoom={args.zoom}: give counts >= 0 and a zoom >= 1")
  return args


def _row(colorizer: inference.Colorizer, original: np.ndarray, zoom: int) -> list[Image.Image]:
  """The three panels of one image, each drawn `zoom` times larger."""
  gray = np.asarray(Image.fromarray(original).convert("L"))  # What a B&W photo holds.
  panels = [np.repeat(gray[..., None], 3, -1), colorizer(gray), original]
  return [Image.fromarray(p).resize((p.shape[1] * zoom, p.shape[0] * zoom),
                                    Image.Resampling.NEAREST) for p in panels]


def _cifar_test_images(workdir: str, data_dir: str, first: int, num: int) -> np.ndarray:
  """CIFAR-10 test images first..first + num - 1, read as the evaluation reads them.

  (Through the input pipeline's checks: an unprepared data_dir is an error, not a download.)
  """
  config = restore.read_config(workdir)
  config.dataset, config.data_dir, config.eval_split = "cifar10", data_dir, "test"
  config.image_size = 32  # CIFAR-10's own size, whatever size the run trained at.
  return input_pipeline.eval_images(config, first + num)[first:]


def main() -> None:
  args = _parse_args()
  try:
    colorizer = inference.Colorizer.from_workdir(args.workdir)
    images = _cifar_test_images(args.workdir, args.data_dir, args.first_cifar, args.num_cifar)
  except UserError as e:
    raise SystemExit(f"error: {e}") from None
  rows = [_row(colorizer, image, args.zoom) for image in images]
  rows.append(_row(colorizer, skimage_data.chelsea(), 1))

  # Three columns of equal width (the widest panel's); each panel is centred in its cell.
  cell = max(panel.width for row in rows for panel in row)
  width = 3 * cell + 2 * _GAP
  height = _HEADER + sum(row[0].height + _GAP for row in rows)
  figure = Image.new("RGB", (width, height), "white")
  draw = ImageDraw.Draw(figure)
  for i, title in enumerate(_COLUMNS):
    draw.text((i * (cell + _GAP) + cell // 2, _HEADER // 2), title, fill="black", anchor="mm")
  y = _HEADER
  for row in rows:
    for i, panel in enumerate(row):
      figure.paste(panel, (i * (cell + _GAP) + (cell - panel.width) // 2, y))
    y += row[0].height + _GAP
  os.makedirs(os.path.dirname(args.output) or ".", exist_ok=True)
  figure.save(args.output)
  print(f"{args.output}: {width}x{height}, checkpoint step {colorizer.generator.step} of "
        f"{args.workdir}")


if __name__ == "__main__":
  main()
