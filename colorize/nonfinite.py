"""NaN/Inf guard: finiteness decided on device, then "stop" or "skip" (config.on_nonfinite).

A NaN/Inf gradient shows up in the parameters and Adam's moments even while every loss is
finite, so the state is checked as well as the metrics:

* "stop": each step's metrics are checked (scalars, free), and the whole state once per log
  window, at every log and checkpoint step, before anything is logged or saved (a pass over
  the state every step costs a noticeable part of a step). A NaN gradient makes the next
  step's losses NaN, so the error names that step, or the log step that found the state bad.
* "skip": `guarded_iteration(skip=True)` checks metrics and state every step, inside the
  jitted step, and where anything is non-finite keeps the old state, all of it, on device;
  only the step counter advances, so the next step draws fresh randomness and the data order
  stays a function of (seed, step). (The check and the select make a step markedly slower,
  docs/reliability.md has the figures; the option is for runs that hit rare bad batches.)

The host reads the flags with the metrics once per log window (no extra device round trip per
step); `summarize` raises or logs and counts the skipped steps.
"""
from absl import logging
import jax
import jax.numpy as jnp
import numpy as np

from colorize import train_step

MODES = ("stop", "skip")
# The arrays of a TrainState that training updates (the step counter is an integer).
STATE_PARTS = ("gen_params", "gen_batch_stats", "gen_opt_state", "critic_params",
               "critic_opt_state", "ema_params", "ema_batch_stats")
Flags = dict[str, jax.Array]


def _all_finite(tree) -> jax.Array:
  flags = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)
           if jnp.issubdtype(x.dtype, jnp.inexact)]
  return jnp.all(jnp.stack(flags)) if flags else jnp.array(True)


def _state_flags(state: train_step.TrainState) -> Flags:
  return {part: _all_finite(getattr(state, part)) for part in STATE_PARTS}


def guarded_iteration(state: train_step.TrainState, images: jax.Array, key: jax.Array, *,
                      hp: train_step.StepConfig, skip: bool, labels: jax.Array | None = None
                      ) -> tuple[train_step.TrainState, train_step.Metrics, Flags]:
  """`train_step.train_iteration` plus finiteness flags; with `skip`, drops a bad update.

  Args:
    state: the training state.
    images: uint8 RGB [K, B, H, W, 3] (see `train_step.train_iteration`).
    key: the run's base key.
    hp: loss hyperparameters.
    skip: check the new state too, and keep the old one (step counter + 1) when anything
      came out non-finite.
    labels: the images' classes [K, B], for a generator that classifies them.

  Returns:
    (new state, the step's metrics, {metric, and with `skip` state part: True where finite}).
  """
  new_state, metrics = train_step.train_iteration(state, images, key, hp=hp, labels=labels)
  finite = {name: jnp.isfinite(value) for name, value in metrics.items()}
  if skip:
    finite.update(_state_flags(new_state))
    ok = jnp.all(jnp.stack(list(finite.values())))
    kept = jax.tree.map(lambda new, old: jnp.where(ok, new, old), new_state, state)
    new_state = kept.replace(step=new_state.step)
  return new_state, metrics, finite


_jit_state_flags = jax.jit(_state_flags)


def _describe(problems: list[str], step: int) -> str:
  """One line however many problems: the first, the step, the others in brackets."""
  first = problems[0]
  if first in STATE_PARTS:
    first += " (a parameter or optimizer moment: a NaN/Inf gradient)"
  also = f" (also non-finite: {', '.join(problems[1:])})" if problems[1:] else ""
  return f"{first} at step {step}{also}"


def summarize(window: list[tuple[dict, dict]], first_step: int, mode: str,
              state: train_step.TrainState, last_checkpoint: str) -> dict[str, float]:
  """Checks one log window and returns the scalars to log.

  Args:
    window: per step, the metrics and finiteness flags of `guarded_iteration`, fetched.
    first_step: the step of window[0] (steps are numbered from 1).
    mode: "stop" or "skip".
    state: the state after the window's last step ("stop" checks it here).
    last_checkpoint: where the last good checkpoint is, for the error message.

  Returns:
    The mean of each metric over the window's steps (in "skip" mode, over the steps kept,
    plus `skipped_steps`: how many were dropped).

  Raises:
    FloatingPointError: in "stop" mode, naming the first step with a non-finite value.
  """
  def stop(problems, step):
    raise FloatingPointError(
        f"non-finite {_describe(problems, step)}; stopped without saving it: "
        f"{last_checkpoint} (config.on_nonfinite='skip' drops such steps instead)")

  kept = []
  for offset, (metrics, finite) in enumerate(window):
    # What is non-finite in the step, metrics first: ["critic_loss=nan", "gen_params"].
    problems = [f"{name}={float(value)}" for name, value in metrics.items() if not finite[name]]
    problems += [part for part in STATE_PARTS if part in finite and not finite[part]]
    if not problems:
      kept.append(metrics)
    elif mode == "stop":
      stop(problems, first_step + offset)
    else:
      logging.warning("Skipped a step (config.on_nonfinite='skip'): non-finite %s",
                      _describe(problems, first_step + offset))
  if mode == "stop":
    flags = jax.device_get(_jit_state_flags(state))
    problems = [part for part in STATE_PARTS if not flags[part]]
    if problems:
      stop(problems, first_step + len(window) - 1)
  summary = {k: float(np.mean([m[k] for m in kept])) for k in (kept[0] if kept else {})}
  if mode == "skip":
    summary["skipped_steps"] = len(window) - len(kept)
  return summary
