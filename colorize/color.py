"""Every colour conversion of the project: sRGB <-> CIE Lab, luma, and the model's encoding.

All functions are jax.numpy, differentiable, float32, channels last and batched over any
leading shape. Where values live:
  * sRGB float in [0, 1] (uint8 [0, 255] only as the input of `encode`);
  * CIE Lab (D65, 2 degree observer, as scikit-image): L in [0, 100], a and b within about
    +-110 for sRGB colours;
  * the model's space, everything in [-1, 1]: see `encode`.

The piecewise formulas evaluate both branches under `jnp.where`, so each branch clamps its
input to its own domain: a NaN or infinite gradient in the unused branch would otherwise leak
into the result as 0 * inf = NaN (black pixels hit exactly the x**(1/2.4) and cbrt(x) cases).
"""
import jax
import jax.numpy as jnp
import numpy as np

# Linear sRGB -> XYZ (D65), the matrix scikit-image uses; the inverse is computed in float64
# so the round trip is as exact as float32 allows.
_XYZ_FROM_RGB = np.array([[0.412453, 0.357580, 0.180423],
                          [0.212671, 0.715160, 0.072169],
                          [0.019334, 0.119193, 0.950227]])
_RGB_FROM_XYZ = np.linalg.inv(_XYZ_FROM_RGB)
_D65_WHITE = np.array([0.95047, 1.0, 1.08883])

# CIE constants in their exact rational form (scikit-image rounds them to 0.008856 and 7.787;
# the difference is below 1e-6 in Lab).
_EPSILON = 216.0 / 24389.0  # f(t) switches from linear to cube root at t = epsilon.
_KAPPA = 24389.0 / 27.0
_DELTA = 6.0 / 29.0  # f(epsilon) = delta: the same switch seen from the inverse side.

# ab / AB_SCALE is the model's target: the sRGB gamut has |a|, |b| < ~110 (a ~ -86..98,
# b ~ -108..94), so the scaled target is in about [-1, 1].
AB_SCALE = 110.0
# L / L_SCALE - 1 is the model's condition: L in [0, 100] becomes [-1, 1].
L_SCALE = 50.0

# Luma weights of Rec. 601, what Pillow's `Image.convert("L")` uses.
_LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114])

TARGET_CHANNELS = {"lab": 2, "rgb": 3}

# Gamut mapping: chroma is found to within 2**-12 of the gamut's edge (invisible), and a
# linear channel may overshoot [0, 1] by float32 rounding (neutral white gives 1 + 1e-7), and
# a dark channel must not overshoot by more: near black L changes 900 times faster than Y.
GAMUT_BISECTION_STEPS = 12
_GAMUT_TOLERANCE = 1e-6


def _matvec(matrix_33: np.ndarray, x_N3: jax.Array) -> jax.Array:
  # HIGHEST: on GPU/TPU a default-precision matmul may run in TF32/bf16, which costs ~1e-2 in
  # Lab; three multiply-adds per pixel are cheap at full precision.
  return jnp.einsum("ij,...j->...i", jnp.asarray(matrix_33, jnp.float32), x_N3,
                    precision=jax.lax.Precision.HIGHEST)


def _srgb_to_linear(c: jax.Array) -> jax.Array:
  # Clamped so the power branch never sees a negative base (NaN) when it is not selected.
  power = ((jnp.maximum(c, 0.04045) + 0.055) / 1.055) ** 2.4
  return jnp.where(c > 0.04045, power, c / 12.92)


def _linear_to_srgb(c: jax.Array) -> jax.Array:
  # Clamped so d/dc c**(1/2.4) = inf at c = 0 never reaches the gradient.
  power = 1.055 * jnp.maximum(c, 0.0031308) ** (1.0 / 2.4) - 0.055
  return jnp.where(c > 0.0031308, power, c * 12.92)


def _lab_f(t: jax.Array) -> jax.Array:
  # Clamped so the infinite slope of cbrt at 0 never reaches the gradient.
  cube_root = jnp.cbrt(jnp.maximum(t, _EPSILON))
  return jnp.where(t > _EPSILON, cube_root, (_KAPPA * t + 16.0) / 116.0)


def _lab_f_inverse(f: jax.Array) -> jax.Array:
  return jnp.where(f > _DELTA, f ** 3, (116.0 * f - 16.0) / _KAPPA)


