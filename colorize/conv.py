"""The 4x4 convolutions of pix2pix, with two interchangeable implementations.

  "xla"     `lax.conv_general_dilated`: what `nn.Conv`/`nn.ConvTranspose` run; best on GPU/TPU.
  "matmul"  the same arithmetic as matmuls plus slices. XLA:CPU is slow for this U-Net's
            small-spatial, many-channel convolutions (transposed ones worst, and the backward
            passes worse than the forward); as matmuls the generator's convolutions run
            several times faster there (scripts/benchmark.py).

Both read the same parameters ("kernel" [4, 4, in, out] and "bias", initialised like flax's
Conv), so checkpoints move between them, and both compute exactly what `nn.Conv(k, (4, 4),
strides, padding=((1, 1), (1, 1)))` and `nn.ConvTranspose(k, (4, 4), strides=(2, 2),
padding=((2, 2), (2, 2)))` compute (tests/conv_test.py) — torch's k=4, p=1 layers.

Every "matmul" layer reduces to a 'VALID' convolution (stride 1, or stride 2 for im2col),
done in one of two forms:
  im2col     concatenate the kh*kw windows of the input, then one matmul;
  shift-add  one matmul of every input pixel with all kh*kw taps, then sum the shifted
             windows of those products (a few more FLOPs: border pixels meet every tap).
`matmul_form` weighs the two forms' FLOPs against the memory their intermediates take: im2col
where its patches are not much larger than the products (the U-Net's encoder, the critic),
shift-add where they would be (the transposed convs, whose FLOPs are the same either way, and
the critic's 1-channel output layer). At the 1x1 bottleneck only the four centre taps see
data, so those layers are one plain matmul.
"""
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

IMPLS = ("auto", "xla", "matmul")


def resolve_impl(impl: str) -> str:
  """"auto" is "matmul" on CPU (measured faster there) and "xla" on GPU/TPU."""
  if impl == "auto":
    return "matmul" if jax.default_backend() == "cpu" else "xla"
  return impl


# The time of one float32 written to memory and read back, in FLOPs of matmul time. For the
# seed model any value from 7 to 180 gives the same choices: those of per-layer timings on a
# 2-core CPU, and im2col for the 16x16 -> 8x8 layers, which scripts/compare_revisions.py
# measured faster that way than as shift-add over whole iterations.
_MEMORY_WEIGHT = 64


def matmul_form(in_pixels: int, out_pixels: int, in_channels: int, out_channels: int) -> str:
  """"im2col" or "shift_add" for a 'VALID' convolution of these sizes (per sample).

  With `taps` kernel taps, im2col does out_pixels * taps * in_channels * out_channels
  multiply-adds and materialises out_pixels * taps * in_channels patch values; shift-add does
  in_pixels * taps * in_channels * out_channels multiply-adds (it multiplies border pixels
  with taps whose products fall outside) and materialises in_pixels * taps * out_channels
  products. The form with the smaller 2 * multiply-adds + _MEMORY_WEIGHT * values wins;
  `taps` cancels out.
  """
  im2col = out_pixels * in_channels * (2 * out_channels + _MEMORY_WEIGHT)
  shift_add = in_pixels * out_channels * (2 * in_channels + _MEMORY_WEIGHT)
  return "im2col" if im2col <= shift_add else "shift_add"


# The matmuls of the "matmul" forms, differentiated by hand for one reason: their weight
# gradients (see `_weight_grad`). The gradient penalty differentiates the critic twice, so
# every product its derivatives contain goes through these rules too: the input gradient is
# `_matmul_t` (with a weight gradient in w's layout, where XLA would fold a transpose of w
# into the product), and the forward rules call the functions themselves, so that the
# derivative of a forward rule meets the same rules.
@jax.custom_vjp
def _matmul(x: jax.Array, w: jax.Array) -> jax.Array:
  """x [..., K] @ w [K, O]."""
  return x @ w


