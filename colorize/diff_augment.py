"""DiffAugment (Zhao et al. 2020): the critic sees its pairs randomly translated and cut out.

A critic trained on a few thousand images learns them by heart, and then stops telling the
generator anything about images it has not seen. Zhao et al. transform every image the
critic sees, real and generated alike, with transformations that are differentiable in the
image, so that the generator's gradient passes through them; on 10% of CIFAR-10 (this
project's subset) it was their largest gain. The policies here are their "translation" (a
shift of up to 1/8 of the side, zero-filled) and "cutout" (a square of half the side set to
zero); not their "color", whose brightness, saturation and contrast jitter would hide from the
critic the very thing it judges here.

Both act on a whole pair alike: the condition and its colour channels (all arrays given) get
the same shift and the same hole, so a pair stays aligned, and a real and a generated pair of
one sample get the same transformation, which keeps the gradient penalty's interpolates
between two transformed pairs.
"""
import jax
import jax.numpy as jnp

POLICIES = ("translation", "cutout")
TRANSLATION_RATIO = 0.125  # Zhao et al.'s: shifts of up to 1/8 of the side, each way.
CUTOUT_RATIO = 0.5  # Zhao et al.'s: a hole of half the side.
# The four per-sample numbers of a draw: the shift (rows, columns), the hole's centre (rows,
# columns); `augment` takes them as U[0, 1) draws, so that a caller can draw them for a
# global batch and slice them per device.
NUM_UNIFORMS = 4


def parse(policy: str) -> tuple[str, ...]:
  """"translation,cutout" -> ("translation", "cutout"); "" -> () (no augmentation).

  Raises:
    ValueError: a name that is not in POLICIES.
  """
  names = tuple(name.strip() for name in policy.split(",") if name.strip())
  unknown = [name for name in names if name not in POLICIES]
  if unknown:
    raise ValueError(f"unknown DiffAugment policy {unknown[0]!r}: use a comma-separated "
                     f"subset of {', '.join(POLICIES)}")
  return names


def _shift_matrix(shift: jax.Array, size: int) -> jax.Array:
  """[B, size, size] 0/1 matrices M with (M @ x)[i] = x[i + shift], 0 off the edge."""
  rows = jnp.arange(size)
  return (rows[None, None, :] == rows[None, :, None] + shift[:, None, None]).astype(jnp.float32)


def translate(x: jax.Array, shift: jax.Array) -> jax.Array:
  """Each image moved by a whole number of pixels, zero-filled.

  Args:
    x: images [B, H, W, C].
    shift: int [B, 2], per image (rows, columns): output[i, j] = x[i + rows, j + columns].

  Returns:
    The shifted images, same shape and dtype (exact: products with 0 and 1 only).
  """
  rows = _shift_matrix(shift[:, 0], x.shape[1]).astype(x.dtype)
  cols = _shift_matrix(shift[:, 1], x.shape[2]).astype(x.dtype)
  return jnp.einsum("bij,bjkc,blk->bilc", rows, x, cols)


def cutout_mask(centre: jax.Array, size: int, shape: tuple[int, int]) -> jax.Array:
  """[B, H, W, 1] masks, 0 on a size x size square per image, rows and columns
  [centre - size // 2, centre - size // 2 + size) clipped to the image, 1 elsewhere.

  Args:
    centre: int [B, 2], the square's centre (rows, columns) per image.
    size: the square's side.
    shape: (H, W).
  """
  def outside(axis_size, c):
    index = jnp.arange(axis_size)[None, :] - (c[:, None] - size // 2)
    return (index < 0) | (index >= size)
  rows, cols = outside(shape[0], centre[:, 0]), outside(shape[1], centre[:, 1])
  return (rows[:, :, None] | cols[:, None, :]).astype(jnp.float32)[..., None]


def augment(arrays: list[jax.Array], uniforms: jax.Array, policy: tuple[str, ...]
            ) -> list[jax.Array]:
  """The same random transformation of each sample applied to every array in `arrays`.

  Args:
    arrays: images [B, H, W, C_i] of one batch (e.g. condition, real and generated colour).
    uniforms: U[0, 1) draws [B, NUM_UNIFORMS] that pick each sample's transformation.
    policy: `parse`'s names, applied in order.

  Returns:
    The transformed arrays, same shapes.
  """
  height, width = arrays[0].shape[1:3]
  sides = jnp.array([height, width])
  for name in policy:
    if name == "translation":
      reach = (sides * TRANSLATION_RATIO + 0.5).astype(jnp.int32)
      shift = jnp.floor(uniforms[:, :2] * (2 * reach + 1)).astype(jnp.int32) - reach
      arrays = [translate(x, shift) for x in arrays]
    else:
      size = int(min(height, width) * CUTOUT_RATIO + 0.5)
      # Zhao et al.'s centres: 0..side (size even) or 0..side-1 (odd).
      centre = jnp.floor(uniforms[:, 2:] * (sides + 1 - size % 2)).astype(jnp.int32)
      mask = cutout_mask(centre, size, (height, width))
      arrays = [x * mask.astype(x.dtype) for x in arrays]
  return arrays