def rgb_to_lab(rgb: jax.Array) -> jax.Array:
  """Converts sRGB to CIE Lab (D65 white, as `skimage.color.rgb2lab`).

  Args:
    rgb: float sRGB in [0, 1], shape [..., 3].

  Returns:
    float32 Lab, shape [..., 3]: L in [0, 100], a and b within about +-110.
  """
  rgb = jnp.asarray(rgb, jnp.float32)
  xyz = _matvec(_XYZ_FROM_RGB, _srgb_to_linear(rgb))
  fx, fy, fz = jnp.moveaxis(_lab_f(xyz / _D65_WHITE.astype(np.float32)), -1, 0)
  return jnp.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], axis=-1)


def _lab_to_linear_rgb(lab: jax.Array) -> jax.Array:
  """CIE Lab (D65) -> linear sRGB, not clipped: [0, 1] exactly for in-gamut colours."""
  lab = jnp.asarray(lab, jnp.float32)
  l, a, b = jnp.moveaxis(lab, -1, 0)
  fy = (l + 16.0) / 116.0
  f_xyz = jnp.stack([fy + a / 500.0, fy, fy - b / 200.0], axis=-1)
  xyz = _lab_f_inverse(f_xyz) * _D65_WHITE.astype(np.float32)
  return _matvec(_RGB_FROM_XYZ, xyz)


def lab_to_rgb(lab: jax.Array) -> jax.Array:
  """Converts CIE Lab (D65 white) to sRGB, the inverse of `rgb_to_lab`.

  Lab colours outside the sRGB gamut give values outside [0, 1]; they are not clipped, so
  the caller decides (and the gradient is not cut at the gamut boundary). To show or save a
  colour, use `lab_to_rgb_in_gamut`, which keeps L.

  Args:
    lab: float Lab, shape [..., 3], L in [0, 100].

  Returns:
    float32 sRGB, shape [..., 3], in [0, 1] for in-gamut colours, NOT clipped.
  """
  return _linear_to_srgb(_lab_to_linear_rgb(lab))


def lab_to_rgb_in_gamut(lab: jax.Array) -> jax.Array:
  """Converts CIE Lab to sRGB in [0, 1], bringing out-of-gamut colours in at fixed L and hue.

  A colour outside the sRGB gamut keeps its lightness and hue and loses chroma: its ab is
  scaled by the largest factor in [0, 1] that lands in the gamut (found by bisection, to
  2**-GAMUT_BISECTION_STEPS). Clipping the RGB channels instead would change L, by several
  units for strongly saturated predictions, and the output's L must be the input's. Neutral
  colours (ab = 0) are in the gamut for every L in [0, 100], so a factor always exists.

  Args:
    lab: float Lab, shape [..., 3]; L is clamped to [0, 100].

  Returns:
    float32 sRGB in [0, 1], shape [..., 3], whose L equals the input's (to float32 rounding).
  """
  lab = jnp.asarray(lab, jnp.float32)
  l, ab = jnp.clip(lab[..., :1], 0.0, 100.0), lab[..., 1:]

  def in_gamut(scale):
    # Linear and gamma-encoded sRGB share [0, 1]: the cheaper linear form decides.
    rgb = _lab_to_linear_rgb(jnp.concatenate([l, ab * scale], axis=-1))
    return jnp.all((rgb >= -_GAMUT_TOLERANCE) & (rgb <= 1.0 + _GAMUT_TOLERANCE), axis=-1,
                   keepdims=True)

  def bisect(_, bounds):  # Invariant: `low` is in the gamut, `high` is not.
    low, high = bounds
    middle = (low + high) / 2.0
    inside = in_gamut(middle)
    return jnp.where(inside, middle, low), jnp.where(inside, high, middle)

  low, _ = jax.lax.fori_loop(0, GAMUT_BISECTION_STEPS, bisect,
                             (jnp.zeros_like(l), jnp.ones_like(l)))
  scale = jnp.where(in_gamut(1.0), 1.0, low)
  # The clip only removes the tolerance: it moves no channel by more than 1e-6.
  return jnp.clip(lab_to_rgb(jnp.concatenate([l, ab * scale], axis=-1)), 0.0, 1.0)