@jax.custom_vjp
def _matmul_t(g: jax.Array, w: jax.Array) -> jax.Array:
  """g [..., O] @ w.T for w [K, O]: `_matmul`'s input gradient."""
  return g @ w.T


def _matmul_bwd(residuals, g):
  x, w = residuals
  return _matmul_t(g, w), _weight_grad(x, g)


def _matmul_t_bwd(residuals, ct):
  g, w = residuals
  return _matmul(ct, w), _weight_grad(ct, g)


_matmul.defvjp(lambda x, w: (_matmul(x, w), (x, w)), _matmul_bwd)
_matmul_t.defvjp(lambda g, w: (_matmul_t(g, w), (g, w)), _matmul_t_bwd)


def _weight_grad(x: jax.Array, g: jax.Array) -> jax.Array:
  """x^T g over all leading axes: the weight gradient [K, O] of x [..., K] @ w.

  XLA:CPU computes x^T g, a contraction over both operands' major axis, with a general
  matmul that is slow when the result has few columns; its row-major matmul of g^T x is
  about twice as fast there. So where g is the narrower operand and the rows are not too few
  for the transposes to pay, g^T x is taken and transposed (the barriers keep XLA from
  folding the transposes back into the product).
  """
  k, o = x.shape[-1], g.shape[-1]
  x, g = x.reshape(-1, k), g.reshape(-1, o)
  if o < k <= 4 * x.shape[0]:
    barrier = jax.lax.optimization_barrier
    return barrier(barrier(g.T) @ x).T
  return x.T @ g


def _pad1(x_BHWC: jax.Array) -> jax.Array:
  return jnp.pad(x_BHWC, ((0, 0), (1, 1), (1, 1), (0, 0)))


def _shift(x_BHWC: jax.Array, di: int, dj: int) -> jax.Array:
  """out[:, m, n] = x[:, m + di, n + dj], zero where that falls outside x (no copy of x)."""
  return jax.lax.pad(x_BHWC, jnp.zeros((), x_BHWC.dtype),
                     ((0, 0, 0), (-di, di, 0), (-dj, dj, 0), (0, 0, 0)))


def _tap_products(x_BHWC: jax.Array, kernel: jax.Array) -> list[list[jax.Array]]:
  """x times each tap of kernel [kh, kw, C, O] as one matmul; [i][j] is tap (i, j).

  Split with `unstack`, whose transpose is one `stack`: indexing the taps instead would
  differentiate into kh*kw zero-padded copies of the whole product, summed. Split in two
  levels (rows, then columns), because XLA:CPU fuses a stack of at most 8 arrays: one of 16
  would copy every tap's gradient before stacking them.
  """
  kh, kw, c, o = kernel.shape
  b, h, w, _ = x_BHWC.shape
  products = _matmul(x_BHWC, kernel.transpose(2, 0, 1, 3).reshape(c, kh * kw * o))
  rows = jnp.unstack(products.reshape(b, h, w, kh, kw, o), axis=3)
  return [jnp.unstack(row, axis=3) for row in rows]


def _valid_conv(x_BHWC: jax.Array, kernel: jax.Array) -> jax.Array:
  """Stride-1 'VALID' convolution of x [B, H, W, C] with kernel [kh, kw, C, O], as matmuls."""
  kh, kw, c, o = kernel.shape
  b, h, w, _ = x_BHWC.shape
  oh, ow = h - kh + 1, w - kw + 1
  windows = [(i, j) for i in range(kh) for j in range(kw)]
  if matmul_form(h * w, oh * ow, c, o) == "im2col":
    # Patch channels (i, j, c), the kernel's order. Stacked on a new axis, not concatenated:
    # XLA:CPU makes the stack one fusion, but copies each window before a concatenation.
    patches = jnp.stack([x_BHWC[:, i:i + oh, j:j + ow] for i, j in windows], axis=3)
    return _matmul(patches.reshape(b, oh, ow, kh * kw * c), kernel.reshape(kh * kw * c, o))
  products = _tap_products(x_BHWC, kernel)
  return sum(products[i][j][:, i:i + oh, j:j + ow] for i, j in windows)


