"""Class rebalancing of the L1 term (Zhang et al. 2016, "Colorful Image Colorization", 3.2).

Most pixels of natural images have little chroma, so a loss averaged over pixels is dominated
by grays and browns, and a generator that predicts them everywhere loses little. Zhang et al.
weight each pixel by the rarity of its true colour: over the bins of the ab plane
(colorize/ab_bins.py), the training set's distribution p is smoothed with a Gaussian
(sigma 5), mixed with a uniform distribution over the Q bins in use, and a pixel whose colour
falls in bin q weighs

    w_q = 1 / (strength * p_q + (1 - strength) / Q),

scaled here so that the average weight of a training pixel is 1 and `l1_weight` keeps its
meaning. `strength` is their 1 - lambda: 0 weighs every pixel alike, 0.5 is their choice, and
towards 1 the weights approach 1 / p. They rebalance a classification loss over the bins; here
the same weights multiply the L1 distance of each pixel (config.l1_rebalance). What that does
to the colours is measured in docs/results.md.
"""
from typing import Iterable

import jax
import jax.numpy as jnp
import numpy as np

from colorize import ab_bins
from colorize import color

BINS = ab_bins.BINS  # Per axis: the histogram and weight tables are [BINS, BINS].
_CHUNK = 1 << 18  # Pixels per compiled colour conversion: one shape, compiled once.


@jax.jit
def _chunk_counts(rgb_N3: jax.Array, valid_N: jax.Array) -> jax.Array:
  ab = color.rgb_to_lab(rgb_N3.astype(jnp.float32) / 255.0)[:, 1:]
  # float32 counts are exact: a chunk has fewer than 2**24 pixels.
  return jnp.zeros(BINS * BINS, jnp.float32).at[ab_bins.bin_index(ab)].add(valid_N)


def ab_histogram(images: Iterable[np.ndarray]) -> np.ndarray:
  """Counts the pixels of `images` in each ab bin.

  Args:
    images: uint8 RGB images [H, W, 3], of any sizes (e.g. `input_pipeline.train_images`).

  Returns:
    int64 counts [BINS, BINS]: axis 0 is a, axis 1 is b; bin i is centred on
    (i - BINS // 2) * ab_bins.GRID and covers ab_bins.GRID / 2 either side (the outermost
    bins hold the rest).
  """
  counts = np.zeros(BINS * BINS, np.int64)
  pending, size = [], 0

  def flush(pixels):
    valid = np.zeros(_CHUNK, np.float32)
    valid[:len(pixels)] = 1.0
    padded = np.zeros((_CHUNK, 3), np.uint8)
    padded[:len(pixels)] = pixels
    counts[:] += np.asarray(_chunk_counts(padded, valid)).astype(np.int64)

  for image in images:
    pending.append(np.asarray(image, np.uint8).reshape(-1, 3))
    size += len(pending[-1])
    while size >= _CHUNK:
      pixels = np.concatenate(pending)
      flush(pixels[:_CHUNK])
      pending, size = [pixels[_CHUNK:]], size - _CHUNK
  if size:
    flush(np.concatenate(pending))
  return counts.reshape(BINS, BINS)


def _smoothed(p: np.ndarray) -> np.ndarray:
  """p [BINS, BINS] convolved with a Gaussian of SIGMA ab units (zero outside the grid)."""
  sigma = ab_bins.SIGMA / ab_bins.GRID
  offsets = np.arange(-int(np.ceil(4 * sigma)), int(np.ceil(4 * sigma)) + 1)
  kernel = np.exp(-0.5 * (offsets / sigma)**2)
  kernel /= kernel.sum()
  blur = lambda x: np.convolve(x, kernel, mode="same")  # noqa: E731
  return np.apply_along_axis(blur, 1, np.apply_along_axis(blur, 0, p))


def class_weights(counts: np.ndarray, strength: float) -> np.ndarray:
  """The per-bin weights of Zhang et al. for the ab histogram `counts` (module docstring).

  Args:
    counts: pixel counts [BINS, BINS] of the training split (`ab_histogram`).
    strength: in [0, 1); 0 gives every bin weight 1.

  Returns:
    float32 weights [BINS, BINS], scaled so that the mean weight of the pixels counted is 1;
    bins outside the data's support get the largest (the uniform term alone).

  Raises:
    ValueError: `strength` is outside [0, 1), or `counts` holds no pixel.
  """
  if not 0 <= strength < 1:
    raise ValueError(f"strength={strength} must be in [0, 1) (1 would give unbounded weights)")
  total = counts.sum()
  if total <= 0:
    raise ValueError("the ab histogram is empty: no training pixels to rebalance by")
  p = _smoothed(counts / total)
  weights = 1.0 / (strength * p + (1.0 - strength) / np.count_nonzero(counts))
  return (weights / np.sum(counts / total * weights)).astype(np.float32)


def pixel_weights(target_ab: jax.Array, weights: jax.Array) -> jax.Array:
  """Each pixel's weight, looked up by its true colour's bin.

  Args:
    target_ab: true ab in the model's space (ab / AB_SCALE, `color.encode`), [..., 2].
    weights: `class_weights` [BINS, BINS].

  Returns:
    float32 weights [..., 1], to multiply a per-pixel loss over the ab channels.
  """
  index = ab_bins.bin_index(jnp.asarray(target_ab, jnp.float32) * color.AB_SCALE)
  return jnp.asarray(weights, jnp.float32).reshape(-1)[index][..., None]
