"""Several training iterations per compiled call (config.steps_per_call), data on device or not.

One call runs `len(xs)` guarded iterations (`nonfinite.guarded_iteration`, the NaN/Inf guard
included) in a `jax.lax.scan` and returns each iteration's metrics and finiteness flags as
[len(xs)] arrays, so the host dispatches once per call instead of once per step and the logs
stay per step. `xs` is one call's batches from the host, or with config.data_on_device one
call's crop plans, which `device_data.gather` turns into the same batches on device.

The trainer runs calls of K = `steps_per_call(config)` iterations and stops them exactly at
every step where it logs, evaluates, samples, saves or ends; the steps left before such a
step when fewer than K remain are run as calls of one iteration, so at most two programs are
compiled. Both are the same scan, which is why K = 1 and K = 8 train bitwise alike (a scan's
body and a lone iteration can be compiled with different fusions).
"""
import functools

import jax
import ml_collections
from jax.sharding import Mesh

from colorize import device_data
from colorize import nonfinite
from colorize import train_step

# Under config.steps_per_call = 0: the largest divisor of log_every_steps up to this, so that
# full calls end on log steps. On GPU/TPU per-step dispatch, not arithmetic, bounds this model's
# iteration, and a call of many iterations spreads it thin. On CPU the arithmetic dominates,
# but XLA:CPU allocates a program's buffers afresh at every call and the kernel maps their
# pages in again (docs/performance.md), which a few iterations per call share; a short call
# keeps a Ctrl-C or SIGTERM answered within seconds.
MAX_AUTO_STEPS_PER_CALL = 128
MAX_AUTO_STEPS_PER_CALL_CPU = 8


def steps_per_call(config: ml_collections.ConfigDict, backend: str | None = None) -> int:
  """K: config.steps_per_call, or for 0 the backend's default.

  Args:
    config: the run config.
    backend: "cpu", "gpu" or "tpu"; None asks JAX for the default backend.

  Returns:
    config.steps_per_call when > 0; else the largest divisor of config.log_every_steps up to
    MAX_AUTO_STEPS_PER_CALL_CPU on CPU and up to MAX_AUTO_STEPS_PER_CALL on GPU/TPU.
  """
  if config.steps_per_call > 0:
    return config.steps_per_call
  cpu = (backend or jax.default_backend()) == "cpu"
  limit = MAX_AUTO_STEPS_PER_CALL_CPU if cpu else MAX_AUTO_STEPS_PER_CALL
  return max(d for d in range(1, limit + 1) if config.log_every_steps % d == 0)


def train_call(state: train_step.TrainState, xs: jax.Array, key: jax.Array,
               split: jax.Array | None = None, labels: jax.Array | None = None, *,
               hp: train_step.StepConfig, skip: bool, mesh: Mesh | None = None,
               image_size: int = 0, sharded: bool = False):
  """`len(xs)` guarded training iterations, one after the other.

  Args:
    state: the training state.
    xs: uint8 batches [n, batches_per_step, B, S, S, 3], or with `split` int32 crop plans
      [n, batches_per_step, B, 4] (`input_pipeline.train_plans`).
    key: the run's base key (each iteration folds in its step).
    split: the training split on the devices (`device_data.put`), or None for host batches.
    labels: int32 [n, batches_per_step, B], the images' classes (`input_pipeline.train_labels`)
      when the generator classifies them; else None.
    hp: loss hyperparameters.
    skip: config.on_nonfinite == "skip" (`nonfinite.guarded_iteration`).
    mesh: the trainer's mesh (with `split`).
    image_size: config.image_size (with `split`).
    sharded: whether `split` is sharded over the devices (with `split`).

  Returns:
    (state after n iterations, metrics {name: [n]}, finiteness flags {name: [n]}).
  """
  def iteration(state, inputs):
    x, x_labels = inputs
    images = x if split is None else device_data.gather(split, x, image_size, mesh, sharded)
    state, metrics, finite = nonfinite.guarded_iteration(state, images, key, hp=hp, skip=skip,
                                                         labels=x_labels)
    return state, (metrics, finite)

  state, (metrics, finite) = jax.lax.scan(iteration, state, (xs, labels))
  return state, metrics, finite


def jit_train_call(hp: train_step.StepConfig, mode: str, **device_data_args):
  """`train_call` compiled like `train_step.jit_train_iteration` (state donated off CPU).

  Args:
    hp: loss hyperparameters.
    mode: "stop" or "skip" (config.on_nonfinite, checked by `validation.validate_config`).
    **device_data_args: `mesh`, `image_size` and `sharded` for a split on the devices.

  Returns:
    fn(state, xs, key, split=None, labels=None) -> (state, metrics, flags), metrics and
    flags per step.
  """
  return jax.jit(functools.partial(train_call, hp=hp, skip=mode == "skip", **device_data_args),
                 donate_argnums=train_step.donated_state())


def per_step(fetched: list[tuple[dict, dict]]) -> list[tuple[dict, dict]]:
  """Calls' fetched (metrics, flags) of [n] arrays -> one (metrics, flags) per step, in order.

  Args:
    fetched: per call, `train_call`'s metrics and flags, on the host.

  Returns:
    Per step, its metrics and flags as scalars (what `nonfinite.summarize` reads).
  """
  steps = []
  for metrics, finite in fetched:
    n = len(next(iter(metrics.values())))
    steps.extend(({k: v[i] for k, v in metrics.items()}, {k: v[i] for k, v in finite.items()})
                 for i in range(n))
  return steps
