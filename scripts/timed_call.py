"""What the timing scripts time: the trainer's compiled call on synthetic batches.

scripts/benchmark.py, profile_step.py and compare_revisions.py all run the trainer's call
(`train_calls.train_call`) from its initial state on random batches, with the PyTorch
reference's optimizer where they compare with it. Both are made here, so that the three time
the same program. compare_revisions.py imports this file from its own tree and `colorize`
from each revision's, so it relies only on what those revisions share.
"""
import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from colorize import input_pipeline
from colorize import train_step


def use_reference_optimizer(config: ml_collections.ConfigDict) -> None:
  """Gives both models the PyTorch reference's optimizer, Adam(1e-4, 0.5, 0.9), in place.

  The reference (../shared/bench/torch_reference.py) trains with it: the same optimizer makes
  a timing compared with it, or with another of this project's, time the same work.
  """
  config.optimizer.generator_lr = config.optimizer.critic_lr = 1e-4
  config.optimizer.b1, config.optimizer.b2 = 0.5, 0.9


def call_inputs(config: ml_collections.ConfigDict, batch: int, iterations: int
                ) -> tuple[train_step.TrainState, jax.Array, jax.Array]:
  """The call's arguments: `config`'s initial state, random batches and the run's key.

  Args:
    config: the run config.
    batch: the global batch size.
    iterations: how many iterations the batches feed (the call's length).

  Returns:
    (state, uint8 batches [iterations, batches_per_step, batch, S, S, 3], key).
  """
  key = jax.random.key(0)
  state = jax.jit(functools.partial(train_step.create_train_state, config))(key)
  shape = (iterations, input_pipeline.batches_per_step(config), batch,
           config.image_size, config.image_size, 3)
  xs = jnp.asarray(np.random.default_rng(0).integers(0, 256, shape, np.uint8))
  return state, xs, key
