r"""Colorizes image files: `python -m colorize.colorize --workdir=runs/x --input=... --output=...`.

    python -m colorize.colorize --workdir=runs/cifar10 --input=old_photos/ --output=colored/
    colorize --workdir=runs/cifar10 --input=scan1.jpg --input=scan2.png --output=colored/

`--input` takes files, folders (recursively: their image files, sub-folders kept in the
output) and globs, and repeats. Each input gives one output of the same name in `--output`,
in the format of its extension (`--format` overrides it); a glob's matches keep their paths
below the glob's first wildcard (`photos/**` gives `sub/a.png` for `photos/sub/a.png`), and a
file matched twice is done once. Only JPEG, PNG, TIFF, BMP and WebP files are decoded,
whatever their names say (`image_files`). A file that cannot be colorized is reported as one
`path: reason` line and skipped; the rest are still done.

The compilation cache is the user's, never a workdir's (`shared_flags.use_compilation_cache`).
`load_image` is the file decoding on its own, for the Python API:
`Colorizer.from_workdir(workdir)(load_image("scan.jpg"))`.

Exit status: 0 when every file was colorized (or skipped because its output exists), 1 when
any file failed, 2 when nothing could start (bad flags, no checkpoint in the workdir).

The flags are argparse's, not absl's: absl's flags are one global registry, so a second
`--workdir` would clash with `colorize.main`'s in any process that imports both (tests do);
argparse also repeats `--input` and runs in-process without global state.
"""
import argparse
import dataclasses
import glob
import os
import sys
import warnings

import numpy as np
from PIL import Image
from PIL import ImageOps
import tqdm

from colorize import errors
from colorize import image_files
from colorize import inference
from colorize import shared_flags
from colorize.errors import UserError

# --format values (the extensions, without the dot) -> the extension written: the format's
# first (jpeg -> .jpg). JPEG cannot store alpha, the others can.
FORMATS = {ext[1:]: next(e for e, f in image_files.EXTENSION_FORMATS.items() if f == name)
           for ext, name in image_files.EXTENSION_FORMATS.items()}
# Images larger than this are refused (`--max_pixels`): with the full-resolution lightness,
# the upsampled ab and the output, one image costs about 30 bytes per pixel, 1.5 GB here.
DEFAULT_MAX_PIXELS = 50_000_000


@dataclasses.dataclass(frozen=True)
class Job:
  """One input file and where its output goes."""
  source: str
  output: str


@dataclasses.dataclass
class Summary:
  """What happened to each input: counts, and the `path: reason` lines of the failures."""
  done: int = 0
  skipped: int = 0
  failed: list[str] = dataclasses.field(default_factory=list)

  def line(self) -> str:
    return (f"{self.done} colorized, {self.skipped} skipped (output exists), "
            f"{len(self.failed)} failed")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
  """Parses the command line (see the module docstring)."""
  p = errors.OneLineParser(
      prog="colorize",
      description="Colorizes image files (files, folders, globs) with a trained colorizer.",
      epilog="Exit status: 0 all done (or skipped: output exists), 1 some file failed, "
             "2 nothing could start.")
  p.add_argument("--workdir", required=True, help="Training workdir (config + checkpoints).")
  p.add_argument("--input", action="append", required=True,
                 help="Image file, folder (recursive) or glob; repeat for more.")
  p.add_argument("--output", required=True, help="Folder for the outputs (created).")
  p.add_argument("--step", type=int, help="Checkpoint step (default: the latest).")
  p.add_argument("--native", action="store_true",
                 help="Run the model on the whole image (padded to a multiple of its stride) "
                      "instead of at the training resolution; compiles once per padded size.")
  p.add_argument("--format", choices=sorted(FORMATS),
                 help="Output format for every file (default: the input's extension).")
  p.add_argument("--overwrite", action="store_true", help="Replace existing outputs.")
  p.add_argument("--batch_size", type=int, default=inference.DEFAULT_BATCH_SIZE,
                 help=f"Images per model call (1..{inference.MAX_BATCH_SIZE}).")
  p.add_argument("--max_pixels", type=int, default=DEFAULT_MAX_PIXELS,
                 help="Larger images are skipped; also the pixels of one batch in memory.")
  shared_flags.add_decoding_flags(p)
  args = p.parse_args(argv)
  if not 1 <= args.batch_size <= inference.MAX_BATCH_SIZE:
    p.error(f"--batch_size={args.batch_size}: give 1..{inference.MAX_BATCH_SIZE} (each model "
            "call is padded to it)")
  if args.max_pixels < 1:
    p.error("--max_pixels must be positive")
  for flag in ("workdir", "output"):  # E.g. --output=$UNSET: not the current directory.
    if not getattr(args, flag).strip():
      p.error(f"--{flag} is empty (an unset shell variable?)")
  return args


