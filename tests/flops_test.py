"""colorize.flops against JAX's own autodiff: the convolutions in the iteration's jaxpr.

Each `conv_general_dilated` of the traced iteration (conv_impl "xla") is evaluated on ones:
with zero padding and zero-dilated inputs, the sum of its output is exactly its number of
real multiply-adds. JAX computes two things the count leaves out, so they are added back: the
critic's last layer forward at x_hat (its output is dead: only its gradient is used), and the
condition channel of the critic's first-layer input gradient (computed with the colour
channels, then sliced away).
"""
import functools

import jax
from jax.extend import core
import jax.numpy as jnp
import numpy as np
import pytest

from colorize import flops
from colorize import train_step
from tests import helpers


def _conv_macs(jaxpr: core.Jaxpr) -> int:
  total = 0
  for eqn in jaxpr.eqns:
    if eqn.primitive is jax.lax.conv_general_dilated_p:
      lhs, rhs = (v.aval for v in eqn.invars)
      out = jax.lax.conv_general_dilated_p.bind(jnp.ones(lhs.shape), jnp.ones(rhs.shape),
                                                **eqn.params)
      total += int(np.asarray(out, np.float64).sum())
    for sub in core.jaxprs_in_params(eqn.params):
      total += _conv_macs(sub)
  return total


@pytest.mark.parametrize("loss,critic_layers,head,mirror_average", [
    ("wgan_gp", 1, "regression", False), ("wgan_gp", 3, "regression", False),
    ("wgan_gp", 3, "regression", True), ("lsgan", 2, "regression", False),
    ("l1", 2, "regression", False), ("l1", 2, "classification", False)])
def test_iteration_flops_match_the_convolutions_jax_runs(loss, critic_layers, head,
                                                        mirror_average):
  config = helpers.config(loss=loss, image_size=16)
  config.model.critic_layers = critic_layers
  config.model.head = head
  config.model.mirror_average = mirror_average
  state = jax.eval_shape(functools.partial(train_step.create_train_state, config),
                         jax.random.key(0))
  images = jax.ShapeDtypeStruct((1, config.batch_size, 16, 16, 3), jnp.uint8)
  step = functools.partial(train_step.train_iteration,
                           hp=train_step.StepConfig.from_config(config))
  traced = _conv_macs(jax.make_jaxpr(step)(state, images, jax.random.key(0)).jaxpr)

  d = [layer.macs() for layer in flops.critic_layers(config)]
  condition_dx = d[0] / 3  # 1 of the first layer's 3 input channels (L, a, b).
  extra = {"wgan_gp": d[-1] + 4 * condition_dx,  # Dead forward; 4 first-layer convs.
           "lsgan": condition_dx,  # The generator update's critic input gradient.
           "l1": 0}[loss]
  # A classification head's 1x1 layer is a matmul, not a conv: forward, dW, dX.
  dense = sum(3 * l.macs() for l in flops.generator_layers(config) if l.kernel == 1)
  assert traced + config.batch_size * dense == (flops.iteration_flops(config) / 2
                                                + config.batch_size * extra)


def test_classification_head_layers():
  config = helpers.config(image_size=16, model=dict(head="classification", width=4))
  *_, last, head = flops.generator_layers(config)
  assert last == flops.Layer(8, 2 * 4, 4, transpose=True)
  assert head.macs() == 16 * 16 * 4 * 23 * 23


def test_layer_macs_skip_padded_taps():
  # 2x2 -> 1x1 sees x through its 4 centre taps; 1x1 -> 2x2 transposed likewise.
  assert flops.Layer(2, 3, 5).macs() == 4 * 3 * 5
  assert flops.Layer(1, 3, 5, transpose=True).macs() == 4 * 3 * 5
  # Stride 1, 4x4 -> 3x3: per axis the 3 outputs see 3 + 4 + 3 real taps.
  assert flops.Layer(4, 2, 1, strides=1).macs() == 10**2 * 2

