"""colorize.metrics against scikit-image and known answers."""
import numpy as np
import pytest
import skimage.color
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


# --- SSIM -------------------------------------------------------------------------------

def _skimage_ssim(a, b, data_range):
  # The settings colorize.metrics.ssim documents: Wang et al.'s Gaussian window.
  return skimage.metrics.structural_similarity(
      a, b, data_range=data_range, channel_axis=-1, gaussian_weights=True, sigma=1.5,
      use_sample_covariance=False)


def test_ssim_matches_skimage_float():
  a, b = _random_pair(shape=(3, 13, 17, 3))
  got = np.asarray(metrics.ssim(a, b, data_range=1.0))
  want = [_skimage_ssim(x, y, 1.0) for x, y in zip(a, b)]
  np.testing.assert_allclose(got, want, atol=2e-5)


def test_ssim_matches_skimage_uint8():
  a, b = _random_pair(shape=(2, 32, 32, 3), seed=2)
  a, b = (np.round(x * 255).astype(np.uint8) for x in (a, b))
  got = np.asarray(metrics.ssim(a, b, data_range=255.0))
  want = [_skimage_ssim(x, y, 255) for x, y in zip(a, b)]
  np.testing.assert_allclose(got, want, atol=2e-5)


def test_ssim_known_answers():
  a, _ = _random_pair(shape=(2, 11, 11, 3))
  np.testing.assert_allclose(np.asarray(metrics.ssim(a, a)), [1.0, 1.0], atol=1e-5)
  # Two flat images: no variance, so SSIM is the luminance term (2 m n + C1) / (m^2 + n^2 + C1).
  m, n, c1 = 0.2, 0.6, 0.01**2
  flat = np.full((1, 12, 12, 1), m), np.full((1, 12, 12, 1), n)
  np.testing.assert_allclose(np.asarray(metrics.ssim(*flat)),
                             [(2 * m * n + c1) / (m * m + n * n + c1)], rtol=1e-5)


def test_ssim_needs_the_whole_window():
  with pytest.raises(ValueError, match="H, W >= 11"):
    metrics.ssim(np.zeros((1, 10, 32, 3)), np.zeros((1, 10, 32, 3)))


# --- CIEDE2000 --------------------------------------------------------------------------

# Pairs from the CIEDE2000 test data of Sharma, Wu and Dalal (2005), with their published
# Delta E00 (4 decimals).
SHARMA_PAIRS = [
    ((50.0, 2.6772, -79.7751), (50.0, 0.0, -82.7485), 2.0425),
    ((50.0, 3.1571, -77.2803), (50.0, 0.0, -82.7485), 2.8615),
    ((50.0, 2.8361, -74.0200), (50.0, 0.0, -82.7485), 3.4412),
    ((50.0, 0.0, 0.0), (50.0, -1.0, 2.0), 2.3669),
    ((50.0, 2.5, 0.0), (73.0, 25.0, -18.0), 27.1492),
    ((50.0, 2.5, 0.0), (61.0, -5.0, 29.0), 22.8977),
    ((50.0, 2.5, 0.0), (56.0, -27.0, -3.0), 31.9030),
    ((50.0, 2.5, 0.0), (58.0, 24.0, 15.0), 19.4535),
    ((60.2574, -34.0099, 36.2677), (60.4626, -34.1751, 39.4387), 1.2644),
]


def test_delta_e2000_sharma_test_data():
  lab1, lab2, want = (np.array(x) for x in zip(*SHARMA_PAIRS))
  np.testing.assert_allclose(np.asarray(metrics.delta_e2000(lab1, lab2)), want, atol=1e-4)
  # Symmetric.
  np.testing.assert_allclose(np.asarray(metrics.delta_e2000(lab2, lab1)), want, atol=1e-4)


