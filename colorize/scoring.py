"""Metrics over a whole set of colorized images, accumulated batch by batch.

`evaluate_arrays` is the summary that the results table (`python -m colorize.evaluate`)
reports and that the trainer logs on its eval subset; `set_metrics` recomputes it over
resamples of the images (`resample_weights`), for intervals over the images; `SetMetric` is
the extension point for metrics that need network weights (FID, LPIPS), of which none is
computed here.
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


# The values `ColorMetrics.per_image` holds for every image ("ssim" too where images are at
# least 11x11); the histograms have HISTOGRAM_BINS entries per image.
PER_IMAGE_KEYS = ("squared_error", "psnr_per_image", "color_references", "delta_e2000",
                  "ab_auc", "lab_acc_2pct", "lab_acc_5pct", "l1", "colorfulness",
                  "colorfulness_reference", "ab_histogram", "ab_histogram_reference")
HISTOGRAM_BINS = metrics.AB_BINS**2


@functools.partial(jax.jit, static_argnames="with_ssim")
def _per_image_values(outputs_BHW3, references_BHW3, with_ssim: bool):
  """Each image's metrics, and its output's and reference's ab histograms [B, BINS**2]."""
  out = outputs_BHW3.astype(jnp.float32) / 255.0
  ref = references_BHW3.astype(jnp.float32) / 255.0
  out_lab, ref_lab = color.rgb_to_lab(out), color.rgb_to_lab(ref)
  mse = metrics.mean_squared_error(out, ref)
  color_reference = (metrics.max_chroma(ref_lab) >= GRAY_CHROMA).astype(jnp.float32)
  values = {
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
    values["ssim"] = metrics.ssim(out, ref)
  histograms = jax.vmap(lambda lab: metrics.ab_histogram(lab[None]).ravel())
  values["ab_histogram"] = histograms(out_lab)
  values["ab_histogram_reference"] = histograms(ref_lab)
  return values


class ColorMetrics:
  """The pixel metrics of `colorize.metrics` over a set, fed batch by batch (a SetMetric).

  Batches are cut or padded to `batch_size` images, so one compiled program serves any
  number of images of one size. Each image's values are kept on the host (`per_image`), so
  the set's metrics can also be recomputed over resamples of its images (`set_metrics`).
  SSIM is left out for images smaller than its 11x11 window.
  """

  def __init__(self, batch_size: int = DEFAULT_BATCH_SIZE):
    self.batch_size = batch_size
    self._parts: list[dict[str, np.ndarray]] = []

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
      values = jax.device_get(_per_image_values(outputs, references, with_ssim))
      # Slicing off the padding, not weighting it by 0: nothing computed on it leaks in.
      self._parts.append({key: np.asarray(value[:n]) for key, value in values.items()})

  def per_image(self) -> dict[str, np.ndarray]:
    """Every image's values, in the order added: [N] arrays, and the ab histograms [N, BINS**2].

    Raises:
      ValueError: no images were added.
    """
    if not self._parts:
      raise ValueError("no images were evaluated")
    return {key: np.concatenate([part[key] for part in self._parts]) for key in self._parts[0]}

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
    per_image = self.per_image()
    values = set_metrics(per_image, np.ones((1, len(per_image["squared_error"]))))
    summary = {key: None if np.isnan(value[0]) else float(value[0])
               for key, value in values.items()}
    summary["num_images"] = int(summary["num_images"])
    summary["gray_references"] = round(summary["gray_references"])
    return summary


def set_metrics(per_image: dict[str, np.ndarray], weights_RN: np.ndarray
                ) -> dict[str, np.ndarray]:
  """The set's metrics (`ColorMetrics.result`) with image n counted weights_RN[r, n] times.

  Row r of the weights is one weighting of the set: all ones is the set itself, and the
  multiplicities of a sample drawn with replacement (`resample_weights`) a bootstrap
  resample of it, so one matrix product per metric scores every resample.

  Args:
    per_image: `ColorMetrics.per_image()`.
    weights_RN: non-negative weights [R, N], N the number of images.

  Returns:
    {key: float64 [R]} in `ColorMetrics.result`'s order; NaN where it has None.
  """
  weights_RN = np.asarray(weights_RN, np.float64)
  total = {key: weights_RN @ np.asarray(value, np.float64)
           for key, value in per_image.items()}
  count = weights_RN.sum(axis=1)
  color_references = total.pop("color_references")
  values = {key: total[key] / count for key in total if not key.startswith("ab_histogram")}
  values["psnr"] = -10.0 * np.log10(np.maximum(values.pop("squared_error"), _MSE_FLOOR))
  values["psnr_per_image"] = _ratio(total["psnr_per_image"], color_references)
  values["colorfulness_ratio"] = _ratio(total["colorfulness"], total["colorfulness_reference"])
  values["ab_hist_intersection"] = np.asarray(jax.vmap(metrics.histogram_intersection)(
      total["ab_histogram"], total["ab_histogram_reference"]), np.float64)
  values["num_images"] = count
  values["gray_references"] = count - color_references
  ordered = [k for k in SUMMARY_ORDER if k in values] + ["colorfulness_reference"]
  return {key: values[key] for key in ordered}


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
  """numerator / denominator, NaN where the denominator is 0 (the metric is undefined)."""
  safe = np.where(denominator > 0, denominator, 1.0)
  return np.where(denominator > 0, numerator / safe, np.nan)


def resample_weights(num_images: int, num_resamples: int, seed: int = 0) -> np.ndarray:
  """Bootstrap resamples of a set of `num_images`, as multiplicities for `set_metrics`.

  Args:
    num_images: N, the images in the set.
    num_resamples: R, the resamples, each N images drawn with replacement.
    seed: the draw's seed: every run scored with the same seed sees the same resamples, so
      differences between runs over them are paired image by image.

  Returns:
    float64 [R, N]: how often each image is drawn in each resample (each row sums to N).
  """
  rng = np.random.default_rng(seed)
  return rng.multinomial(num_images, np.full(num_images, 1.0 / num_images),
                         size=num_resamples).astype(np.float64)


def evaluate_arrays(outputs_BHW3: np.ndarray, references_BHW3: np.ndarray, *,
                    batch_size: int = DEFAULT_BATCH_SIZE,
                    extra_metrics: Sequence[SetMetric] = (), with_per_image: bool = False):
  """Every summary metric of colorized images against their ground truth (module docstring).

  Args:
    outputs_BHW3: colorized images, uint8 sRGB [B, H, W, 3].
    references_BHW3: their ground truth, uint8 sRGB, same shape.
    batch_size: images per compiled call (memory, not results).
    extra_metrics: further SetMetrics (e.g. FID), fed the same batches.
    with_per_image: also return `ColorMetrics.per_image()`.

  Returns:
    {metric: value}: `ColorMetrics.result()`, then each extra metric's; with
    `with_per_image`, (that, the images' values).
  """
  color_metrics = ColorMetrics(batch_size)
  for metric in (color_metrics, *extra_metrics):
    metric.update(outputs_BHW3, references_BHW3)
  summary = color_metrics.result()
  for metric in extra_metrics:
    summary.update(metric.result())
  return (summary, color_metrics.per_image()) if with_per_image else summary
