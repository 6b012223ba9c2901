"""colorize.rebalance: the ab histogram against scikit-image, the weights, their lookup and use."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from skimage import color as skcolor

from colorize import ab_bins
from colorize import losses
from colorize import rebalance
from colorize import train_step
from tests import helpers


def _reference_bins(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """scikit-image's ab of each pixel: (flat bin index, distance to the nearest bin edge)."""
  ab = skcolor.rgb2lab(image).reshape(-1, 3)[:, 1:]
  shifted = ab / ab_bins.GRID + 0.5 + rebalance.BINS // 2
  cell = np.clip(np.floor(shifted), 0, rebalance.BINS - 1).astype(int)
  edge = np.abs(shifted - np.round(shifted)).min(axis=1) * ab_bins.GRID
  return cell[:, 0] * rebalance.BINS + cell[:, 1], edge


def test_ab_histogram_counts_scikit_image_bins_across_chunks(monkeypatch):
  # Chunks of 100 pixels: images of 35, 256 and 99 pixels straddle every kind of boundary.
  monkeypatch.setattr(rebalance, "_CHUNK", 100)
  rng = np.random.default_rng(0)
  images = [rng.integers(0, 256, shape, dtype=np.uint8) for shape in
            [(7, 5, 3), (16, 16, 3), (33, 3, 3)]]
  counts = rebalance.ab_histogram(images)
  index, edge = zip(*map(_reference_bins, images))
  index, edge = np.concatenate(index), np.concatenate(edge)
  reference = np.bincount(index, minlength=rebalance.BINS**2).reshape(counts.shape)
  assert counts.sum() == 35 + 256 + 99
  # Float32 and float64 Lab may put a pixel within 1e-3 of an edge into either bin.
  assert np.abs(counts - reference).sum() <= 2 * np.count_nonzero(edge < 1e-3)
  assert np.count_nonzero(counts) > 20  # Random colours fill many bins.


def test_ab_histogram_of_grays_is_the_neutral_bin():
  grays = [np.full((4, 4, 3), v, np.uint8) for v in (0, 128, 255)]
  counts = rebalance.ab_histogram(grays)
  neutral = rebalance.BINS // 2  # The bin centred on a = b = 0, not an edge.
  assert counts[neutral, neutral] == 48 and counts.sum() == 48


def _two_colour_counts() -> np.ndarray:
  counts = np.zeros((rebalance.BINS, rebalance.BINS), np.int64)
  counts[11, 11] = 9000  # Near-gray: common.
  counts[3, 18] = 900    # A rare colour, far from it (the smoothing does not mix them).
  counts[18, 3] = 100    # A rarer one.
  return counts


def test_weights_are_one_without_rebalancing():
  np.testing.assert_allclose(rebalance.class_weights(_two_colour_counts(), 0.0), 1.0,
                             rtol=1e-6)


@pytest.mark.parametrize("strength", [0.1, 0.5, 0.9])
def test_weights_favour_rare_colours_and_average_one_over_pixels(strength):
  counts = _two_colour_counts()
  weights = rebalance.class_weights(counts, strength)
  np.testing.assert_allclose(np.sum(counts * weights) / counts.sum(), 1.0, rtol=1e-5)
  assert weights[11, 11] < 1 < weights[3, 18] < weights[18, 3]
  # Bins without data get the uniform term alone, the largest weight.
  assert weights[0, 0] == weights.max()


def test_stronger_rebalancing_spreads_the_weights_further():
  counts = _two_colour_counts()
  ratios = [float(w[18, 3] / w[11, 11]) for w in
            (rebalance.class_weights(counts, s) for s in (0.1, 0.5, 0.9))]
  assert ratios == sorted(ratios) and ratios[0] > 1


@pytest.mark.parametrize("strength", [-0.1, 1.0])
def test_strength_outside_zero_one_is_refused(strength):
  with pytest.raises(ValueError, match="strength"):
    rebalance.class_weights(_two_colour_counts(), strength)