def test_delta_e2000_matches_skimage_on_random_lab():
  rng = np.random.default_rng(3)
  lab1, lab2 = (np.stack([rng.uniform(0, 100, 5000), rng.uniform(-110, 110, 5000),
                          rng.uniform(-110, 110, 5000)], axis=-1) for _ in range(2))
  lab1[:50, 1:] = 0.0  # Zero chroma: the hue conventions.
  lab2[25:75, 1:] = 0.0
  lab2[100:150, 2] = lab1[100:150, 2]  # Hues on both sides of the 0/360 degree seam.
  lab2[100:150, 1] = -lab1[100:150, 1]
  got = np.asarray(metrics.delta_e2000(lab1, lab2))
  np.testing.assert_allclose(got, skimage.color.deltaE_ciede2000(lab1, lab2), atol=2e-4)


def test_delta_e2000_known_answers():
  lab = skimage.color.rgb2lab(_random_pair()[0])
  np.testing.assert_allclose(np.asarray(metrics.delta_e2000(lab, lab)), 0.0, atol=1e-6)
  # Neutral colours around L = 50, where S_L = 1: the difference is the lightness difference.
  np.testing.assert_allclose(
      np.asarray(metrics.delta_e2000(np.array([[49.0, 0, 0]]), np.array([[51.0, 0, 0]]))),
      [2.0], rtol=1e-6)


# --- AuC of the cumulative ab error -------------------------------------------------------

def _lab_with_ab_offset(offset_a, offset_b, shape=(2, 5, 6)):
  rng = np.random.default_rng(5)
  lab = np.stack([rng.uniform(0, 100, shape), rng.uniform(-60, 60, shape),
                  rng.uniform(-60, 60, shape)], axis=-1)
  return lab, lab + np.array([0.0, offset_a, offset_b])


@pytest.mark.parametrize("offset_a, offset_b, want", [
    (0.0, 0.0, 1.0), (30.0, 40.0, 1 - 50 / 150), (-90.0, 120.0, 0.0), (200.0, 0.0, 0.0)])
def test_ab_auc_constant_offset(offset_a, offset_b, want):
  # Every pixel is off by the same distance d: the curve steps from 0 to 1 at d.
  got = np.asarray(metrics.ab_auc(*_lab_with_ab_offset(offset_a, offset_b)))
  np.testing.assert_allclose(got, [want, want], atol=1e-6)


def test_ab_auc_equals_the_threshold_sweep():
  a, b = _random_pair(shape=(3, 8, 8, 3), seed=6)
  b = np.clip(a + np.random.default_rng(7).normal(0, 0.3, a.shape), 0, 1)
  la, lb = skimage.color.rgb2lab(a), skimage.color.rgb2lab(b)
  error = np.linalg.norm(la[..., 1:] - lb[..., 1:], axis=-1).reshape(3, -1)
  got = np.asarray(metrics.ab_auc(la, lb))

  def sweep(thresholds):
    curve = (error[:, None, :] <= thresholds[None, :, None]).mean(axis=-1)
    return np.trapezoid(curve, thresholds, axis=-1) / 150.0

  np.testing.assert_allclose(got, sweep(np.linspace(0, 150, 150_001)), atol=1e-4)
  # Zhang et al.'s integer thresholds 0..150 differ by less than half a step.
  np.testing.assert_allclose(got, sweep(np.arange(151.0)), atol=0.5 / 150)


# --- Lab pixel accuracy ------------------------------------------------------------------

@pytest.mark.parametrize("fraction", [0.02, 0.05])
def test_lab_accuracy_thresholds_per_channel(fraction):
  base = np.array([50.0, 10.0, -20.0])
  inside = fraction * np.array([100.0, 220.0, 220.0]) * 0.99
  outside = fraction * np.array([100.0, 220.0, 220.0]) * 1.01
  # Pixel 0 identical, 1 inside on every channel, 2-4 outside on one channel each (L, a, b).
  other = np.stack([base, base + inside, base - inside * [0, 0, 1] + [outside[0], 0, 0],
                    base - [0, outside[1], 0], base + [0, 0, outside[2]]])
  lab_a = np.broadcast_to(base, (1, 1, 5, 3))
  got = np.asarray(metrics.lab_accuracy(lab_a, other[None, None], fraction))
  np.testing.assert_allclose(got, [2 / 5], rtol=1e-6)


