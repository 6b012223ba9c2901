"""The 4x4 convolutions of pix2pix, with two interchangeable implementations.

  "xla"     `lax.conv_general_dilated`: what `nn.Conv`/`nn.ConvTranspose` run; best on GPU/TPU.
  "matmul"  patch extraction (strided slices) + one matmul per output phase. XLA:CPU is slow
            for this U-Net's small-spatial, many-channel convolutions (transposed ones worst);
            as slices and matmuls the same arithmetic runs several times faster there.

Both read the same parameters ("kernel" [4, 4, in, out] and "bias", initialised like flax's
Conv), so checkpoints move between them, and both compute exactly what `nn.Conv(k, (4, 4),
strides, padding=((1, 1), (1, 1)))` and `nn.ConvTranspose(k, (4, 4), strides=(2, 2),
padding=((2, 2), (2, 2)))` compute (tests/conv_test.py) — torch's k=4, p=1 layers.
"""
import flax.linen as nn
import jax
import jax.numpy as jnp

IMPLS = ("auto", "xla", "matmul")


def resolve_impl(impl: str) -> str:
  """"auto" is "matmul" on CPU (measured faster there) and "xla" on GPU/TPU."""
  if impl == "auto":
    return "matmul" if jax.default_backend() == "cpu" else "xla"
  return impl


def _taps(x_BHWC: jax.Array, offsets, stride: int, out_h: int, out_w: int) -> jax.Array:
  """Concatenates, channel-last, the strided windows of x starting at each (dy, dx)."""
  return jnp.concatenate(
      [jax.lax.slice(x_BHWC, (0, dy, dx, 0),
                     (x_BHWC.shape[0], dy + stride * (out_h - 1) + 1,
                      dx + stride * (out_w - 1) + 1, x_BHWC.shape[3]), (1, stride, stride, 1))
       for dy, dx in offsets], axis=-1)


class Conv4x4(nn.Module):
  """4x4 convolution with padding 1 (torch's Conv2d(k=4, p=1)), stride 1 or 2."""
  features: int
  strides: int = 2
  use_bias: bool = True
  impl: str = "auto"

  @nn.compact
  def __call__(self, x_BHWC: jax.Array) -> jax.Array:
    kernel = self.param("kernel", nn.initializers.lecun_normal(),
                        (4, 4, x_BHWC.shape[-1], self.features))
    s = self.strides
    if resolve_impl(self.impl) == "xla":
      y = jax.lax.conv_general_dilated(x_BHWC, kernel, (s, s), ((1, 1), (1, 1)),
                                       dimension_numbers=("NHWC", "HWIO", "NHWC"))
    else:
      xp = jnp.pad(x_BHWC, ((0, 0), (1, 1), (1, 1), (0, 0)))
      out_h, out_w = (xp.shape[1] - 4) // s + 1, (xp.shape[2] - 4) // s + 1
      patches = _taps(xp, [(i, j) for i in range(4) for j in range(4)], s, out_h, out_w)
      y = patches @ kernel.reshape(-1, self.features)  # Taps (i, j, c) in kernel order.
    if self.use_bias:
      y = y + self.param("bias", nn.initializers.zeros_init(), (self.features,))
    return y


class ConvTranspose4x4(nn.Module):
  """4x4 stride-2 transposed convolution that doubles H and W (torch's k=4, s=2, p=1).

  The "matmul" form is sub-pixel: output pixel (2m + a, 2n + b) only sees the 2x2 input
  window at rows m - 1 + a .. m + a (cols likewise) through kernel taps (2t + a, 2u + b),
  so each of the four output phases is one 2x2 patch matmul, then the phases interleave.
  """
  features: int
  use_bias: bool = True
  impl: str = "auto"

  @nn.compact
  def __call__(self, x_BHWC: jax.Array) -> jax.Array:
    kernel = self.param("kernel", nn.initializers.lecun_normal(),
                        (4, 4, x_BHWC.shape[-1], self.features))
    b, h, w, _ = x_BHWC.shape
    if resolve_impl(self.impl) == "xla":
      y = jax.lax.conv_transpose(x_BHWC, kernel, (2, 2), ((2, 2), (2, 2)),
                                 dimension_numbers=("NHWC", "HWIO", "NHWC"))
    else:
      xp = jnp.pad(x_BHWC, ((0, 0), (1, 1), (1, 1), (0, 0)))
      phases = []
      for a in (0, 1):
        for c in (0, 1):
          patches = _taps(xp, [(a + t, c + u) for t in (0, 1) for u in (0, 1)], 1, h, w)
          taps = kernel[a::2, c::2].reshape(-1, self.features)  # Taps (2t + a, 2u + c).
          phases.append(patches @ taps)
      y = jnp.stack(phases, axis=3).reshape(b, h, w, 2, 2, self.features)
      y = y.transpose(0, 1, 3, 2, 4, 5).reshape(b, 2 * h, 2 * w, self.features)
    if self.use_bias:
      y = y + self.param("bias", nn.initializers.zeros_init(), (self.features,))
    return y
