"""Pictures: sample grids (Pillow), training curves and the results' trade-off (matplotlib).

matplotlib is imported inside the plotting functions only, so the trainer, which imports this
module for the sample grids, does not pay for it.
"""
import io
import json
import os
from typing import Sequence

from etils import epath
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from colorize import atomic
from colorize import image_files

_GAP = 2  # White pixels between images, between rows and around the grid.
_LABEL_PAD = 4  # Pixels left and right of the label text.

# Figure file name -> (title, metric keys plotted in it). A figure is written when at least
# one of its keys appears in the log.
CURVES = {
    "critic_loss.png": ("Critic", ("critic_loss", "wasserstein", "gradient_penalty")),
    "l1_loss.png": ("L1 reconstruction loss", ("l1", "eval_l1")),
    # The periodic eval's accuracy and colour apart (their scales differ): a GAN trades one
    # for the other as it trains, which a single final figure does not show.
    "eval_psnr.png": ("Eval split: pooled PSNR (dB)", ("eval_psnr",)),
    "eval_color.png": ("Eval split: colour against the ground truth",
                       ("eval_colorfulness_ratio", "eval_ab_hist_intersection")),
}


def labelled_grid(rows: Sequence[tuple[str, np.ndarray]], scale: int = 4) -> np.ndarray:
  """Lays out batches of images as labelled rows, e.g. grayscale | generated | real.

  Each row holds its N images side by side, each upscaled `scale` times with nearest
  neighbour (so pixels stay visible for 32x32 images); a label column on the left names
  the rows. Every image has a `_GAP`-pixel white frame, shared with its neighbours: image
  (row i, column j) starts at y = 2 + i * (H * scale + 2) and
  x = label_width + 2 + j * (W * scale + 2).

  Args:
    rows: (label, images [N, H, W, 3] or [N, H, W, 1] (gray), float in [0, 1] or uint8) per
      row, all of one N, H and W.
    scale: integer upscaling factor, >= 1.

  Returns:
    uint8 image [rows * (H * scale + 2) + 2, label_width + N * (W * scale + 2) + 2, 3].
  """
  if scale < 1:
    raise ValueError(f"scale={scale} must be a positive integer.")
  grids = [image_files.to_uint8(np.asarray(b)) for _, b in rows]
  grids = [np.repeat(b, 3, axis=-1) if b.shape[-1:] == (1,) else b for b in grids]
  if len({b.shape for b in grids}) != 1 or grids[0].ndim != 4 or grids[0].shape[-1] != 3:
    raise ValueError(f"Expected [N, H, W, 3] batches of one shape, got "
                     f"{[b.shape for b in grids]}.")
  n, h, w, _ = grids[0].shape
  cell_h, cell_w = h * scale + _GAP, w * scale + _GAP

  font = ImageFont.load_default()
  measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
  text_w = max(measure.textbbox((0, 0), label, font=font)[2] for label, _ in rows)
  label_w = text_w + 2 * _LABEL_PAD

  canvas = Image.new("RGB", (label_w + n * cell_w + _GAP, len(rows) * cell_h + _GAP), "white")
  draw = ImageDraw.Draw(canvas)
  for i, ((label, _), images_NHW3) in enumerate(zip(rows, grids)):
    y = _GAP + i * cell_h
    # Anchor "lm": left edge, vertical middle of the text at the middle of the row.
    draw.text((_LABEL_PAD, y + h * scale // 2), label, fill="black", font=font, anchor="lm")
    for j, image_HW3 in enumerate(images_NHW3):
      big = image_HW3.repeat(scale, axis=0).repeat(scale, axis=1)
      canvas.paste(Image.fromarray(big), (label_w + _GAP + j * cell_w, y))
  return np.asarray(canvas)


def _read_series(metrics_jsonl: str) -> dict[str, tuple[list[int], list[float]]]:
  """Reads a JSON-lines log into {metric: (steps, values)}, sorted by step."""
  text = epath.Path(metrics_jsonl).read_text()
  lines = [(n, line) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
  by_step: dict[str, dict[int, float]] = {}
  for index, (n, line) in enumerate(lines):
    try:
      record = json.loads(line)
    except json.JSONDecodeError as e:
      # A run killed while writing leaves a truncated last line; anything else is corrupt.
      if index == len(lines) - 1:
        break
      raise ValueError(f"{metrics_jsonl}:{n} is not valid JSON: {e}") from e
    step = record.get("step")
    if step is None:
      continue
    for name, value in record.items():
      if name != "step" and isinstance(value, (int, float)):
        # A resumed run logs again the steps after its last checkpoint; the later line is
        # the one of the run that went on, so it wins.
        by_step.setdefault(name, {})[int(step)] = float(value)
  return {name: (sorted(values), [values[s] for s in sorted(values)])
          for name, values in by_step.items()}


def plot_curves(metrics_jsonl: str, out_dir: str,
                inside: str | os.PathLike | None = None) -> list[str]:
  """Plots the training curves of a JSON-lines metrics log as PNGs (see `CURVES`).

  Each log line is an object with "step" and some metrics; metrics absent from a line are
  simply not plotted at that step (eval metrics are logged less often). A figure whose
  metrics are all absent is skipped, e.g. the critic figure of the "l1" ablation.

  Args:
    metrics_jsonl: path of the log (local or gs://...).
    out_dir: directory for the PNGs, created if missing (local or gs://...).
    inside: if given, the folder the PNGs must stay in (e.g. the workdir).

  Returns:
    The paths written, in `CURVES` order.
  """
  # The object-oriented API with an explicit Agg canvas: no pyplot global state and no
  # change of the process-wide backend (a notebook importing this keeps its own).
  from matplotlib.backends.backend_agg import FigureCanvasAgg  # pylint: disable=g-import-not-at-top
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top

  series = _read_series(metrics_jsonl)
  written = []
  for file_name, (title, keys) in CURVES.items():
    present = [k for k in keys if k in series]
    if not present:
      continue
    fig = Figure(figsize=(7, 4.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for key in present:
      steps, values = series[key]
      # Markers for sparse series (eval every few thousand steps) so single points show.
      ax.plot(steps, values, label=key, marker="o" if len(steps) < 30 else None, markersize=3)
    ax.set_title(title)
    ax.set_xlabel("step")
    ax.set_ylabel("value")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path = epath.Path(out_dir) / file_name
    atomic.write_bytes(path, _png(fig), inside)
    written.append(os.fspath(path))
  return written


def _png(fig) -> bytes:
  buffer = io.BytesIO()
  fig.savefig(buffer, format="png")
  return buffer.getvalue()


# (metric key, axis label, the colour target of docs/results.md) of the trade-off panels.
TRADEOFF_AXES = (("colorfulness_ratio", "colourfulness ratio (1: the ground truth's)", 0.8),
                 ("ab_hist_intersection", "ab-histogram intersection", 0.85))


def plot_tradeoff(groups: dict[str, list[dict[str, float]]], baselines: dict[str, dict],
                  path: str, reference: str | None = None) -> None:
  """Pooled PSNR against colour, one point per group (mean, with the std over its seeds).

  Accuracy and colour trade off (a stronger adversarial term, or a chroma gain, buys one with
  the other), so a table row is best read as a point in this plane: a change that helps moves
  up and right, beyond the line the others lie on.

  Args:
    groups: group name -> the metrics of each of its runs (one dict per seed).
    baselines: name -> metrics, drawn as gray crosses (e.g. the gray and mean-colour outputs).
    path: the PNG to write (atomically).
    reference: a group whose mean PSNR is drawn as a dashed line; the region above it and
      right of the colour target is shaded.
  """
  from matplotlib.backends.backend_agg import FigureCanvasAgg  # pylint: disable=g-import-not-at-top
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top

  fig = Figure(figsize=(12, 5.5), dpi=100)
  FigureCanvasAgg(fig)
  axes = fig.subplots(1, 2, sharey=True)
  spread = lambda v: np.std(v, ddof=1) if len(v) > 1 else 0.0  # noqa: E731
  for ax, (key, label, target) in zip(axes, TRADEOFF_AXES):
    for number, runs in enumerate(groups.values(), 1):
      x, y = [r[key] for r in runs], [r["psnr"] for r in runs]
      ax.errorbar(np.mean(x), np.mean(y), xerr=spread(x), yerr=spread(y), fmt="o",
                  markersize=4, capsize=2)
      ax.annotate(str(number), (np.mean(x), np.mean(y)), textcoords="offset points",
                  xytext=(4, 3), fontsize=8)
    for name, metrics in baselines.items():
      ax.plot(metrics[key], metrics["psnr"], "x", color="gray")
      ax.annotate(name, (metrics[key], metrics["psnr"]), textcoords="offset points",
                  xytext=(4, -10), fontsize=8, color="gray")
    ax.axvline(target, linestyle=":", color="black", linewidth=1)
    if reference:  # Shaded: more accurate than the reference and at the colour target.
      psnr = np.mean([r["psnr"] for r in groups[reference]])
      ax.axhline(psnr, linestyle="--", color="gray", linewidth=1)
      (left, right), (bottom, top) = ax.get_xlim(), ax.get_ylim()
      ax.fill_between([target, max(right, target)], psnr, max(top, psnr), color="green",
                      alpha=0.08)
      ax.set_xlim(left, right)
      ax.set_ylim(bottom, top)
    ax.set_xlabel(f"{label}; dotted: target {target}")
    ax.grid(True, alpha=0.3)
  axes[0].set_ylabel("pooled PSNR (dB)" + (f"; dashed: {reference}" if reference else ""))
  fig.text(0.01, 0.01, "   ".join(f"{i}: {name}" for i, name in enumerate(groups, 1)),
           fontsize=8, wrap=True)
  fig.tight_layout(rect=(0, 0.08, 1, 1))
  atomic.write_bytes(path, _png(fig))
