"""colorize.color against scikit-image (the oracle) and Pillow."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import skimage.color
from PIL import Image

from colorize import color

# Black, white, primaries, secondaries, grays, and colours on both sides of the sRGB
# companding threshold (0.04045) and of the Lab cube-root threshold (dark grays).
_EDGE_RGB = np.array([
    [0, 0, 0], [1, 1, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [0, 1, 1], [1, 0, 1],
    [0.5, 0.5, 0.5], [0.2, 0.2, 0.2], [0.04, 0.04, 0.04], [0.05, 0.05, 0.05],
    [0.01, 0.0, 0.03], [0.99, 0.5, 0.001],
], dtype=np.float64)


def _random_rgb(shape, seed=0):
  return np.random.default_rng(seed).uniform(0.0, 1.0, size=shape)


def _all_rgb():
  return np.concatenate([_EDGE_RGB, _random_rgb((500, 3))])


def test_rgb_to_lab_matches_skimage():
  rgb = _all_rgb()
  got = np.asarray(color.rgb_to_lab(rgb))
  assert got.dtype == np.float32
  np.testing.assert_allclose(got, skimage.color.rgb2lab(rgb), atol=1e-3, rtol=0)


def test_lab_to_rgb_matches_skimage():
  lab = skimage.color.rgb2lab(_all_rgb())
  # skimage clips to [0, 1]; in-gamut inputs make the comparison exact apart from that.
  np.testing.assert_allclose(np.asarray(color.lab_to_rgb(lab)), skimage.color.lab2rgb(lab),
                             atol=1e-4, rtol=0)


def test_lab_to_rgb_is_not_clipped():
  # Very saturated green at mid lightness is outside the sRGB gamut.
  rgb = np.asarray(color.lab_to_rgb(np.array([50.0, -120.0, 80.0])))
  assert rgb.min() < 0.0 or rgb.max() > 1.0


def test_round_trip_rgb_lab_rgb():
  rgb = _all_rgb()
  back = np.asarray(color.lab_to_rgb(color.rgb_to_lab(rgb)))
  np.testing.assert_allclose(back, rgb, atol=1e-4, rtol=0)


def test_gray_matches_pillow():
  image_uint8 = np.random.default_rng(1).integers(0, 256, size=(17, 23, 3), dtype=np.uint8)
  pillow = np.asarray(Image.fromarray(image_uint8).convert("L"), dtype=np.float64)
  ours = np.asarray(color.rgb_to_gray(image_uint8 / 255.0))[..., 0] * 255.0
  assert ours.shape == pillow.shape
  # Pillow rounds to an integer in fixed point; ours is exact.
  assert np.max(np.abs(ours - pillow)) <= 1.0


@pytest.mark.parametrize("rgb", [[0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [0.0, 0.5, 1.0]])
def test_rgb_to_lab_grad_finite(rgb):
  grad = jax.grad(lambda x: jnp.sum(color.rgb_to_lab(x)))(jnp.array(rgb))
  assert np.all(np.isfinite(np.asarray(grad)))


@pytest.mark.parametrize("lab", [[0.0, 0.0, 0.0], [100.0, 0.0, 0.0], [50.0, -120.0, 80.0]])
def test_lab_to_rgb_grad_finite(lab):
  grad = jax.grad(lambda x: jnp.sum(color.lab_to_rgb(x)))(jnp.array(lab))
  assert np.all(np.isfinite(np.asarray(grad)))


def test_batched_shapes():
  rgb = _random_rgb((2, 3, 4, 5, 3))
  lab = color.rgb_to_lab(rgb)
  assert lab.shape == (2, 3, 4, 5, 3)
  assert color.lab_to_rgb(lab).shape == (2, 3, 4, 5, 3)
  assert color.rgb_to_gray(rgb).shape == (2, 3, 4, 5, 1)
  # Batching is elementwise: the same as converting the pixels one list at a time.
  np.testing.assert_allclose(np.asarray(lab).reshape(-1, 3),
                             np.asarray(color.rgb_to_lab(rgb.reshape(-1, 3))), atol=1e-5)


def _random_uint8(shape=(2, 8, 8, 3), seed=2):
  image = np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)
  image[0, 0, 0] = [0, 0, 0]
  image[0, 0, 1] = [255, 255, 255]
  return image


@pytest.mark.parametrize("color_space", ["lab", "rgb"])
def test_encode_shapes_and_ranges(color_space):
  condition, target = color.encode(_random_uint8(), color_space)
  assert condition.shape == (2, 8, 8, 1)
  assert target.shape == (2, 8, 8, color.target_channels(color_space))
  assert condition.dtype == target.dtype == jnp.float32
  for x in (condition, target):
    assert -1.0 - 1e-5 <= float(jnp.min(x)) and float(jnp.max(x)) <= 1.0 + 1e-5


def test_encode_lab_values():
  image = _random_uint8()
  condition, target = color.encode(image, "lab")
  lab = skimage.color.rgb2lab(image / 255.0)
  np.testing.assert_allclose(np.asarray(condition)[..., 0], lab[..., 0] / 50.0 - 1.0,
                             atol=1e-4)
  np.testing.assert_allclose(np.asarray(target), lab[..., 1:] / color.AB_SCALE, atol=1e-4)


@pytest.mark.parametrize("color_space", ["lab", "rgb"])
def test_encode_decode_round_trip(color_space):
  image = _random_uint8()
  decoded = np.asarray(color.decode(*color.encode(image, color_space), color_space))
  assert decoded.shape == image.shape
  np.testing.assert_allclose(decoded, image / 255.0, atol=1e-4, rtol=0)


def _far_out_of_gamut_lab(n=20_000, seed=0):
  """Random L in [0, 100] with ab far beyond the sRGB gamut's +-110 (and some in it)."""
  rng = np.random.default_rng(seed)
  return np.stack([rng.uniform(0, 100, n), rng.uniform(-300, 300, n),
                   rng.uniform(-300, 300, n)], axis=-1).astype(np.float32)


