"""Image-quality metrics, one value per image.

Every metric takes two batches of images of the same shape [B, H, W, C] and returns a float32
array [B]; averaging over a data set is the caller's job (so a metric can be reported as a
mean, a median or a histogram). Inputs may be any real dtype: they are compared in float32,
never in their own dtype, because uint8 differences wrap around.
"""
import jax
import jax.numpy as jnp


def _as_pair(a_BHWC: jax.Array, b_BHWC: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Checks that the two batches have the same shape and converts them to float32."""
  a_BHWC, b_BHWC = jnp.asarray(a_BHWC), jnp.asarray(b_BHWC)
  if a_BHWC.shape != b_BHWC.shape:
    raise ValueError(f"Image batches differ in shape: {a_BHWC.shape} vs {b_BHWC.shape}.")
  if a_BHWC.ndim < 2:
    raise ValueError(f"Expected a batch of images [B, ...], got shape {a_BHWC.shape}.")
  return a_BHWC.astype(jnp.float32), b_BHWC.astype(jnp.float32)


def _mean_per_image(x_B: jax.Array) -> jax.Array:
  """Averages over every axis but the first (batch) one."""
  return jnp.mean(x_B, axis=tuple(range(1, x_B.ndim)))


def psnr(a_BHWC: jax.Array, b_BHWC: jax.Array, data_range: float = 1.0) -> jax.Array:
  """Peak signal-to-noise ratio 10 log10(data_range**2 / MSE), per image.

  Identical images give +inf (MSE = 0), not a capped value: a cap would be an arbitrary
  number that silently enters averages. Callers that average over a data set should expect
  it (it only happens for a perfect reconstruction).

  Args:
    a_BHWC: images, shape [B, H, W, C] (any trailing shape works).
    b_BHWC: images of the same shape.
    data_range: max minus min of the possible values: 1.0 for float images in [0, 1],
      255.0 for uint8.

  Returns:
    float32 PSNR in dB, shape [B].
  """
  a_BHWC, b_BHWC = _as_pair(a_BHWC, b_BHWC)
  mse_B = _mean_per_image(jnp.square(a_BHWC - b_BHWC))
  # data_range**2 / 0 = inf and log10(inf) = inf: no NaN for identical images.
  return 10.0 * jnp.log10(jnp.float32(data_range) ** 2 / mse_B)


def mean_absolute_error(a_BHWC: jax.Array, b_BHWC: jax.Array) -> jax.Array:
  """Mean absolute difference over all pixels and channels, per image.

  Args:
    a_BHWC: images, shape [B, H, W, C] (any trailing shape works).
    b_BHWC: images of the same shape.

  Returns:
    float32 mean |a - b|, shape [B], in the units of the inputs.
  """
  a_BHWC, b_BHWC = _as_pair(a_BHWC, b_BHWC)
  return _mean_per_image(jnp.abs(a_BHWC - b_BHWC))
