"""Metrics over a whole set of colorized images, accumulated batch by batch.

`evaluate_arrays` is the summary that the results table (`python -m colorize.evaluate`)
reports and that the trainer logs on its eval subset; `SetMetric` is the extension point
for metrics that need network weights (FID, LPIPS), of which none is computed here.
"""
import functools
from typing import Protocol, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from colorize import batches
from colorize import color
from colorize import metrics

DEFAULT_BATCH_SIZE = 64
# The smallest mean squared error a PSNR is computed from: 8-bit quantization noise,
# (1/255)^2 / 12, i.e. 58.9 dB. An 8-bit output equal to its 8-bit reference is scored as if
# off by that much rather than as inf.
_MSE_FLOOR = 1.0 / (12.0 * 255.0**2)
PSNR_CEILING_DB = float(-10.0 * np.log10(_MSE_FLOOR))
# A ground truth whose every pixel has less chroma than this (Lab units, below a just
# noticeable difference) is a grayscale picture: CIFAR-10's test split has about 2% of them.
GRAY_CHROMA = 1.0
# Summary keys in table order.
SUMMARY_ORDER = ("psnr", "psnr_per_image", "ssim", "delta_e2000", "ab_auc", "lab_acc_2pct",
                 "lab_acc_5pct", "l1", "colorfulness", "colorfulness_ratio",
                 "ab_hist_intersection", "num_images", "gray_references")


class SetMetric(Protocol):
  """A metric over a whole evaluation set, fed batch by batch; the extension point.

  A metric that needs network weights goes here: FID would run Inception-v3 on each batch of
  outputs and references in `update`, accumulate the pool features' means and covariances,
  and return {"fid": Frechet distance} from `result`; LPIPS would add up per-pair distances
  of AlexNet/VGG features. Pass instances to `evaluate_arrays(extra_metrics=...)`, or add a
  factory to `colorize.evaluate.EXTRA_METRICS` so the command computes them for every run and
  baseline (their keys become table columns). Neither is implemented: this project ships no
  such weights.
  """

  def update(self, outputs_BHW3: np.ndarray, references_BHW3: np.ndarray) -> None:
    """Adds a batch: uint8 sRGB outputs and their ground truth, same shape [B, H, W, 3]."""

  def result(self) -> dict[str, float]:
    """The metric's values over every batch added so far."""


@jax.jit
def _is_gray_fn(images_BHW3: jax.Array) -> jax.Array:
  lab = color.rgb_to_lab(images_BHW3.astype(jnp.float32) / 255.0)
  return metrics.max_chroma(lab) < GRAY_CHROMA


def is_gray(images_BHW3: np.ndarray) -> np.ndarray:
  """Which images are grayscale pictures: every pixel's chroma below `GRAY_CHROMA`.

  Args:
    images_BHW3: uint8 sRGB [B, H, W, 3].

  Returns:
    bool [B].
  """
  return np.asarray(_is_gray_fn(np.asarray(images_BHW3)))


@functools.partial(jax.jit, static_argnames="with_ssim")
def _batch_sums(outputs_BHW3, references_BHW3, valid_B, with_ssim: bool):
  """Sums over the valid images of per-image metrics, and both ab histograms."""
  out = outputs_BHW3.astype(jnp.float32) / 255.0
  ref = references_BHW3.astype(jnp.float32) / 255.0
  out_lab, ref_lab = color.rgb_to_lab(out), color.rgb_to_lab(ref)
  mse = metrics.mean_squared_error(out, ref)
  color_reference = (metrics.max_chroma(ref_lab) >= GRAY_CHROMA).astype(jnp.float32)
  per_image = {
      "squared_error": mse,
      # Only over colour ground truths: a grayscale one reproduced by a gray output would
      # count as the ceiling, and a few of them dominate a mean of logarithms.
      "psnr_per_image": color_reference * -10.0 * jnp.log10(jnp.maximum(mse, _MSE_FLOOR)),
      "color_references": color_reference,
      "delta_e2000": jnp.mean(metrics.delta_e2000(out_lab, ref_lab), axis=(1, 2)),
      "ab_auc": metrics.ab_auc(out_lab, ref_lab),
      "lab_acc_2pct": metrics.lab_accuracy(out_lab, ref_lab, 0.02),
      "lab_acc_5pct": metrics.lab_accuracy(out_lab, ref_lab, 0.05),
      "l1": metrics.mean_absolute_error(out_lab[..., 1:], ref_lab[..., 1:]) / color.AB_SCALE,
      "colorfulness": metrics.colorfulness(out),
      "colorfulness_reference": metrics.colorfulness(ref),
  }
  if with_ssim:
    per_image["ssim"] = metrics.ssim(out, ref)
  # where, not a product: nothing computed on the padding can leak in (inf * 0 is NaN).
  sums = {k: jnp.sum(jnp.where(valid_B > 0, v, 0.0)) for k, v in per_image.items()}
  return sums, metrics.ab_histogram(out_lab, valid_B), metrics.ab_histogram(ref_lab, valid_B)


