"""colorize.diff_augment against plain numpy: shifts, holes, one transformation per sample."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from colorize import diff_augment


def _shifted(image: np.ndarray, rows: int, cols: int) -> np.ndarray:
  """output[i, j] = image[i + rows, j + cols], zero where that falls outside."""
  height, width = image.shape[:2]
  out = np.zeros_like(image)
  for i in range(height):
    for j in range(width):
      if 0 <= i + rows < height and 0 <= j + cols < width:
        out[i, j] = image[i + rows, j + cols]
  return out


def test_translate_matches_a_pixel_loop():
  rng = np.random.default_rng(0)
  images = rng.normal(size=(5, 8, 6, 2)).astype(np.float32)
  shifts = np.array([[0, 0], [1, -2], [-3, 3], [7, 0], [0, -6]])
  got = np.asarray(diff_augment.translate(jnp.asarray(images), jnp.asarray(shifts)))
  for image, (rows, cols), out in zip(images, shifts, got):
    np.testing.assert_array_equal(out, _shifted(image, rows, cols))


def test_cutout_mask_is_a_clipped_square():
  centres = np.array([[4, 4], [0, 7], [8, 8]])
  got = np.asarray(diff_augment.cutout_mask(jnp.asarray(centres), 4, (8, 8)))[..., 0]
  for (r, c), mask in zip(centres, got):
    want = np.ones((8, 8), np.float32)
    want[max(r - 2, 0):r + 2, max(c - 2, 0):c + 2] = 0
    np.testing.assert_array_equal(mask, want)


def test_parse():
  assert diff_augment.parse("") == ()
  assert diff_augment.parse("translation, cutout") == ("translation", "cutout")
  with pytest.raises(ValueError, match="'color'"):
    diff_augment.parse("translation,color")


def test_one_transformation_per_sample_for_every_array():
  rng = np.random.default_rng(1)
  x = jnp.asarray(rng.normal(size=(6, 32, 32, 3)).astype(np.float32))
  uniforms = jax.random.uniform(jax.random.key(0), (6, diff_augment.NUM_UNIFORMS))
  policy = diff_augment.parse("translation,cutout")
  a, b = diff_augment.augment([x, 2 * x[..., :1]], uniforms, policy)
  # The condition and its colours get the same shift and hole: the pair stays aligned.
  np.testing.assert_array_equal(np.asarray(b), 2 * np.asarray(a[..., :1]))
  # Each sample its own: the same image under six draws gives six different views.
  same = jnp.broadcast_to(x[:1], x.shape)
  views = np.asarray(diff_augment.augment([same], uniforms, policy)[0])
  assert len({view.tobytes() for view in views}) == 6


@pytest.mark.parametrize("u,shift", [(0.0, -4), (0.5, 0), (0.999, 4)])
def test_translation_reaches_an_eighth_of_the_side_each_way(u, shift):
  # Zhao et al.'s ratio 1/8: up to 4 pixels of 32, uniform over -4..4.
  x = jnp.asarray(np.random.default_rng(2).normal(size=(1, 32, 32, 1)).astype(np.float32))
  uniforms = jnp.array([[u, 0.5, 0.0, 0.0]])
  got = diff_augment.augment([x], uniforms, ("translation",))[0]
  np.testing.assert_array_equal(np.asarray(got)[0], _shifted(np.asarray(x)[0], shift, 0))


def test_cutout_hides_a_quarter_of_the_image_at_most():
  uniforms = jax.random.uniform(jax.random.key(3), (64, diff_augment.NUM_UNIFORMS))
  ones = jnp.ones((64, 32, 32, 1))
  hidden = 1 - np.asarray(diff_augment.augment([ones], uniforms, ("cutout",))[0]).mean((1, 2, 3))
  # A 16 x 16 hole, clipped where its centre is near an edge.
  assert hidden.max() == 0.25 and 0 < hidden.min() < 0.25


def test_gradients_pass_through_to_the_pixels_in_view():
  x = jnp.ones((1, 8, 8, 1))
  grad = jax.grad(lambda x: diff_augment.translate(x, jnp.array([[2, -1]])).sum())(x)
  # The pixels that stay in view after the shift each get a gradient of one; the rest none.
  want = np.zeros((8, 8), np.float32)
  want[2:, :7] = 1
  np.testing.assert_array_equal(np.asarray(grad)[0, ..., 0], want)