def collect_jobs(inputs: list[str], output_dir: str, fmt: str | None
                 ) -> tuple[list[Job], list[str]]:
  """Expands the inputs into jobs.

  Folders give their image files (`image_files.list_images`, not those under `output_dir`),
  with their sub-folders kept; a file gives its name; a glob's matches (files, and folders
  as above) keep their paths below the glob's first wildcard. A job that comes up twice
  (`photos/**` matches `photos/sub` and the files in it) is kept once.

  Args:
    inputs: the `--input` values.
    output_dir: the `--output` folder.
    fmt: the `--format` value, or None to keep each input's extension.

  Returns:
    (jobs, `path: reason` lines for inputs that name nothing usable).
  """
  jobs, failed = {}, []
  for pattern in inputs:
    if os.path.lexists(pattern):
      matches, base = [pattern], None
    else:
      matches = sorted(glob.glob(pattern, recursive=True))
      base = _glob_base(pattern)
      if not matches:
        failed.append(f"{pattern}: no such file, folder or glob match")
    for path in matches:
      if os.path.isdir(path):
        files = image_files.list_images(path, skip=output_dir)
        if not files and base is None:
          failed.append(f"{path}: no image files ({', '.join(image_files.EXTENSIONS)}) in it")
        for f in files:
          jobs[Job(f, _output_path(output_dir, os.path.relpath(f, base or path), fmt))] = None
      elif not image_files.is_regular_file(path):
        failed.append(f"{path}: not a regular file (a FIFO, socket, device or broken link)")
      else:
        relative = os.path.relpath(path, base) if base else os.path.basename(path)
        jobs[Job(path, _output_path(output_dir, relative, fmt))] = None
  return list(jobs), failed


def _glob_base(pattern: str) -> str:
  """The folder a glob's matches are named from: its path up to the first wildcard."""
  fixed = []
  for part in pattern.split(os.sep)[:-1]:
    if any(c in part for c in "*?["):
      break
    fixed.append(part)
  return os.sep.join(fixed) or (os.sep if fixed else ".")


def _output_path(output_dir: str, relative: str, fmt: str | None) -> str:
  stem, extension = os.path.splitext(relative)
  if fmt is not None:
    extension = FORMATS[fmt]
  elif extension.lower() not in image_files.EXTENSION_FORMATS:  # E.g. scan.img, or none:
    extension += ".png"  # write a PNG.
  return os.path.join(output_dir, stem + extension)