def rgb_to_gray(rgb: jax.Array) -> jax.Array:
  """Rec. 601 luma Y' = 0.299 R + 0.587 G + 0.114 B of gamma-encoded sRGB.

  This is what Pillow's `convert("L")` computes (up to its rounding to uint8), so the
  grayscale inputs look like the grayscale photos users have.

  Args:
    rgb: float sRGB in [0, 1], shape [..., 3].

  Returns:
    float32 luma in [0, 1], shape [..., 1].
  """
  rgb = jnp.asarray(rgb, jnp.float32)
  return jnp.sum(rgb * _LUMA_WEIGHTS.astype(np.float32), axis=-1, keepdims=True)


def target_channels(color_space: str) -> int:
  """Channels of the model's prediction in `color_space`.

  Args:
    color_space: "lab" (predicts ab) or "rgb" (predicts RGB).

  Returns:
    2 for "lab", 3 for "rgb".

  Raises:
    ValueError: `color_space` is not one of them.
  """
  if color_space not in TARGET_CHANNELS:
    raise ValueError(f"color_space={color_space!r} is not supported; use one of "
                     f"{sorted(TARGET_CHANNELS)}.")
  return TARGET_CHANNELS[color_space]


def encode(rgb_uint8: jax.Array, color_space: str) -> tuple[jax.Array, jax.Array]:
  """Splits uint8 sRGB images into the model's condition and target, both in [-1, 1].

  "lab": condition = L / 50 - 1, target = ab / AB_SCALE (2 channels).
  "rgb": condition = luma * 2 - 1, target = rgb * 2 - 1 (3 channels).

  Args:
    rgb_uint8: uint8 sRGB, shape [..., H, W, 3].
    color_space: "lab" or "rgb".

  Returns:
    (condition [..., H, W, 1], target [..., H, W, target_channels(color_space)]), float32.

  Raises:
    ValueError: unknown `color_space`, or `rgb_uint8` is not uint8 (a float image in [0, 1]
      divided by 255 again would silently train on black images).
  """
  target_channels(color_space)  # Validates before any work.
  rgb_uint8 = jnp.asarray(rgb_uint8)
  if rgb_uint8.dtype != jnp.uint8:
    raise ValueError(f"encode expects uint8 images in [0, 255], got dtype {rgb_uint8.dtype}.")
  rgb = jnp.asarray(rgb_uint8, jnp.float32) / 255.0
  if color_space == "lab":
    lab = rgb_to_lab(rgb)
    return lab[..., :1] / L_SCALE - 1.0, lab[..., 1:] / AB_SCALE
  return rgb_to_gray(rgb) * 2.0 - 1.0, rgb * 2.0 - 1.0


def decode(condition: jax.Array, prediction: jax.Array, color_space: str) -> jax.Array:
  """Turns the model's condition and prediction back into sRGB, the inverse of `encode`.

  For "lab" the L channel comes from `condition`, so the colourized image has exactly the
  lightness of its input: out-of-gamut predictions lose chroma at fixed L
  (`lab_to_rgb_in_gamut`). For "rgb" the prediction is the whole image and `condition` is
  not used.

  Args:
    condition: [..., H, W, 1] in [-1, 1], as returned by `encode`.
    prediction: [..., H, W, target_channels(color_space)] in about [-1, 1].
    color_space: "lab" or "rgb".

  Returns:
    float32 sRGB in [0, 1], shape [..., H, W, 3].

  Raises:
    ValueError: unknown `color_space`.
  """
  target_channels(color_space)
  prediction = jnp.asarray(prediction, jnp.float32)
  if color_space == "lab":
    l = (jnp.asarray(condition, jnp.float32) + 1.0) * L_SCALE
    return lab_to_rgb_in_gamut(jnp.concatenate([l, prediction * AB_SCALE], axis=-1))
  return jnp.clip((prediction + 1.0) / 2.0, 0.0, 1.0)


def condition_to_rgb(condition: jax.Array, color_space: str) -> jax.Array:
  """The model's input as a neutral-gray sRGB picture (for the "grayscale" column of grids).

  Args:
    condition: [..., H, W, 1] in [-1, 1], as returned by `encode`.
    color_space: "lab" (condition is L: shown with ab = 0) or "rgb" (condition is luma).

  Returns:
    float32 sRGB in [0, 1], shape [..., H, W, 3].
  """
  condition = jnp.asarray(condition, jnp.float32)
  if color_space == "lab":
    zeros = jnp.zeros(condition.shape[:-1] + (2,), jnp.float32)
    return decode(condition, zeros, color_space)
  target_channels(color_space)
  return jnp.repeat((condition + 1.0) / 2.0, 3, axis=-1)
