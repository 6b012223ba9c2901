r"""Inference throughput of a trained colorizer: images/s end to end and for the model alone.

    python scripts/benchmark_inference.py --workdir=runs/cifar10_subset \
        --sizes=32x32,1024x768 --batch=16

For each size, grayscale versions of `skimage.data.astronaut()` resized to it (photo-like
content, so the codecs do realistic work; needs scikit-image, the test extra) are written to
a temporary folder, then timed after a warm-up pass (compilation excluded):
  * end_to_end: files -> decode -> colorize -> encode -> files, as the CLI does it
    (`colorize.cli.colorize_files`);
  * one_file: one file alone, end to end: a user's latency for one photo (the target for
    1024x768 on the 2-core CPU is under 0.5 s; the table says whether it is met);
  * arrays: `Colorizer.colorize_batch` on decoded arrays (the Python API; no file I/O);
  * model: the generator alone on a batch at the training resolution (the same for every
    image size, since images are resized to it; measured once).
Each is repeated for at least `--min_seconds` (and 3 times); the median over the repetitions
is reported as one JSON line each, then as a table.
"""
import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time

import jax
import numpy as np
from PIL import Image
from skimage import data as skimage_data

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from colorize import cli  # pylint: disable=g-import-not-at-top
from colorize import errors  # pylint: disable=g-import-not-at-top
from colorize import image_files  # pylint: disable=g-import-not-at-top
from colorize import inference  # pylint: disable=g-import-not-at-top

TARGET_MS = 500  # One 1024x768 photo, decode to encode, on the 2-core CPU.


def _positive(text: str) -> int:
  if not text.isdigit() or int(text) < 1:
    raise argparse.ArgumentTypeError(f"{text!r}: give a positive integer")
  return int(text)


def _sizes(text: str) -> list[tuple[int, int]]:
  """"1024x768,32x32" -> [(1024, 768), (32, 32)]."""
  try:
    sizes = [tuple(map(int, size.lower().split("x"))) for size in text.split(",")]
  except ValueError:
    sizes = []
  if not sizes or any(len(s) != 2 or min(s) < 1 for s in sizes):
    raise argparse.ArgumentTypeError(f"{text!r}: give WIDTHxHEIGHT sizes, e.g. 32x32,1024x768")
  return sizes


def _parse_args() -> argparse.Namespace:
  p = errors.OneLineParser(description=__doc__.split("\n")[0])
  p.add_argument("--workdir", required=True, help="Training workdir to restore.")
  p.add_argument("--sizes", type=_sizes, default="32x32,1024x768",
                 help="Comma-separated WIDTHxHEIGHT.")
  p.add_argument("--batch", type=_positive, default=inference.DEFAULT_BATCH_SIZE,
                 help="Images per model call.")
  p.add_argument("--images", type=_positive, default=64, help="Files per timed pass.")
  p.add_argument("--format", default="png", choices=sorted(cli.FORMATS),
                 help="Format of the input and output files.")
  p.add_argument("--min_seconds", type=float, default=3.0,
                 help="Repeat each measurement for at least this long.")
  p.add_argument("--native", action="store_true", help="Colorize at the native size.")
  return p.parse_args()


def _median_seconds(fn, min_seconds: float) -> tuple[float, int]:
  """Median wall time of `fn()` over >= 3 runs and >= min_seconds, after one warm-up run."""
  fn()
  times = []
  start = time.perf_counter()
  while len(times) < 3 or time.perf_counter() - start < min_seconds:
    t = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t)
  return statistics.median(times), len(times)


def _photo(width: int, height: int) -> np.ndarray:
  gray = Image.fromarray(skimage_data.astronaut()).convert("L")
  return np.asarray(gray.resize((width, height), Image.Resampling.BILINEAR))


def _measure(name: str, size: str, images: int, fn, args, common) -> dict:
  seconds, repeats = _median_seconds(fn, args.min_seconds)
  row = {"measurement": name, "size": size, "images_per_s": round(images / seconds, 2),
         "ms_per_image": round(1000 * seconds / images, 3), "images": images,
         "repeats": repeats, **common}
  print(json.dumps(row), flush=True)
  return row


def main() -> None:
  args = _parse_args()
  try:
    colorizer = inference.Colorizer.from_workdir(args.workdir, batch_size=args.batch,
                                                 native=args.native)
  except errors.UserError as e:
    raise SystemExit(f"error: {e}") from None
  s = colorizer.generator.image_size
  common = {"batch": args.batch, "format": args.format, "native": args.native,
            "step": colorizer.generator.step, "image_size": s,
            "device": jax.devices()[0].device_kind, "cpus": os.cpu_count(),
            "machine": platform.machine()}
  rows = []
  model_batch = np.repeat(np.repeat(_photo(s, s)[None, ..., None], 3, -1), args.batch, 0)
  rows.append(_measure("model", f"{s}x{s}", args.batch,
                       lambda: colorizer.predict_ab(model_batch), args, common))
  for width, height in args.sizes:
    size = f"{width}x{height}"
    photo = _photo(width, height)
    with tempfile.TemporaryDirectory() as tmp:
      extension = cli.FORMATS[args.format]
      jobs = []
      for i in range(args.images):
        source = os.path.join(tmp, "in", f"{i:04d}{extension}")
        image_files.save_image(np.repeat(photo[..., None], 3, -1), source)
        jobs.append(cli.Job(source, os.path.join(tmp, "out", f"{i:04d}{extension}")))

      def end_to_end():
        summary = cli.Summary()
        cli.colorize_files(colorizer, jobs, max_pixels=cli.DEFAULT_MAX_PIXELS,
                           summary=summary, report=print)
        assert summary.done == len(jobs), summary.line()

      rows.append(_measure("end_to_end", size, args.images, end_to_end, args, common))

      def one_file():  # Latency: a user colorizing one photo (the model batch is padded).
        summary = cli.Summary()
        cli.colorize_files(colorizer, jobs[:1], max_pixels=cli.DEFAULT_MAX_PIXELS,
                           summary=summary, report=print)
        assert summary.done == 1, summary.line()

      rows.append(_measure("one_file", size, 1, one_file, args, common))

    def arrays():
      for _ in range(0, args.images, args.batch):
        colorizer.colorize_batch([photo] * args.batch)

    images = -(-args.images // args.batch) * args.batch
    rows.append(_measure("arrays", size, images, arrays, args, common))

  print(f"\nstep {common['step']}, batch {args.batch}, {args.format} files, "
        f"{common['cpus']} CPUs ({common['device']}), native={args.native}")
  print(f"{'measurement':<12} {'size':>10} {'images/s':>10} {'ms/image':>10}")
  for row in rows:
    print(f"{row['measurement']:<12} {row['size']:>10} {row['images_per_s']:>10.1f} "
          f"{row['ms_per_image']:>10.2f}")
  for row in rows:
    if row["measurement"] == "one_file" and row["size"] == "1024x768" and not args.native:
      met = "met" if row["ms_per_image"] < TARGET_MS else "NOT met"
      print(f"one 1024x768 photo, file to file: {row['ms_per_image']:.0f} ms "
            f"(target < {TARGET_MS} ms: {met})")


if __name__ == "__main__":
  main()