def test_lab_accuracy_identical_is_one():
  lab = skimage.color.rgb2lab(_random_pair()[0])
  np.testing.assert_allclose(np.asarray(metrics.lab_accuracy(lab, lab, 0.02)), 1.0)


# --- Colourfulness -----------------------------------------------------------------------

def test_colorfulness_known_answers():
  rng = np.random.default_rng(8)
  gray = np.repeat(rng.uniform(0, 1, (2, 5, 5, 1)), 3, axis=-1)
  np.testing.assert_allclose(np.asarray(metrics.colorfulness(gray)), [0.0, 0.0], atol=1e-4)
  # A flat pure red: no spread, rg = 255 and yb = 127.5 everywhere.
  red = np.zeros((1, 4, 4, 3), np.uint8)
  red[..., 0] = 255
  np.testing.assert_allclose(np.asarray(metrics.colorfulness(red, data_range=255.0)),
                             [0.3 * np.hypot(255.0, 127.5)], rtol=1e-6)


def test_colorfulness_matches_the_formula():
  a, _ = _random_pair(shape=(3, 6, 7, 3), seed=9)
  rgb = a * 255.0
  rg = rgb[..., 0] - rgb[..., 1]
  yb = 0.5 * (rgb[..., 0] + rgb[..., 1]) - rgb[..., 2]
  want = (np.sqrt(rg.var(axis=(1, 2)) + yb.var(axis=(1, 2)))
          + 0.3 * np.sqrt(rg.mean(axis=(1, 2)) ** 2 + yb.mean(axis=(1, 2)) ** 2))
  np.testing.assert_allclose(np.asarray(metrics.colorfulness(a)), want, rtol=1e-5)
  a8 = np.round(a * 255).astype(np.uint8)
  np.testing.assert_allclose(np.asarray(metrics.colorfulness(a8, data_range=255.0)),
                             np.asarray(metrics.colorfulness(a8 / 255.0)), rtol=1e-5)


# --- ab histograms -----------------------------------------------------------------------

def test_ab_histogram_matches_numpy():
  lab = skimage.color.rgb2lab(_random_pair(shape=(4, 9, 9, 3), seed=10)[0])
  got = np.asarray(metrics.ab_histogram(lab))
  edges = np.arange(-115.0, 116.0, 10.0)
  want, _, _ = np.histogram2d(lab[..., 1].ravel(), lab[..., 2].ravel(), bins=[edges, edges])
  assert got.shape == (23, 23)
  np.testing.assert_array_equal(got, want)


def test_ab_histogram_neutral_in_the_centre_bin_and_weights():
  lab = np.zeros((3, 2, 2, 3))
  lab[..., 1:] = 1e-4 * np.array([-1.0, 1.0])  # Neutral, up to float rounding.
  lab[2, ..., 1] = 200.0  # Beyond the range: counted in the edge bin.
  counts = np.asarray(metrics.ab_histogram(lab))
  assert counts[11, 11] == 8 and counts[22, 11] == 4 and counts.sum() == 12
  counts = np.asarray(metrics.ab_histogram(lab, weights_B=np.array([1.0, 0.0, 0.0])))
  assert counts[11, 11] == 4 and counts.sum() == 4
  # Batches add up.
  np.testing.assert_array_equal(
      np.asarray(metrics.ab_histogram(lab[:1]) + metrics.ab_histogram(lab[1:])),
      np.asarray(metrics.ab_histogram(lab)))


def test_histogram_intersection():
  p = np.array([[1.0, 3.0], [0.0, 0.0]])
  assert float(metrics.histogram_intersection(p, 5 * p)) == pytest.approx(1.0)
  assert float(metrics.histogram_intersection(p, p[::-1])) == 0.0
  # p = (1/4, 3/4, 0, 0), q = (1/2, 0, 1/2, 0): min sums to 1/4.
  q = np.array([[1.0, 0.0], [1.0, 0.0]])
  assert float(metrics.histogram_intersection(p, q)) == pytest.approx(0.25)