def test_empty_histogram_is_refused():
  with pytest.raises(ValueError, match="empty"):
    rebalance.class_weights(np.zeros((rebalance.BINS, rebalance.BINS)), 0.5)


def test_pixel_weights_look_up_the_true_colours_bin():
  table = np.arange(rebalance.BINS**2, dtype=np.float32).reshape(rebalance.BINS, -1)
  # Lab units -> model space (ab / 110): the outermost bins, gray, and a point 1 from a centre.
  ab = np.array([[-110.0, 110.0], [0.0, 0.0], [101.0, -49.0]]) / 110.0
  weights = rebalance.pixel_weights(jnp.asarray(ab).reshape(1, 3, 1, 2), table)
  assert weights.shape == (1, 3, 1, 1)
  np.testing.assert_array_equal(np.asarray(weights).ravel(),
                                [0 * 23 + 22, 11 * 23 + 11, 21 * 23 + 6])


def test_weighted_l1_is_the_weighted_mean_and_l1_stays_plain():
  fake = jnp.asarray(np.random.default_rng(1).normal(size=(2, 3, 3, 2)), jnp.float32)
  real = jnp.zeros_like(fake)
  weights = jnp.asarray(np.random.default_rng(2).uniform(0, 3, (2, 3, 3, 1)), jnp.float32)
  total, metrics = losses.generator_loss(None, fake, real, 10.0, "l1", weights)
  expected = np.mean(np.asarray(weights) * np.abs(np.asarray(fake)))
  np.testing.assert_allclose(float(metrics["l1_rebalanced"]), expected, rtol=1e-6)
  np.testing.assert_allclose(float(metrics["l1"]), np.mean(np.abs(np.asarray(fake))), rtol=1e-6)
  np.testing.assert_allclose(float(total), 10.0 * expected, rtol=1e-6)
  _, unweighted = losses.generator_loss(None, fake, real, 10.0, "l1")
  assert "l1_rebalanced" not in unweighted


def test_step_config_needs_the_histogram_to_rebalance():
  config = helpers.config(l1_rebalance=0.5)
  with pytest.raises(ValueError, match="ab_counts"):
    train_step.StepConfig.from_config(config)
  hp = train_step.StepConfig.from_config(config, ab_counts=_two_colour_counts())
  np.testing.assert_array_equal(np.asarray(hp.l1_class_weights),
                                rebalance.class_weights(_two_colour_counts(), 0.5))
  hash(hp)  # Bound into jit as a static value.
  assert train_step.StepConfig.from_config(helpers.config()).l1_class_weights is None


def test_weights_reach_the_generator_update():
  config = helpers.config()
  state = train_step.create_train_state(config, jax.random.key(0))
  images = jnp.asarray(np.random.default_rng(0).integers(
      0, 256, (1, config.batch_size, config.image_size, config.image_size, 3), np.uint8))
  plain = train_step.StepConfig.from_config(config)
  ones = tuple(tuple(row) for row in np.ones((rebalance.BINS, rebalance.BINS)).tolist())
  uneven = np.ones((rebalance.BINS, rebalance.BINS))
  uneven[rebalance.BINS // 2:] = 5.0  # a >= 0 weighs five times more.
  uneven = tuple(tuple(row) for row in uneven.tolist())

  def gen_params(hp):
    new, _ = jax.jit(lambda s, x: train_step.train_iteration(s, x, jax.random.key(1), hp=hp))(
        state, images)
    return jax.tree.leaves(new.gen_params)

  reference = gen_params(plain)
  for a, b in zip(reference, gen_params(dataclasses.replace(plain, l1_class_weights=ones))):
    np.testing.assert_array_equal(a, b)  # Weights of 1 are the plain L1, bit for bit.
  changed = gen_params(dataclasses.replace(plain, l1_class_weights=uneven))
  assert any(not np.array_equal(a, b) for a, b in zip(reference, changed))
