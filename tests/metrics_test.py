"""colorize.metrics against scikit-image and known answers."""
import numpy as np
import pytest
import skimage.metrics

from colorize import metrics


def _random_pair(shape=(3, 8, 9, 3), seed=0):
  rng = np.random.default_rng(seed)
  a = rng.uniform(0.0, 1.0, size=shape)
  b = np.clip(a + rng.normal(0.0, 0.05, size=shape), 0.0, 1.0)
  return a, b


def test_psnr_matches_skimage_float():
  a, b = _random_pair()
  got = np.asarray(metrics.psnr(a, b, data_range=1.0))
  assert got.shape == (3,)
  want = [skimage.metrics.peak_signal_noise_ratio(x, y, data_range=1.0) for x, y in zip(a, b)]
  np.testing.assert_allclose(got, want, rtol=1e-5)


def test_psnr_matches_skimage_uint8():
  a, b = _random_pair(seed=1)
  a, b = (np.round(x * 255).astype(np.uint8) for x in (a, b))
  # uint8 inputs must not wrap around when subtracted.
  got = np.asarray(metrics.psnr(a, b, data_range=255.0))
  want = [skimage.metrics.peak_signal_noise_ratio(x, y, data_range=255) for x, y in zip(a, b)]
  np.testing.assert_allclose(got, want, rtol=1e-5)


@pytest.mark.parametrize("error, data_range", [(0.1, 1.0), (0.01, 1.0), (4.0, 255.0)])
def test_psnr_uniform_error(error, data_range):
  a = np.full((2, 4, 4, 3), 0.5 * data_range)
  b = a + np.array([error, -error]).reshape(2, 1, 1, 1)
  np.testing.assert_allclose(np.asarray(metrics.psnr(a, b, data_range)),
                             [20 * np.log10(data_range / error)] * 2, rtol=1e-5)


def test_psnr_identical_is_inf():
  a, b = _random_pair()
  b[1] = a[1]
  got = np.asarray(metrics.psnr(a, b))
  assert got[1] == np.inf
  assert np.all(np.isfinite(got[[0, 2]]))


def test_psnr_batched_is_per_image():
  a, b = _random_pair(shape=(5, 6, 7, 3))
  batched = np.asarray(metrics.psnr(a, b))
  single = [float(metrics.psnr(a[i:i + 1], b[i:i + 1])[0]) for i in range(5)]
  np.testing.assert_allclose(batched, single, rtol=1e-6)


def test_mean_absolute_error():
  a, b = _random_pair()
  got = np.asarray(metrics.mean_absolute_error(a, b))
  assert got.shape == (3,)
  np.testing.assert_allclose(got, np.abs(a - b).mean(axis=(1, 2, 3)), rtol=1e-5)
  a8 = np.zeros((1, 2, 2, 3), np.uint8)
  b8 = np.full((1, 2, 2, 3), 3, np.uint8)
  # 0 - 3 in uint8 would be 253.
  np.testing.assert_allclose(np.asarray(metrics.mean_absolute_error(a8, b8)), [3.0])


def test_shape_mismatch_raises():
  with pytest.raises(ValueError, match="shape"):
    metrics.psnr(np.zeros((1, 2, 2, 3)), np.zeros((1, 2, 2, 1)))
