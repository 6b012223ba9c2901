"""The quantised ab plane of Zhang et al. 2016 ("Colorful Image Colorization"), in one place.

The ab plane is cut into square bins of GRID ab units centred on multiples of GRID (so the
grays, a = b = 0, sit in the middle of one bin, not on four edges), from -AB_SCALE to AB_SCALE
on both axes, which holds the sRGB gamut. Two users: class rebalancing counts the training
split's colours in these bins (colorize/rebalance.py), and the classification head predicts a
distribution over them (`models.UNetGenerator(head="classification")`): trained with a
cross-entropy against a soft encoding of the true colour, decoded by the annealed mean.
"""
import jax
import jax.numpy as jnp
import numpy as np

from colorize import color

GRID = 10.0  # ab units per bin, as Zhang et al.
SIGMA = 5.0  # The soft encoding's (and the rebalancing prior's) Gaussian, as Zhang et al.
_HALF = int(color.AB_SCALE / GRID)
BINS = 2 * _HALF + 1  # Per axis; the head predicts BINS**2 classes.


def bin_index(ab: jax.Array) -> jax.Array:
  """Flat bin index in [0, BINS**2) of ab in Lab units [..., 2] (the nearest centre)."""
  cell = jnp.clip(jnp.floor(ab / GRID + 0.5) + _HALF, 0, BINS - 1).astype(jnp.int32)
  return cell[..., 0] * BINS + cell[..., 1]


def _axis() -> np.ndarray:
  """The bin centres along a or b, in the model's ab units (ab / AB_SCALE), [BINS]."""
  return ((np.arange(BINS) - _HALF) * GRID / color.AB_SCALE).astype(np.float32)


def centres() -> np.ndarray:
  """The bins' centres in the model's ab units (ab / AB_SCALE), [BINS**2, 2], a-major."""
  a, b = np.meshgrid(_axis(), _axis(), indexing="ij")
  return np.stack([a.ravel(), b.ravel()], axis=-1).astype(np.float32)


def soft_encode(target_ab: jax.Array) -> jax.Array:
  """The true colour as a distribution over the bins: a Gaussian (SIGMA) around it.

  Zhang et al. keep the 5 nearest centres; here every bin gets its Gaussian weight (the far
  ones' are negligible), so the encoding is a smooth function of the colour and needs no
  neighbour search. The Gaussian factors over a and b, and so does its normalisation: it is
  computed as the outer product of two [BINS] distributions, not over all BINS**2 bins.

  Args:
    target_ab: true ab in the model's units (`color.encode`), [..., 2].

  Returns:
    float32 probabilities [..., BINS**2] that sum to 1.
  """
  d = (target_ab.astype(jnp.float32)[..., None] - jnp.asarray(_axis())) * (
      color.AB_SCALE / SIGMA)  # [..., 2, BINS]
  p = jax.nn.softmax(-0.5 * d * d, axis=-1)
  return (p[..., 0, :, None] * p[..., 1, None, :]).reshape(*p.shape[:-2], BINS * BINS)


def annealed_mean(logits: jax.Array, temperature: float) -> jax.Array:
  """Zhang et al.'s decoding: the mean of the distribution sharpened by `temperature`.

  Temperature 1 gives the distribution's mean (desaturated where the model is unsure between
  hues); towards 0 it approaches the most likely bin (vivid, but patchy). Zhang et al. use
  0.38.

  Args:
    logits: [..., BINS**2] unnormalised log-probabilities over the bins.
    temperature: > 0.

  Returns:
    float32 ab in the model's units [..., 2].
  """
  p = jax.nn.softmax(logits.astype(jnp.float32) / temperature, axis=-1)
  p = p.reshape(*p.shape[:-1], BINS, BINS)
  axis = jnp.asarray(_axis())
  # The mean of a and of b from the marginals: sums, rather than a matmul with 2 columns.
  return jnp.stack([p.sum(-1) @ axis, p.sum(-2) @ axis], axis=-1)
