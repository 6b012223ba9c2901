"""The two conv implementations compute what flax's stock layers compute, on the same params."""
import flax.linen as nn
import jax
import numpy as np
import pytest

from colorize import conv
from colorize import models


@pytest.mark.parametrize("impl", ["xla", "matmul"])
@pytest.mark.parametrize("strides,size", [(2, 8), (2, 2), (1, 5)])
def test_conv_matches_flax_conv(impl, strides, size):
  x = jax.random.normal(jax.random.key(0), (2, size, size, 3))
  layer = conv.Conv4x4(5, strides=strides, impl=impl)
  params = layer.init(jax.random.key(1), x)
  stock = nn.Conv(5, (4, 4), strides=strides, padding=((1, 1), (1, 1)))
  np.testing.assert_allclose(layer.apply(params, x), stock.apply(params, x), atol=2e-6)


@pytest.mark.parametrize("impl", ["xla", "matmul"])
@pytest.mark.parametrize("size", [1, 2, 7])
def test_conv_transpose_matches_flax_conv_transpose(impl, size):
  x = jax.random.normal(jax.random.key(0), (2, size, size, 3))
  layer = conv.ConvTranspose4x4(5, impl=impl)
  params = layer.init(jax.random.key(1), x)
  stock = nn.ConvTranspose(5, (4, 4), strides=(2, 2), padding=((2, 2), (2, 2)))
  y = layer.apply(params, x)
  assert y.shape == (2, 2 * size, 2 * size, 5)
  np.testing.assert_allclose(y, stock.apply(params, x), atol=2e-6)


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
