"""The files `colorize.evaluate` writes beside metrics.json, and how they are read back.

table.md: the runs and baselines as a markdown table, with the metrics' legend; strings from
configs are escaped, so a workdir's data_dir or a path can neither break the table nor become
markup. per_image.npz: each image's values (`scoring.ColorMetrics.per_image()`), from which
`scoring.set_metrics` recomputes the summary over resamples of the images
(scripts/results_table.py --bootstrap); read back as data from a workdir, size-checked first.
"""
import dataclasses
import io
from typing import Sequence

import numpy as np

from colorize import scoring
from colorize import workdir as workdir_lib
from colorize.errors import UserError

# Summary metrics in table order: key -> (column heading, format). Definitions in LEGEND.
COLUMNS = {
    "psnr": ("PSNR dB ↑", "{:.2f}"),
    "psnr_per_image": ("PSNR/img dB ↑", "{:.2f}"),
    "ssim": ("SSIM ↑", "{:.4f}"),
    "delta_e2000": ("ΔE00 ↓", "{:.2f}"),
    "ab_auc": ("AuC ab ↑", "{:.4f}"),
    "lab_acc_2pct": ("acc 2% ↑", "{:.4f}"),
    "lab_acc_5pct": ("acc 5% ↑", "{:.4f}"),
    "l1": ("L1 ab/110 ↓", "{:.4f}"),
    "colorfulness": ("colourful.", "{:.1f}"),
    "colorfulness_ratio": ("colourful. ratio →1", "{:.3f}"),
    "ab_hist_intersection": ("ab hist. ∩ ↑", "{:.3f}"),
}
# Summary values that describe the set rather than score a run: in the legend, not columns.
_NOT_COLUMNS = ("colorfulness_reference", "num_images", "gray_references")
LEGEND = """\
Metrics (outputs are 8-bit sRGB, as saved; {num_images} images, {gray_references} of whose
ground truths are grayscale, i.e. chroma < {gray_chroma:g} at every pixel):
PSNR: from the mean squared error pooled over every pixel of the set (sRGB in [0, 1], data
range 1), the headline; PSNR/img: the mean of per-image PSNRs over the colour ground truths
only (a grayscale ground truth that a gray output reproduces would count 58.9 dB, the 8-bit
quantization ceiling, and a few such images dominate a mean of logarithms). All other
metrics are means over every pixel (SSIM, colourfulness: over images of one size): SSIM on
sRGB (11x11 Gaussian window, sigma 1.5, per channel); ΔE00: CIEDE2000; AuC ab: area under the
curve of the fraction of pixels whose ab error (L2, Lab units) is <= t, t in [0, 150], over
150 (Zhang et al. 2016); acc 2% / 5%: fraction of pixels with L, a and b all within 2% / 5%
of their range (100, 220, 220; Nazeri et al. 2018); L1 ab/110: mean |ab error| / 110 (the
trainer's eval_l1); colourful.: Hasler & Süsstrunk's M on sRGB 0-255 (ground truth:
{reference}); ratio: mean M of outputs / of ground truth; ab hist. ∩: intersection of the ab
histograms (10x10 bins) of all output and all ground-truth pixels. "n/a": undefined on this
set. FID and LPIPS are not computed.
"""

PER_IMAGE_FILE = "per_image.npz"


def read_per_image(path: str, num_images: int) -> dict[str, np.ndarray]:
  """The images' values that evaluate kept beside a record of `num_images` images.

  Args:
    path: a `PER_IMAGE_FILE`.
    num_images: the record's image count.

  Returns:
    `scoring.ColorMetrics.per_image()` as it was written.

  Raises:
    UserError: the file is missing, damaged, or does not hold `num_images` images' values
      (named, with the fix).
  """
  fix = "delete it and its metrics.json and score the run again"
  # Float32s per image: one per key (a histogram's HISTOGRAM_BINS), and SSIM's.
  row = 1 + sum(scoring.HISTOGRAM_BINS if key.startswith("ab_hist") else 1
                for key in scoring.PER_IMAGE_KEYS)
  try:
    values = workdir_lib.read_arrays(path, 4 * row * num_images + (1 << 20))
  except ValueError as e:
    raise UserError(f"{path}: not readable per-image values ({e}): {fix}") from None
  for key in scoring.PER_IMAGE_KEYS:
    value = values.get(key)
    shape = (num_images, scoring.HISTOGRAM_BINS) if key.startswith("ab_hist") else (num_images,)
    if value is None or value.shape != shape or not np.isfinite(value).all():
      got = "missing" if value is None else f"{value.dtype} {value.shape}"
      raise UserError(f"{path}: {key} is {got}, not {num_images} images' finite values: {fix}")
  return values


def per_image_bytes(per_image: dict[str, np.ndarray]) -> bytes:
  """`per_image` as the bytes of a PER_IMAGE_FILE (float32s, compressed)."""
  buffer = io.BytesIO()
  np.savez_compressed(buffer, **{k: v.astype(np.float32) for k, v in per_image.items()})
  return buffer.getvalue()

@dataclasses.dataclass
class Row:
  """One line of the results table: a run or a baseline."""
  name: str
  loss: str
  step: str
  metrics: dict[str, float]


def _md(text: str) -> str:
  """`text` as literal Markdown on one line: strings from a config (a data_dir, a path) can
  neither end the line or the table cell nor become markup or HTML."""
  text = "".join("\\" + c if c in "\\|`<>[]*" else c for c in text)
  return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def markdown_table(rows: Sequence[Row], source: str) -> str:
  """The results table in markdown, with what it was computed on and the metric legend."""
  extra = [k for k in rows[0].metrics if k not in COLUMNS and k not in _NOT_COLUMNS]
  keys = [k for k in COLUMNS if k in rows[0].metrics] + extra
  heads = ["run", "loss", "step"] + [COLUMNS.get(k, (k,))[0] for k in keys]
  lines = [f"Evaluated on {_md(source)}.", "", "| " + " | ".join(heads) + " |",
           "| --- | --- | ---: |" + " ---: |" * len(keys)]
  for row in rows:
    cells = ["n/a" if row.metrics[k] is None else COLUMNS.get(k, (k, "{:.4g}"))[1].format(
        row.metrics[k]) for k in keys]
    lines.append("| " + " | ".join([_md(row.name), _md(row.loss), _md(row.step)] + cells)
                 + " |")
  first = rows[0].metrics
  legend = LEGEND.format(reference=f"{first['colorfulness_reference']:.1f}",
                         num_images=first["num_images"], gray_references=first["gray_references"],
                         gray_chroma=scoring.GRAY_CHROMA)
  return "\n".join(lines) + "\n\n" + legend