class ColorMetrics:
  """The pixel metrics of `colorize.metrics` over a set, fed batch by batch (a SetMetric).

  Batches are cut or padded to `batch_size` images, so one compiled program serves any
  number of images of one size. Sums and histogram counts are kept in float64 on the host.
  SSIM is left out for images smaller than its 11x11 window.
  """

  def __init__(self, batch_size: int = DEFAULT_BATCH_SIZE):
    self.batch_size = batch_size
    self._count = 0
    self._sums: dict[str, float] = {}
    self._histograms = np.zeros((2, metrics.AB_BINS, metrics.AB_BINS))

  def update(self, outputs_BHW3: np.ndarray, references_BHW3: np.ndarray) -> None:
    """See `SetMetric.update`.

    Raises:
      ValueError: the batches are not uint8 [B, H, W, 3] of one shape.
    """
    outputs_BHW3, references_BHW3 = np.asarray(outputs_BHW3), np.asarray(references_BHW3)
    if (outputs_BHW3.shape != references_BHW3.shape or outputs_BHW3.ndim != 4
        or outputs_BHW3.shape[-1] != 3 or outputs_BHW3.dtype != np.uint8
        or references_BHW3.dtype != np.uint8):
      raise ValueError("expected uint8 sRGB outputs and references [B, H, W, 3] of one "
                       f"shape, got {outputs_BHW3.dtype} {outputs_BHW3.shape} and "
                       f"{references_BHW3.dtype} {references_BHW3.shape}")
    with_ssim = min(outputs_BHW3.shape[1:3]) >= 2 * metrics.SSIM_RADIUS + 1
    for (outputs, references), n in batches.padded([outputs_BHW3, references_BHW3],
                                                    self.batch_size):
      valid = (np.arange(self.batch_size) < n).astype(np.float32)
      sums, hist_out, hist_ref = _batch_sums(outputs, references, valid, with_ssim)
      for key, value in jax.device_get(sums).items():
        self._sums[key] = self._sums.get(key, 0.0) + float(value)
      self._histograms += np.stack([hist_out, hist_ref])
      self._count += n

  def result(self) -> dict[str, float | None]:
    """The set's metrics (defined in colorize.metrics), in `SUMMARY_ORDER`.

    Every metric but two is a mean over all pixels of all images (or, for SSIM and the
    colourfulness, over the images, which have one size): "psnr" comes from the pooled mean
    squared error of the set; "psnr_per_image" is the mean of per-image PSNRs over the colour
    ground truths only ("gray_references" counts the others).

    Returns:
      {key: value} for the keys of `SUMMARY_ORDER` ("ssim" for images of at least 11x11),
      then "colorfulness_reference". A metric undefined on the set is None: "psnr_per_image"
      when every ground truth is grayscale, "colorfulness_ratio" when their colourfulness is 0.

    Raises:
      ValueError: no images were added.
    """
    if not self._count:
      raise ValueError("no images were evaluated")
    sums = dict(self._sums)
    color_references = sums.pop("color_references")
    means = {key: value / self._count for key, value in sums.items()}
    means["psnr"] = float(-10.0 * np.log10(max(means.pop("squared_error"), _MSE_FLOOR)))
    means["psnr_per_image"] = (sums["psnr_per_image"] / color_references
                               if color_references else None)
    reference = means["colorfulness_reference"]
    means["colorfulness_ratio"] = means["colorfulness"] / reference if reference else None
    means["ab_hist_intersection"] = float(metrics.histogram_intersection(*self._histograms))
    means["num_images"] = self._count
    means["gray_references"] = self._count - round(color_references)
    ordered = [k for k in SUMMARY_ORDER if k in means] + ["colorfulness_reference"]
    return {key: means[key] for key in ordered}


def evaluate_arrays(outputs_BHW3: np.ndarray, references_BHW3: np.ndarray, *,
                    batch_size: int = DEFAULT_BATCH_SIZE,
                    extra_metrics: Sequence[SetMetric] = ()) -> dict[str, float | None]:
  """Every summary metric of colorized images against their ground truth (module docstring).

  Args:
    outputs_BHW3: colorized images, uint8 sRGB [B, H, W, 3].
    references_BHW3: their ground truth, uint8 sRGB, same shape.
    batch_size: images per compiled call (memory, not results).
    extra_metrics: further SetMetrics (e.g. FID), fed the same batches.

  Returns:
    {metric: value}: `ColorMetrics.result()`, then each extra metric's.
  """
  color_metrics = ColorMetrics(batch_size)
  for metric in (color_metrics, *extra_metrics):
    metric.update(outputs_BHW3, references_BHW3)
  summary = color_metrics.result()
  for metric in extra_metrics:
    summary.update(metric.result())
  return summary
