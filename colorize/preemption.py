"""Preemption: on SIGTERM, save a checkpoint at the current step and end the run normally.

TPU VMs, Slurm and Kubernetes send SIGTERM some time (30 s or more) before they kill a job.

* One process: a handler sets a flag, which the training loop reads after every step; the
  loop then saves that step and returns, and `python -m colorize.main` exits with status 0.
* Several processes (`jax.distributed` initialised): JAX's preemption sync manager catches
  SIGTERM on any host and picks a step every host has yet to reach;
  `CheckpointManager.reached_preemption(step)` turns True at that step on every host, so all
  of them save the same step together. Our handler is not installed then: it would replace
  JAX's, and one host would stop alone.
"""
import signal
import threading

from absl import logging
import jax
import orbax.checkpoint as ocp


class Watch:
  """Context manager: while active, `reached(step, manager)` says whether to save and stop."""

  def __init__(self):
    self._sigterm = False
    self._previous = None  # The SIGTERM handler to put back on exit; None if not installed.

  def __enter__(self) -> "Watch":
    if jax.distributed.is_initialized():
      return self
    if threading.current_thread() is not threading.main_thread():
      # Python only lets the main thread install signal handlers.
      logging.warning("Training outside the main thread: SIGTERM will not save a checkpoint")
      return self
    self._previous = signal.signal(signal.SIGTERM, self._on_sigterm)
    return self

  def __exit__(self, *exc_info) -> None:
    if self._previous is not None:
      # A handler installed from C (or none) reads back as None: restore the default then.
      signal.signal(signal.SIGTERM, self._previous or signal.SIG_DFL)
      self._previous = None

  def _on_sigterm(self, signum, frame) -> None:
    del signum, frame  # Only sets a flag: the handler may run in the middle of anything.
    self._sigterm = True

  @property
  def sigterm_received(self) -> bool:
    """Whether this process got SIGTERM (always False when `jax.distributed` handles it)."""
    return self._sigterm

  def reached(self, step: int, manager: ocp.CheckpointManager) -> bool:
    """Whether to save `step` and stop. Call it after every step, on every process.

    The multi-host protocol needs every step: it picks a future step and answers True only
    there.

    Args:
      step: the step just completed.
      manager: the run's checkpoint manager (its `reached_preemption` is the multi-host sync).

    Returns:
      True once a preemption notice arrived (here, or on any host when distributed).
    """
    return self._sigterm or manager.reached_preemption(step)