def _space_to_depth(x_BHWC: jax.Array) -> jax.Array:
  """[B, 2H, 2W, C] -> [B, H, W, 4C], channels ordered (dy, dx, c)."""
  b, h, w, c = x_BHWC.shape
  x = x_BHWC.reshape(b, h // 2, 2, w // 2, 2, c).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(b, h // 2, w // 2, 4 * c)


def _interleave(phases) -> jax.Array:
  """phases[a][c] [B, H, W, O] is output pixel (2m + a, 2n + c); returns [B, 2H, 2W, O]."""
  rows = [jnp.stack(row, axis=3) for row in phases]  # [B, H, W, 2 (c), O] each.
  y = jnp.stack(rows, axis=2)  # [B, H, 2 (a), W, 2 (c), O]
  b, h, _, w, _, o = y.shape
  return y.reshape(b, 2 * h, 2 * w, o)


def conv4x4_matmul(x_BHWC: jax.Array, kernel: jax.Array, strides: int) -> jax.Array:
  """torch's Conv2d(k=4, p=1) with stride 1 or 2 (no bias), as matmuls.

  Stride 2 in the im2col form gathers each output pixel's 4x4 window with strided slices.
  Otherwise it becomes stride 1 after space-to-depth: padded row 2p + dy is row p, channel
  block dy, so the 4x4 stride-2 kernel is a 2x2 stride-1 kernel over 4x the channels. (The
  strided im2col was faster over whole iterations than the space-to-depth one, which
  transposes the input and the kernel: scripts/compare_revisions.py.)
  """
  b, h, w, c = x_BHWC.shape
  o = kernel.shape[-1]
  if strides == 2 and h == w == 2:
    # A 1x1 output (the U-Net's bottleneck) sees x through the four centre taps only; the
    # other twelve see padding, so a quarter of the FLOPs and no patches.
    y = _matmul(x_BHWC.reshape(b, 4 * c), kernel[1:3, 1:3].reshape(4 * c, o))
    return y.reshape(b, 1, 1, o)
  xp = _pad1(x_BHWC)
  if strides == 1:
    return _valid_conv(xp, kernel)
  oh, ow = h // 2, w // 2
  # The form is chosen on the space-to-depth sizes, as `_valid_conv` below would choose it.
  if matmul_form((oh + 1) * (ow + 1), oh * ow, 4 * c, o) == "im2col":
    # Patch channels (i, j, c), the kernel's own order, so the kernel is not transposed;
    # stacked in two levels for the reason `_tap_products` gives.
    rows = [jnp.stack([xp[:, i:i + 2 * oh:2, j:j + 2 * ow:2] for j in range(4)], axis=3)
            for i in range(4)]
    patches = jnp.stack(rows, axis=3).reshape(b, oh, ow, 16 * c)
    return _matmul(patches, kernel.reshape(16 * c, o))
  # kernel[2t + dy, 2u + dx, c] -> s2d_kernel[t, u, (dy, dx, c)].
  s2d_kernel = kernel.reshape(2, 2, 2, 2, c, o).transpose(0, 2, 1, 3, 4, 5)
  return _valid_conv(_space_to_depth(xp), s2d_kernel.reshape(2, 2, 4 * c, o))


def conv_transpose4x4_matmul(x_BHWC: jax.Array, kernel: jax.Array) -> jax.Array:
  """torch's ConvTranspose2d(k=4, s=2, p=1) (no bias), as matmuls.

  Output pixel (2m + a, 2n + c) sees input rows m - 1 + a .. m + a (columns likewise) through
  kernel taps (2t + a, 2u + c), t, u in {0, 1}. With more input than output channels every
  input pixel is multiplied with all 16 taps once and each output phase sums its four shifted
  products (shift-add); otherwise each phase is a 2x2 'VALID' convolution of the padded input
  (sub-pixel convolution).
  """
  b, h, w, c = x_BHWC.shape
  o = kernel.shape[-1]
  if h == w == 1:
    # Only tap (2 - a, 2 - c) of phase (a, c) sees x; the other twelve see padding. One
    # slice for all four taps: its gradient is one zero-padded kernel, not one per tap.
    centre = kernel[2:0:-1, 2:0:-1]  # centre[a, c] is tap (2 - a, 2 - c).
    y = _matmul(x_BHWC.reshape(b, c), centre.transpose(2, 0, 1, 3).reshape(c, 4 * o))
    return y.reshape(b, 2, 2, o)
  if matmul_form(h * w, h * w, c, o) == "im2col":
    xp = _pad1(x_BHWC)
    # phase_kernels[2a + c] = kernel[a::2, c::2], split with unstack (one stack to transpose).
    phase_kernels = jnp.unstack(kernel.reshape(2, 2, 2, 2, c, o).transpose(1, 3, 0, 2, 4, 5)
                                .reshape(4, 2, 2, c, o))
    return _interleave([[_valid_conv(xp[:, a:a + h + 1, cc:cc + w + 1], phase_kernels[2 * a + cc])
                         for cc in (0, 1)] for a in (0, 1)])
  products = _tap_products(x_BHWC, kernel)
  return _interleave([[
      sum(_shift(products[2 * t + a][2 * u + cc], a + t - 1, cc + u - 1)
          for t in (0, 1) for u in (0, 1))
      for cc in (0, 1)] for a in (0, 1)])


def _with_params(module: nn.Module, x_BHWC: jax.Array, conv) -> jax.Array:
  """conv(x, kernel) + bias, declaring flax Conv's params: "kernel" [4, 4, in, out], "bias".

  The kernel starts as flax's default (LeCun normal) or, with `module.init_std` > 0, as
  N(0, init_std), the pix2pix tutorial's initialisation. The params are float32; x, kernel
  and bias are cast to `module.dtype` for the arithmetic (flax's `dtype`/`param_dtype`
  split), so the output has that dtype.
  """
  init = (nn.initializers.normal(module.init_std) if module.init_std > 0
          else nn.initializers.lecun_normal())
  kernel = module.param("kernel", init, (4, 4, x_BHWC.shape[-1], module.features))
  y = conv(x_BHWC.astype(module.dtype), kernel.astype(module.dtype))
  if module.use_bias:
    bias = module.param("bias", nn.initializers.zeros_init(), (module.features,))
    y = y + bias.astype(module.dtype)
  return y


class Conv4x4(nn.Module):
  """4x4 convolution with padding 1 (torch's Conv2d(k=4, p=1)), stride 1 or 2."""
  features: int
  strides: int = 2
  use_bias: bool = True
  impl: str = "auto"
  init_std: float = 0.0
  dtype: Any = jnp.float32  # Compute dtype; the params stay float32.

  @nn.compact
  def __call__(self, x_BHWC: jax.Array) -> jax.Array:
    s = self.strides
    if resolve_impl(self.impl) == "xla":
      return _with_params(self, x_BHWC, lambda x, k: jax.lax.conv_general_dilated(
          x, k, (s, s), ((1, 1), (1, 1)), dimension_numbers=("NHWC", "HWIO", "NHWC")))
    return _with_params(self, x_BHWC, lambda x, k: conv4x4_matmul(x, k, s))


class ConvTranspose4x4(nn.Module):
  """4x4 stride-2 transposed convolution that doubles H and W (torch's k=4, s=2, p=1)."""
  features: int
  use_bias: bool = True
  impl: str = "auto"
  init_std: float = 0.0
  dtype: Any = jnp.float32  # Compute dtype; the params stay float32.

  @nn.compact
  def __call__(self, x_BHWC: jax.Array) -> jax.Array:
    if resolve_impl(self.impl) == "xla":
      return _with_params(self, x_BHWC, lambda x, k: jax.lax.conv_transpose(
          x, k, (2, 2), ((2, 2), (2, 2)), dimension_numbers=("NHWC", "HWIO", "NHWC")))
    return _with_params(self, x_BHWC, conv_transpose4x4_matmul)