def load_image(path: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
  """Decodes an image file with its EXIF orientation applied.

  Args:
    path: a JPEG, PNG, TIFF, BMP or WebP file (whatever its name; `image_files.FORMATS`).
    max_pixels: larger images are refused before they are decoded.

  Returns:
    The array `inference.Colorizer` takes (see `image_files.to_array`).

  Raises:
    UserError: "<path>: <reason>" for a file that is empty, not a regular file, not one of
      those formats, truncated, corrupt, outside its mode's range or too large.
  """
  try:
    if image_files.is_regular_file(path) and os.path.getsize(path) == 0:
      raise UserError(f"{path}: empty file")
    # Pillow warns above ~89 Mpixel; our own `max_pixels` check is the one that applies.
    with warnings.catch_warnings():
      warnings.simplefilter("ignore", Image.DecompressionBombWarning)
      with image_files.open_image(path) as image:
        if image.width * image.height > max_pixels:
          raise UserError(f"{path}: too large ({image.width}x{image.height} = "
                          f"{image.width * image.height:,} pixels > the limit of "
                          f"{max_pixels:,}; see --max_pixels)")
        image.load()
        ImageOps.exif_transpose(image, in_place=True)
        return image_files.to_array(image)
  except UserError:
    raise
  except Image.DecompressionBombError as e:
    raise UserError(f"{path}: too large for Pillow ({e})") from None
  except MemoryError:
    raise UserError(f"{path}: not enough memory to decode it") from None
  # Pillow's plugins raise many types for broken files (OSError, SyntaxError, struct.error).
  except Exception as e:  # pylint: disable=broad-exception-caught
    raise UserError(f"{path}: cannot decode ({type(e).__name__}: {e})") from None


def colorize_files(colorizer: inference.Colorizer, jobs: list[Job], *, max_pixels: int,
                   summary: Summary, report) -> None:
  """Colorizes jobs in batches of at most `colorizer.batch_size` images and `max_pixels`.

  Args:
    colorizer: the model.
    jobs: jobs whose outputs may be written (`run` checks them first).
    max_pixels: the largest image, and the most pixels one batch holds in memory.
    summary: counts and failures, updated.
    report: called with each `path: reason` line.
  """
  def flush(batch):
    if batch:
      images = [image for _, image in batch]
      for (job, _), result in zip(batch, colorizer.colorize_batch(images)):
        try:
          image_files.save_image(result, job.output)
          summary.done += 1
        except OSError as e:
          fail(f"{job.source}: cannot write {job.output} ({e.strerror or e})")
      progress.update(len(batch))
    return []

  def fail(line):
    summary.failed.append(line)
    report(line)

  batch, pixels = [], 0
  # disable=None: a bar on a terminal only, and only when there are several files.
  with tqdm.tqdm(total=len(jobs), unit="image", disable=None if len(jobs) > 1 else True,
                 file=sys.stderr, leave=False) as progress:
    for job in jobs:
      try:
        image = load_image(job.source, max_pixels)
      except UserError as e:
        fail(str(e))
        progress.update(1)
        continue
      size = image.shape[0] * image.shape[1]
      if len(batch) == colorizer.batch_size or (batch and pixels + size > max_pixels):
        batch, pixels = flush(batch), 0
      batch.append((job, image))
      pixels += size
    flush(batch)


def run(argv: list[str] | None = None) -> int:
  """The command line; returns the exit status (see the module docstring).

  Args:
    argv: the arguments without the program name; sys.argv[1:] when None.

  Returns:
    0, 1 (some file failed) or 2 (nothing could start).
  """
  args = parse_args(argv)
  try:  # First: a workdir or output that cannot be used stops the run before any image.
    if os.path.lexists(args.output) and not os.path.isdir(args.output):
      raise UserError(f"--output={args.output} is not a folder; give a folder (it is created "
                      "if missing)")
    shared_flags.use_compilation_cache(args.compilation_cache_dir)
    colorizer = inference.Colorizer.from_workdir(
        args.workdir, args.step, batch_size=args.batch_size, native=args.native,
        chroma_gain=args.chroma_gain, temperature=args.temperature,
        flip_average=args.flip_average, transport_strength=args.transport,
        transport_by_class=args.transport_by_class)
    try:
      os.makedirs(args.output, exist_ok=True)
    except OSError as e:
      raise UserError(f"cannot create --output={args.output} ({e.strerror or e}); give "
                      "another folder") from None
  except UserError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2

  def report(line: str) -> None:
    tqdm.tqdm.write(line, file=sys.stderr)  # Above the progress bar, not through it.

  def fail(line: str) -> None:
    summary.failed.append(line)
    report(line)

  jobs, failed = collect_jobs(args.input, args.output, args.format)
  summary = Summary()
  for line in failed:
    fail(line)
  sources = {os.path.realpath(job.source) for job in jobs}  # Never overwritten.
  root = os.path.realpath(args.output)
  outputs, todo = {}, []  # Real output path -> source, of the jobs accepted so far.
  for job in jobs:
    target = os.path.realpath(job.output)  # Follows symlinks on the way, and a linked file.
    if os.path.commonpath([target, root]) != root:
      fail(f"{job.source}: refusing to write outside --output ({target})")
    elif target in sources:
      fail(f"{job.source}: refusing to overwrite an input ({job.output})")
    elif target in outputs:
      fail(f"{job.source}: same output as {outputs[target]} ({job.output})")
    elif os.path.exists(target) and not args.overwrite:
      summary.skipped += 1
      report(f"{job.source}: {job.output} exists, skipped (--overwrite to replace it)")
    else:
      outputs[target] = job.source
      todo.append(job)
  colorize_files(colorizer, todo, max_pixels=args.max_pixels, summary=summary, report=report)
  print(summary.line(), file=sys.stderr)
  return 1 if summary.failed else 0


if __name__ == "__main__":
  sys.exit(run())
