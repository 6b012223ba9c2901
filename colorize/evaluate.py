r"""Evaluates trained colorizers against ground truth and trivial baselines.

    python -m colorize.evaluate --workdir=runs/cifar10
    python -m colorize.evaluate --workdir=runs/cifar10 \
        --compare runs/cifar10_l1 runs/cifar10_vanilla
    python -m colorize.evaluate --workdir=runs/cifar10 --split=test        # final tables only
    python -m colorize.evaluate --workdir=runs/cifar10 --split=test --gray_only --num_samples=10
    python -m colorize.evaluate --workdir=runs/cifar10 --images=photos/ --size=128

The images are the run's eval split (a validation split for the shipped configs; `--split`
for another, `--num_images` for the first N, `--gray_only` for the grayscale ground truths),
or every image file under `--images`, centre-cropped to squares of `--size` (default: the
training size). Each is reduced to its lightness, colorized by the run's latest checkpoint
(`--step` for another) through `inference.Colorizer`, exactly as a user's photo would be, and
compared with the original.
Two baselines are scored on the same images: "gray" (ab = 0: the input itself) and "mean
colour" (the mean ab of the run's training images, the best constant colour under L2).

`<workdir>/eval/<step>/` (a sub-folder for other images) gets `metrics.json`, `table.md`,
`grid.png` (gray | the run | ground truth) and `per_image.npz` (each image's values, from which
`scoring.set_metrics` recomputes the summary over resamples of the images). With
`--compare`, every run is scored on the first run's images and the side-by-side results go to
`compare/` there, nothing to the compared runs' workdirs. Every file is written with
`atomic.write_bytes`, only inside the workdir; strings from configs are escaped in table.md.
docs/evaluation.md has the details.

The summary itself is `scoring.evaluate_arrays` (also what the trainer logs on its eval
subset); metrics that need network weights (FID, LPIPS) plug in as a `scoring.SetMetric`
through `EXTRA_METRICS`; none is computed here.

Evaluating never prepares or downloads a tfds dataset into the data_dir a workdir's
config.json names (pass `--data_dir` to read it elsewhere): a workdir never chooses where
files are written, nor where compiled code is cached (`--compilation_cache_dir`).

Exit status: 0 done, 1 done but some image files could not be read (listed), 2 nothing
could start (no config or checkpoint, no data). The flags are argparse's, as in
`colorize.cli` (absl's global flags would clash with `colorize.main`'s).
"""
import argparse
import dataclasses
import json
import os
import sys
import time
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from PIL import Image, ImageOps
import tensorflow_datasets as tfds

from colorize import atomic
from colorize import errors
from colorize import eval_files
from colorize import color
from colorize import image_files
from colorize import inference
from colorize import input_pipeline
from colorize import plots
from colorize import restore
from colorize import scoring
from colorize import shared_flags
from colorize.errors import UserError

MEAN_AB_IMAGES = 5000  # Training images the "mean colour" baseline averages over.
NUM_SAMPLES = 8  # Images (columns) in grid.png.
MAX_SIZE = 1024  # --size's ceiling: every image is held at --size squared (4 MB at 1024).

EXTRA_METRICS: tuple[Callable[[], scoring.SetMetric], ...] = ()


@jax.jit
def _with_ab(references_BHW3: jax.Array, ab_2: jax.Array) -> jax.Array:
  """uint8 sRGB with each reference pixel's L and the given ab (in gamut at that L)."""
  lab = color.rgb_to_lab(references_BHW3.astype(jnp.float32) / 255.0)
  lab = jnp.concatenate([lab[..., :1], jnp.broadcast_to(ab_2, lab.shape[:-1] + (2,))], -1)
  return jnp.round(color.lab_to_rgb_in_gamut(lab) * 255.0).astype(jnp.uint8)


def baseline_outputs(references_BHW3: np.ndarray, ab: Sequence[float]) -> np.ndarray:
  """The output of a "model" that paints every pixel one colour: the reference's L, ab fixed.

  Args:
    references_BHW3: uint8 sRGB [B, H, W, 3].
    ab: (a, b) in Lab units: (0, 0) is the gray baseline, the training mean the mean-colour
      one.

  Returns:
    uint8 sRGB [B, H, W, 3].
  """
  return np.asarray(_with_ab(references_BHW3, jnp.asarray(ab, jnp.float32)))