def test_gamut_mapping_keeps_lightness_exactly():
  lab = _far_out_of_gamut_lab()
  rgb = np.asarray(color.lab_to_rgb_in_gamut(lab))
  assert rgb.min() >= 0.0 and rgb.max() <= 1.0
  out_lab = skimage.color.rgb2lab(rgb.astype(np.float64))  # The independent oracle.
  np.testing.assert_allclose(out_lab[:, 0], lab[:, 0], atol=2e-3)
  # As saved, 8-bit: L moves only by what rounding each channel by <= 1/510 allows.
  saved = np.round(rgb * 255.0) / 255.0
  assert np.abs(skimage.color.rgb2lab(saved)[:, 0] - lab[:, 0]).max() < 0.5
  # The hue is kept where any chroma is left.
  chroma = np.hypot(out_lab[:, 1], out_lab[:, 2])
  kept = chroma > 5.0
  assert kept.mean() > 0.8
  hue_in = np.arctan2(lab[kept, 2], lab[kept, 1])
  hue_out = np.arctan2(out_lab[kept, 2], out_lab[kept, 1])
  assert np.abs(np.angle(np.exp(1j * (hue_out - hue_in)))).max() < 0.05


def test_clipping_channels_would_move_lightness():
  # Why gamut mapping exists: clipping the same colours changes L by whole units.
  lab = _far_out_of_gamut_lab()
  clipped = np.clip(np.asarray(color.lab_to_rgb(lab)), 0.0, 1.0)
  moved = np.abs(skimage.color.rgb2lab(clipped.astype(np.float64))[:, 0] - lab[:, 0])
  assert (moved > 1.0).mean() > 0.3


def test_gamut_mapping_leaves_in_gamut_colors_and_reaches_the_edge():
  lab = skimage.color.rgb2lab(_all_rgb()).astype(np.float32)
  np.testing.assert_allclose(np.asarray(color.lab_to_rgb_in_gamut(lab)),
                             np.clip(_all_rgb(), 0, 1), atol=1e-4)
  far = _far_out_of_gamut_lab(2000)
  unmapped = np.asarray(color.lab_to_rgb(far))
  outside = np.any((unmapped < 0) | (unmapped > 1), axis=-1)
  # An out-of-gamut colour ends on the gamut's edge: some linear channel at 0 or 1 (to the
  # bisection's precision).
  linear = skimage.color.rgb2xyz(np.asarray(color.lab_to_rgb_in_gamut(far)))
  linear = linear @ np.linalg.inv(skimage.color.colorconv.xyz_from_rgb).T
  edge = np.minimum(linear, 1.0 - linear).min(axis=-1)
  assert outside.mean() > 0.9 and edge[outside].max() < 2e-3


def test_decode_keeps_lightness():
  condition, _ = color.encode(_random_uint8(), "lab")
  prediction = jax.random.uniform(jax.random.key(0), condition.shape[:-1] + (2,),
                                  minval=-2.0, maxval=2.0)  # Mostly out of gamut.
  decoded = np.asarray(color.decode(condition, prediction, "lab"))
  assert 0.0 <= decoded.min() and decoded.max() <= 1.0
  l_in = (np.asarray(condition)[..., 0] + 1.0) * 50.0
  l_out = skimage.color.rgb2lab(decoded.astype(np.float64))[..., 0]
  np.testing.assert_allclose(l_out, l_in, atol=2e-3)


def test_decode_rgb_clips():
  decoded = color.decode(jnp.zeros((1, 2, 2, 1)), jnp.full((1, 2, 2, 3), 1.5), "rgb")
  np.testing.assert_array_equal(np.asarray(decoded), 1.0)


def test_target_channels():
  assert color.target_channels("lab") == 2
  assert color.target_channels("rgb") == 3


def test_unknown_color_space_raises():
  image = _random_uint8()
  for call in (lambda: color.encode(image, "hsv"),
               lambda: color.decode(jnp.zeros((1, 2, 2, 1)), jnp.zeros((1, 2, 2, 2)), "hsv"),
               lambda: color.target_channels("hsv")):
    with pytest.raises(ValueError, match=r"color_space='hsv'.*'lab'.*'rgb'"):
      call()


def test_encode_rejects_float_images():
  with pytest.raises(ValueError, match="uint8"):
    color.encode(np.zeros((1, 2, 2, 3), np.float32), "lab")
