"""colorize.ab_bins and the classification head's loss: the grid, the soft encoding, the
annealed mean, and the cross-entropy against optax's."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from colorize import ab_bins
from colorize import color
from colorize import losses


def _targets(n: int, seed: int = 0) -> jax.Array:
  """Random ab in the model's units, over the whole grid and a little beyond it."""
  return jnp.asarray(np.random.default_rng(seed).uniform(-1.1, 1.1, (n, 2)), jnp.float32)


def test_every_centre_falls_in_its_own_bin():
  centres = ab_bins.centres()
  assert centres.shape == (ab_bins.BINS**2, 2)
  assert np.any(np.all(centres == 0, axis=1))  # Grays sit in the middle of one bin.
  index = ab_bins.bin_index(jnp.asarray(centres) * color.AB_SCALE)
  np.testing.assert_array_equal(index, np.arange(ab_bins.BINS**2))
  steps = np.diff(np.unique(centres[:, 0])) * color.AB_SCALE
  np.testing.assert_allclose(steps, ab_bins.GRID, rtol=1e-5)


def test_soft_encoding_is_the_2d_gaussian_over_all_bins():
  targets = _targets(64)
  p = np.asarray(ab_bins.soft_encode(targets), np.float64)
  # The separable computation against the Gaussian over every centre, in float64.
  d = (np.asarray(targets, np.float64)[:, None] - ab_bins.centres()) * color.AB_SCALE
  g = np.exp(-0.5 * np.sum(d * d, axis=-1) / ab_bins.SIGMA**2)
  np.testing.assert_allclose(p, g / g.sum(axis=1, keepdims=True), atol=1e-6)
  np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-6)
  # The most probable bin is the one the colour falls in.
  np.testing.assert_array_equal(p.argmax(axis=1),
                                ab_bins.bin_index(targets * color.AB_SCALE))


def test_annealed_mean_at_temperature_1_is_the_mean_and_near_0_the_mode():
  logits = jnp.asarray(np.random.default_rng(1).normal(0, 3, (32, ab_bins.BINS**2)),
                       jnp.float32)
  p = np.asarray(jax.nn.softmax(logits), np.float64)
  np.testing.assert_allclose(ab_bins.annealed_mean(logits, 1.0),
                             p @ ab_bins.centres().astype(np.float64), atol=1e-5)
  mode = ab_bins.centres()[np.argmax(np.asarray(logits), axis=1)]
  np.testing.assert_allclose(ab_bins.annealed_mean(logits, 0.01), mode, atol=1e-4)
  # Sharper is more saturated: chroma grows as the temperature falls.
  chroma = [float(jnp.linalg.norm(ab_bins.annealed_mean(logits, t), axis=-1).mean())
            for t in (1.0, 0.38, 0.1)]
  assert chroma[0] < chroma[1] < chroma[2]


def test_cross_entropy_is_optax_softmax_cross_entropy_on_the_soft_encoding():
  logits = jnp.asarray(np.random.default_rng(2).normal(0, 2, (2, 3, 4, ab_bins.BINS**2)),
                       jnp.float32)
  target = _targets(24, seed=3).reshape(2, 3, 4, 2)
  per_pixel = optax.softmax_cross_entropy(logits, ab_bins.soft_encode(target))
  loss, metrics = losses.ab_cross_entropy(logits, target)
  np.testing.assert_allclose(loss, per_pixel.mean(), rtol=1e-6)
  assert set(metrics) == {"cross_entropy"}
  # Rebalanced: each pixel's term weighted; the plain mean is still reported.
  weights = jnp.asarray(np.random.default_rng(5).uniform(0.1, 3, (2, 3, 4, 1)), jnp.float32)
  weighted, metrics = losses.ab_cross_entropy(logits, target, weights)
  np.testing.assert_allclose(weighted, jnp.mean(weights[..., 0] * per_pixel), rtol=1e-6)
  np.testing.assert_allclose(metrics["cross_entropy"], per_pixel.mean(), rtol=1e-6)
  assert metrics["cross_entropy_rebalanced"] == weighted
  # Its minimum over the logits is at the soft encoding itself (the entropy of it).
  best = jnp.log(jnp.maximum(ab_bins.soft_encode(target), 1e-30))  # float32's log(0) is -inf.
  assert losses.ab_cross_entropy(best, target)[0] < loss
  grad = jax.grad(lambda l: losses.ab_cross_entropy(l, target)[0])(best)
  assert float(jnp.abs(grad).max()) < 1e-6


@pytest.mark.parametrize("temperature", [0.38, 1.0])
def test_annealed_mean_stays_in_the_models_range(temperature):
  logits = jnp.asarray(np.random.default_rng(4).normal(0, 10, (16, ab_bins.BINS**2)),
                       jnp.float32)
  ab = np.asarray(ab_bins.annealed_mean(logits, temperature))
  assert np.abs(ab).max() <= 1.0 + 1e-6