@jax.jit
def _ab_sum(images_NHW3: jax.Array) -> jax.Array:
  """Sum of (a, b) over every pixel of uint8 sRGB images: [2]."""
  return jnp.sum(color.rgb_to_lab(images_NHW3.astype(jnp.float32) / 255.0)[..., 1:],
                 axis=(0, 1, 2))


def training_mean_ab(config: ml_collections.ConfigDict,
                     max_images: int = MEAN_AB_IMAGES) -> tuple[np.ndarray, int]:
  """Mean ab over the pixels of the run's training images, as the trainer reads them.

  The first `max_images` of the run's first epoch (its shuffled order: a uniform sample of
  the training split; training augmentation, flips and crops, barely moves a mean).

  Args:
    config: the run's config.
    max_images: the most images to average over.

  Returns:
    (ab [2] in Lab units, number of images used).
  """
  per_step = input_pipeline.batches_per_step(config) * config.batch_size
  wanted = min(max_images, input_pipeline.num_train_examples(config))
  total, seen = np.zeros(2), 0
  for batch in input_pipeline.train_batches(config, start_step=0,
                                            num_steps=-(-wanted // per_step)):
    images = batch.reshape((-1,) + batch.shape[2:])[:wanted - seen]
    total += np.asarray(_ab_sum(images), np.float64)
    seen += len(images)
  return total / (seen * config.image_size**2), seen


def load_folder(folder: str, size: int, limit: int = 0) -> tuple[np.ndarray, list[str]]:
  """Every image file under `folder` (sorted), as uint8 sRGB squares of `size`.

  Each is turned upright (EXIF), converted to RGB, centre-cropped to a square and resized
  (bilinear, antialiased when shrinking).

  Args:
    folder: searched recursively for image files (`image_files.list_images`).
    size: the side of the squares.
    limit: keep the first `limit` files that load; 0 for all.

  Returns:
    (uint8 [N, size, size, 3], "path: reason" for each file that could not be read).

  Raises:
    UserError: no image file under `folder`, or none could be read.
  """
  images, failed = [], []
  for path in image_files.list_images(folder):
    if limit and len(images) == limit:
      break
    try:
      with image_files.open_image(path) as image:
        ImageOps.exif_transpose(image, in_place=True)
        rgb = Image.fromarray(image_files.to_rgb_uint8(image))
      images.append(np.asarray(ImageOps.fit(rgb, (size, size), Image.Resampling.BILINEAR)))
    except UserError as e:
      failed.append(str(e))
    # Pillow's plugins raise many types for broken files (OSError, SyntaxError, ...).
    except Exception as e:  # pylint: disable=broad-exception-caught
      failed.append(f"{path}: cannot read ({type(e).__name__}: {e})")
  if not images:
    raise UserError(f"{folder}: no readable image files "
                    f"({', '.join(image_files.EXTENSIONS)}) under it")
  return np.stack(images), failed



@dataclasses.dataclass(frozen=True)
class Decoding:
  """How a run's predictions are decoded for scoring (the flags below), in one place.

  Each choice is named the same way in eval/ folders, table labels and commands.

  Attributes:
    chroma_gain: `--chroma_gain`, the predicted chroma's scale (1: as predicted).
    temperature: `--temperature`, a classification head's annealed-mean temperature (None:
      the run's own).
    flip_average: `--flip_average`, each prediction averaged with the mirrored image's.
    transport: `--transport`, how far the colours move along the run's colour transport.
    transport_by_class: `--transport_by_class`, that transport by the predicted class (no
      effect without a transport).
  """
  chroma_gain: float = 1.0
  temperature: float | None = None
  flip_average: bool = False
  transport: float = 0.0
  transport_by_class: bool = False

  def _parts(self) -> list[tuple[str, str, str]]:
    """(folder, label, flag) of each choice that differs from the run's own colours."""
    parts, t, g = [], self.temperature, self.chroma_gain
    if t is not None:
      parts.append((f"temperature-{t:g}", f"T{t:g}", f"--temperature={t:g}"))
    if self.flip_average:
      parts.append(("flip_average", "flip avg", "--flip_average"))
    if g != 1:
      parts.append((f"chroma_gain-{g:g}", f"chroma x{g:g}", f"--chroma_gain={g:g}"))
    if s := self.transport:
      parts.append((f"transport-{s:g}", f"transport {s:g}", f"--transport={s:g}"))
      if self.transport_by_class:
        parts.append(("by_class", "by class", "--transport_by_class"))
    return parts

  def folder(self) -> str:
    """The sub-folder of eval/<step>/... that holds these scores ("" for the run's own)."""
    folders = [folder for folder, _, _ in self._parts()]
    return os.path.join(*folders) if folders else ""

  def label(self) -> str:
    """A short name for tables, e.g. "flip avg chroma x1.1" ("" for the run's own)."""
    return " ".join(label for _, label, _ in self._parts())

  def flags(self) -> list[str]:
    """The `python -m colorize.evaluate` flags that score this way."""
    return [flag for _, _, flag in self._parts()]


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
  p = errors.OneLineParser(
      prog="python -m colorize.evaluate",
      description="Evaluates trained colorizers against ground truth and baselines.",
      epilog="Exit status: 0 done, 1 some image files unreadable, 2 nothing could start.")
  p.add_argument("--workdir", help="Training workdir to evaluate (default: the first "
                 "--compare one, so `--compare runs/sweep/*` evaluates a whole sweep).")
  p.add_argument("--compare", nargs="+", default=[], metavar="WORKDIR",
                 help="More workdirs, evaluated on the same images (their latest step).")
  p.add_argument("--step", type=int, help="Checkpoint of --workdir (default: the latest).")
  p.add_argument("--split", help="Dataset split (default: the run's eval_split).")
  p.add_argument("--images", help="Evaluate on the image files under this folder instead.")
  p.add_argument("--num_images", type=int, default=0, help="The first N images; 0 for all.")
  p.add_argument("--gray_only", action="store_true",
                 help="Keep only the images whose ground truth is grayscale (a split's own "
                 "black-and-white photos: what does the model make of them?).")
  p.add_argument("--num_samples", type=int, default=NUM_SAMPLES,
                 help="Images (columns) in grid.png.")
  p.add_argument("--size", type=int, help=f"Side of the --images squares, 1..{MAX_SIZE} "
                 "(default: the run's image_size).")
  p.add_argument("--data_dir", help="Override the run's tfds data_dir (a relative one is "
                 "relative to the current directory, as in training).")
  p.add_argument("--batch_size", type=int, default=scoring.DEFAULT_BATCH_SIZE,
                 help=f"Images per model and metric call (1..{inference.MAX_BATCH_SIZE}).")
  shared_flags.add_decoding_flags(p)
  args = p.parse_args(argv)
  if not args.workdir:
    if not args.compare:
      p.error("give --workdir, --compare, or both")
    args.workdir, args.compare = args.compare[0], args.compare[1:]
  if args.num_images < 0 or args.num_samples < 1:
    p.error("--num_images must be >= 0, --num_samples positive")
  if not 1 <= args.batch_size <= inference.MAX_BATCH_SIZE:
    p.error(f"--batch_size={args.batch_size}: give 1..{inference.MAX_BATCH_SIZE}")
  if args.size is not None and not 1 <= args.size <= MAX_SIZE:
    p.error(f"--size={args.size}: give 1..{MAX_SIZE} (every image is held at that size)")
  if not all(workdir.strip() for workdir in [args.workdir] + args.compare):  # --workdir=$UNSET
    p.error("a workdir is empty (an unset shell variable?)")
  if args.images and args.split:
    p.error("--split and --images exclude each other")
  return args


def _references(config: ml_collections.ConfigDict, args: argparse.Namespace
                ) -> tuple[np.ndarray, str, str, list[str]]:
  """The images to evaluate on (with --gray_only, the grayscale ground truths among them).

  Returns:
    (uint8 [N, S, S, 3], what they are, the sub-folder of eval/<step>/ for their results:
    "" for the run's own eval split, and "path: reason" for each unreadable file).
  """
  if args.images:
    size = args.size or config.image_size
    images, failed = load_folder(args.images, size, args.num_images)
    source = f"{len(images)} images under {args.images} ({size}x{size})"
    sub_folder = f"images-{os.path.basename(os.path.normpath(args.images))}"
  else:
    if args.split and config.dataset.startswith("folder:"):
      raise UserError(f"--split does not apply to {config.dataset} (every 10th file is its "
                      "eval split); use --images for other files")
    sub_folder = "" if args.split in (None, config.eval_split) else f"split-{args.split}"
    config.eval_split = args.split or config.eval_split
    images, failed = input_pipeline.eval_images(config, args.num_images or sys.maxsize), []
    data_dir = f", data_dir={config.data_dir}" if config.data_dir else ""
    source = (f"the first {len(images)} images of {config.dataset}'s {config.eval_split!r} "
              f"split{data_dir}")
  if args.gray_only:
    gray = scoring.is_gray(images)
    chroma = f"(chroma below {scoring.GRAY_CHROMA:g} at every pixel)"
    if not gray.any():
      raise UserError(f"--gray_only: none of {source} is grayscale {chroma}")
    images, source = images[gray], f"the {gray.sum()} grayscale images {chroma} among {source}"
    sub_folder = os.path.join(sub_folder, "gray")
  return images, source, sub_folder, failed


def _check_prepared(config: ml_collections.ConfigDict, workdir: str) -> None:
  """Refuses a tfds dataset that is not prepared in the data_dir the workdir's config names.

  (Opening it would download and prepare it there: a workdir must not choose where files are
  written.)
  """
  if config.dataset == "shapes" or config.dataset.startswith("folder:"):
    return
  data_dir = os.path.expanduser(config.data_dir) if config.data_dir else None
  try:
    prepared = tfds.builder(config.dataset, data_dir=data_dir).is_prepared()
  except Exception:  # pylint: disable=broad-exception-caught
    return  # Opening it fails the same way later, with input_pipeline's one-line error.
  if not prepared:
    raise UserError(f"{config.dataset!r} is not prepared in data_dir={config.data_dir!r} (from "
                    f"{os.path.join(workdir, 'config.json')}); evaluate does not download or "
                    "prepare data: pass --data_dir=<a prepared tfds directory>")


def run(argv: list[str] | None = None) -> int:
  """The command line; returns the exit status (see the module docstring).

  Args:
    argv: the arguments without the program name; sys.argv[1:] when None.

  Returns:
    0, 1 (some image files could not be read) or 2 (nothing could start, or the results
    could not be written).
  """
  args = _parse_args(argv)
  started = time.perf_counter()
  workdirs = [args.workdir] + args.compare
  try:
    shared_flags.use_compilation_cache(args.compilation_cache_dir)
    config = restore.read_config(args.workdir)
    if args.data_dir is not None:
      config.data_dir = args.data_dir
    elif not args.images:
      _check_prepared(config, args.workdir)
    generators = [restore.restore_generator(w, args.step if i == 0 else None)
                  for i, w in enumerate(workdirs)]
    colorizers = [_colorizer(w, g, args) for w, g in zip(workdirs, generators)]
    losses = [restore.read_config(w).loss for w in workdirs]
    references, source, sub_folder, failed = _references(config, args)
    decoding = Decoding(args.chroma_gain, args.temperature, args.flip_average, args.transport,
                        args.transport_by_class)
    sub_folder = os.path.join(sub_folder, decoding.folder())
    main_dir = os.path.join(args.workdir, "eval", str(generators[0].step), sub_folder)
    atomic.check_inside(os.path.join(main_dir, "compare", "table.md"), args.workdir)
    mean_ab, mean_images = training_mean_ab(config)
  except UserError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  for line in failed:
    print(line, file=sys.stderr)

  def summary(outputs, with_per_image=False):
    return scoring.evaluate_arrays(outputs, references, batch_size=args.batch_size,
                                   extra_metrics=[factory() for factory in EXTRA_METRICS],
                                   with_per_image=with_per_image)

  gray = baseline_outputs(references, (0.0, 0.0))
  baselines = {"gray": summary(gray),
               "mean colour": summary(baseline_outputs(references, mean_ab))}
  rows, records, per_images = [], [], []
  grid_rows = [("grayscale", gray[:args.num_samples])]
  for workdir, generator, colorizer, loss in zip(workdirs, generators, colorizers, losses):
    run_started = time.perf_counter()
    outputs = np.stack(colorizer.colorize_batch(list(references)))
    label = f"{workdir} ({decoding.label()})" if decoding.label() else workdir
    run_metrics, per_image = summary(outputs, with_per_image=True)
    rows.append(eval_files.Row(label, loss, str(generator.step), run_metrics))
    per_images.append(per_image)
    records.append({
        "workdir": workdir, "step": generator.step, "loss": loss, "source": source,
        "num_images": len(references), "chroma_gain": args.chroma_gain,
        "temperature": args.temperature, "flip_average": args.flip_average,
        "transport": args.transport, "transport_by_class": args.transport_by_class,
        "seconds": round(time.perf_counter() - run_started, 2),  # Colorize + score.
        "metrics": rows[-1].metrics, "baselines": baselines,
        "mean_ab": [float(x) for x in mean_ab], "mean_ab_images": mean_images})
    grid_rows.append((f"{os.path.basename(os.path.normpath(workdir))} ({loss})",
                      outputs[:args.num_samples]))
  grid_rows.append(("ground truth", references[:args.num_samples]))
  mean_name = f"mean colour (ab = {mean_ab[0]:.1f}, {mean_ab[1]:.1f})"
  baseline_rows = [eval_files.Row("gray (ab = 0)", "-", "-", baselines["gray"]),
                   eval_files.Row(mean_name, "-", "-", baselines["mean colour"])]
  table = eval_files.markdown_table(rows + baseline_rows, source)
  # Only the first run's folder is written: the others were scored on its images, and
  # their own folders hold their own results.
  out_dir = os.path.join(main_dir, "compare") if args.compare else main_dir
  try:
    _write(main_dir, args.workdir, records[0], rows[:1] + baseline_rows, source,
           [grid_rows[0], ("output", grid_rows[1][1]), grid_rows[-1]])
    atomic.write_bytes(os.path.join(main_dir, eval_files.PER_IMAGE_FILE),
                       eval_files.per_image_bytes(per_images[0]), inside=args.workdir)
    if args.compare:
      _write(out_dir, args.workdir, {"runs": records}, rows + baseline_rows, source, grid_rows)
  except (UserError, OSError) as e:
    print(f"error: cannot write the results in {out_dir}: {e}", file=sys.stderr)
    return 2
  print(table)
  files = "metrics.json, table.md, grid.png" + (
      "" if args.compare else f", {eval_files.PER_IMAGE_FILE}")
  print(f"wrote {os.path.join(out_dir, '')} ({files}) in {time.perf_counter() - started:.1f} s",
        file=sys.stderr)
  return 1 if failed else 0


def _colorizer(workdir: str, generator: restore.Generator,
               args: argparse.Namespace) -> inference.Colorizer:
  """The Colorizer of one workdir's generator with the flags' decoding; UserError names it."""
  try:
    colorizer = inference.Colorizer(generator, batch_size=args.batch_size,
                                    chroma_gain=args.chroma_gain, temperature=args.temperature,
                                    flip_average=args.flip_average)
    config = restore.read_config(workdir)
    if args.data_dir is not None:
      config.data_dir = args.data_dir
    return inference.with_run_transport(colorizer, workdir, config, args.transport,
                                        args.transport_by_class)
  except UserError as e:
    raise UserError(f"{workdir}: {e}") from None


def _write(out_dir: str, workdir: str, record: dict, rows: Sequence[eval_files.Row], source: str,
           grid_rows: Sequence[tuple[str, np.ndarray]]) -> None:
  """Writes metrics.json, table.md and grid.png in `out_dir`, which must be inside `workdir`."""
  for name, text in (("metrics.json", json.dumps(record, indent=2)),
                     ("table.md", eval_files.markdown_table(rows, source))):
    atomic.write_bytes(os.path.join(out_dir, name), text.encode(), inside=workdir)
  scale = max(1, 128 // grid_rows[0][1].shape[1])  # 32x32 images show at 128x128.
  image_files.save_image(plots.labelled_grid(grid_rows, scale),
                         os.path.join(out_dir, "grid.png"), inside=workdir)


if __name__ == "__main__":
  sys.exit(run())
