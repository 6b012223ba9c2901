"""config.compute_dtype="bfloat16": the models compute in bf16, what is trained stays float32.

A few iterations of the tiny test config in bf16 stay close to the same iterations in float32
(same init, same batches, same keys), with params, batch statistics and Adam's moments still
float32.
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from colorize import train_step
from tests import helpers

_STEPS = 3


def _train(compute_dtype: str, conv_impl: str):
  """(initial state, state after _STEPS iterations, each iteration's metrics, the step)."""
  config = helpers.config(compute_dtype=compute_dtype)
  config.model.conv_impl = conv_impl
  state = train_step.create_train_state(config, jax.random.key(0))
  step = jax.jit(functools.partial(train_step.train_iteration,
                                   hp=train_step.StepConfig.from_config(config)))
  rng = np.random.default_rng(0)
  shape = (1, config.batch_size, config.image_size, config.image_size, 3)
  initial, metrics = state, []
  for _ in range(_STEPS):
    state, m = step(state, rng.integers(0, 256, shape, dtype=np.uint8), jax.random.key(0))
    metrics.append(jax.device_get(m))
  return initial, state, metrics, step


def _flat(tree) -> np.ndarray:
  return np.concatenate([np.ravel(x) for x in jax.tree.leaves(tree)])


@pytest.mark.parametrize("conv_impl", ["xla", "matmul"])
def test_bfloat16_tracks_float32_and_keeps_float32_state(conv_impl):
  initial, f32, f32_metrics, _ = _train("float32", conv_impl)
  _, bf16, bf16_metrics, _ = _train("bfloat16", conv_impl)

  trained = (bf16.gen_params, bf16.gen_batch_stats, bf16.gen_opt_state, bf16.critic_params,
             bf16.critic_opt_state)
  assert {x.dtype for x in jax.tree.leaves(trained) if x.ndim} == {np.dtype(np.float32)}
  for part in ("gen_params", "critic_params"):
    change = np.linalg.norm(_flat(getattr(f32, part)) - _flat(getattr(initial, part)))
    gap = np.linalg.norm(_flat(getattr(f32, part)) - _flat(getattr(bf16, part)))
    # Adam's first steps move each weight by about +-lr whatever the gradient's size, so
    # weights with near-zero gradients may step the other way in bf16: a small fraction of
    # the change, not zero (zero would mean bf16 was not used).
    assert 0 < gap < 0.3 * change, (part, gap, change)
  for m32, m16 in zip(f32_metrics, bf16_metrics):
    for name in m32:
      np.testing.assert_allclose(m16[name], m32[name], rtol=0.15, atol=0.02, err_msg=name)


def test_bfloat16_convolutions_take_bfloat16_operands():
  config = helpers.config(compute_dtype="bfloat16")
  state = jax.eval_shape(functools.partial(train_step.create_train_state, config),
                         jax.random.key(0))
  images = jax.ShapeDtypeStruct((1, config.batch_size, config.image_size,
                                 config.image_size, 3), jnp.uint8)
  step = functools.partial(train_step.train_iteration,
                           hp=train_step.StepConfig.from_config(config))
  jaxpr = jax.make_jaxpr(step)(state, images, jax.random.key(0))

  def conv_dtypes(jaxpr):
    for eqn in jaxpr.eqns:
      if eqn.primitive is jax.lax.conv_general_dilated_p:
        yield tuple(v.aval.dtype for v in eqn.invars)
      for sub in jax.extend.core.jaxprs_in_params(eqn.params):
        yield from conv_dtypes(sub)

  dtypes = list(conv_dtypes(jaxpr.jaxpr))
  assert dtypes and set(dtypes) == {(jnp.dtype(jnp.bfloat16),) * 2}
