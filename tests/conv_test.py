"""The two conv implementations compute what flax's stock layers compute, on the same params."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from colorize import conv
from colorize import losses
from colorize import models


# (strides, size, in channels, out channels): each matmul form of each layer is exercised
# (test_cases_cover_both_matmul_forms), and so is the 1x1 bottleneck path (size 2, stride 2
# and transposed size 1), which skips the taps that only see padding.
_CONV_CASES = [(2, 8, 4, 16), (2, 2, 3, 5), (2, 8, 8, 2), (1, 5, 3, 5), (1, 5, 16, 1)]
_TRANSPOSE_CASES = [(1, 3, 5), (7, 3, 5), (1, 8, 3), (2, 8, 3), (7, 8, 3)]


def _conv_form(strides, size, c, o):
  """The form conv4x4_matmul's 'VALID' conv takes (after space-to-depth for stride 2)."""
  if strides == 1:
    return conv.matmul_form((size + 2) ** 2, (size - 1) ** 2, c, o)
  return conv.matmul_form((size // 2 + 1) ** 2, (size // 2) ** 2, 4 * c, o)


def test_cases_cover_both_matmul_forms():
  for strides in (1, 2):
    assert {_conv_form(*case) for case in _CONV_CASES
            if case[0] == strides and case[:2] != (2, 2)} == {"im2col", "shift_add"}
  assert {conv.matmul_form(s * s, s * s, c, o) for s, c, o in _TRANSPOSE_CASES
          if s > 1} == {"im2col", "shift_add"}


@pytest.mark.parametrize("impl", ["xla", "matmul"])
@pytest.mark.parametrize("strides,size,c,o", _CONV_CASES)
def test_conv_matches_flax_conv(impl, strides, size, c, o):
  x = jax.random.normal(jax.random.key(0), (2, size, size, c))
  layer = conv.Conv4x4(o, strides=strides, impl=impl)
  params = layer.init(jax.random.key(1), x)
  stock = nn.Conv(o, (4, 4), strides=strides, padding=((1, 1), (1, 1)))
  np.testing.assert_allclose(layer.apply(params, x), stock.apply(params, x), atol=2e-6)
  # And the input gradient (the backward pass is where the forms differ most).
  r = jax.random.normal(jax.random.key(2), stock.apply(params, x).shape)
  grad = lambda f: jax.grad(lambda x: (f(params, x) * r).sum())(x)
  np.testing.assert_allclose(grad(layer.apply), grad(stock.apply), atol=1e-5)


@pytest.mark.parametrize("impl", ["xla", "matmul"])
@pytest.mark.parametrize("size,c,o", _TRANSPOSE_CASES)
def test_conv_transpose_matches_flax_conv_transpose(impl, size, c, o):
  x = jax.random.normal(jax.random.key(0), (2, size, size, c))
  layer = conv.ConvTranspose4x4(o, impl=impl)
  params = layer.init(jax.random.key(1), x)
  stock = nn.ConvTranspose(o, (4, 4), strides=(2, 2), padding=((2, 2), (2, 2)))
  y = layer.apply(params, x)
  assert y.shape == (2, 2 * size, 2 * size, o)
  np.testing.assert_allclose(y, stock.apply(params, x), atol=2e-6)
  r = jax.random.normal(jax.random.key(2), y.shape)
  grad = lambda f: jax.grad(lambda x: (f(params, x) * r).sum())(x)
  np.testing.assert_allclose(grad(layer.apply), grad(stock.apply), atol=1e-5)


def test_gradients_agree_between_impls():
  """Training follows the same path either way: d(loss)/d(params) and d(loss)/d(input)."""
  x = jax.random.normal(jax.random.key(0), (2, 16, 16, 1))
  xla = models.UNetGenerator(width=4, max_width=16, norm="none", dropout=0.0, conv_impl="xla")
  matmul = xla.clone(conv_impl="matmul")
  params = xla.init(jax.random.key(1), x, train=False)

  def loss(model):
    return lambda p, x: (model.apply(p, x, train=False) ** 2).sum()

  g_xla = jax.grad(loss(xla), argnums=(0, 1))(params, x)
  g_matmul = jax.grad(loss(matmul), argnums=(0, 1))(params, x)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5),
               g_xla, g_matmul)


def test_auto_is_matmul_on_cpu():
  assert jax.default_backend() == "cpu" and conv.resolve_impl("auto") == "matmul"
  assert conv.resolve_impl("xla") == "xla"


@pytest.mark.parametrize("impl", ["xla", "matmul"])
@pytest.mark.parametrize("transpose", [False, True])
def test_bfloat16_compute_keeps_float32_params(impl, transpose):
  x = jax.random.normal(jax.random.key(0), (2, 8, 8, 16))
  if transpose:
    layer = conv.ConvTranspose4x4(8, impl=impl, dtype=jnp.bfloat16)
  else:
    layer = conv.Conv4x4(8, impl=impl, dtype=jnp.bfloat16)
  params = layer.init(jax.random.key(1), x)
  assert {p.dtype for p in jax.tree.leaves(params)} == {jnp.dtype(jnp.float32)}
  y = layer.apply(params, x)
  assert y.dtype == jnp.bfloat16
  # bf16 keeps 8 significant bits: each product and sum is off by about 2^-8 relatively.
  y32 = layer.clone(dtype=jnp.float32).apply(params, x)
  np.testing.assert_allclose(np.asarray(y, np.float32), y32, rtol=0.05,
                             atol=0.02 * float(jnp.abs(y32).max()))


def test_penalty_gradients_agree_between_impls():
  """The gradient penalty differentiates the critic twice; both impls give the same result."""
  cond = jax.random.normal(jax.random.key(0), (4, 16, 16, 1))
  colour = jax.random.normal(jax.random.key(1), (4, 16, 16, 2))
  xla = models.PatchCritic(width=8, num_layers=2, conv_impl="xla")
  matmul = xla.clone(conv_impl="matmul")
  params = xla.init(jax.random.key(2), cond, colour)

  def penalty(model):
    def fn(p):
      critic_fn = lambda c: model.apply(p, cond, c)
      return losses.gradient_penalty(critic_fn, colour, 0.5 * colour, eps=jnp.full((4,), 0.3))[0]
    return fn

  g_xla = jax.grad(penalty(xla))(params)
  g_matmul = jax.grad(penalty(matmul))(params)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6),
               g_xla, g_matmul)
