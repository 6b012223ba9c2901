"""Preemption and Ctrl-C: save a checkpoint at the current step and end the run normally.

TPU VMs, Slurm and Kubernetes send SIGTERM some time (30 s or more) before they kill a job; a
user at a terminal sends SIGINT (Ctrl-C). The first of either is a request to stop: the run
saves the step it is at and returns. A second SIGINT aborts at once, without saving (the last
complete checkpoint is kept, as after any kill).

* One process: handlers set a flag, which the training loop reads after every step; the loop
  then saves that step and returns, and `python -m colorize.main` exits with status 0.
* Several processes (`jax.distributed` initialised): JAX's preemption sync manager catches
  SIGTERM on any host and picks a step every host has yet to reach;
  `CheckpointManager.reached_preemption(step)` turns True at that step on every host, so all
  of them save the same step together. Our SIGTERM handler is not installed then: it would
  replace JAX's, and one host would stop alone. A first SIGINT is passed on to it as SIGTERM.
"""
import os
import signal
import threading

from absl import logging
import jax
import orbax.checkpoint as ocp


class Watch:
  """Context manager: while active, `reached(step, manager)` says whether to save and stop.

  Attributes:
    stop_requested: "SIGTERM" or "SIGINT" once this process got one, else None. (Under
      `jax.distributed`, a SIGTERM is JAX's to handle and is not seen here.)
  """

  def __init__(self):
    self.stop_requested = None
    self._previous = {}  # Signal -> the handler to put back on exit.

  def __enter__(self) -> "Watch":
    if threading.current_thread() is not threading.main_thread():
      # Python only lets the main thread install signal handlers.
      logging.warning("Training outside the main thread: SIGTERM and Ctrl-C will not save a "
                      "checkpoint")
      return self
    self._previous[signal.SIGINT] = signal.signal(signal.SIGINT, self._on_sigint)
    if not jax.distributed.is_initialized():
      self._previous[signal.SIGTERM] = signal.signal(signal.SIGTERM, self._on_sigterm)
    return self

  def __exit__(self, *exc_info) -> None:
    for signum, previous in self._previous.items():
      # A handler installed from C (or none) reads back as None: restore the default then.
      signal.signal(signum, previous or signal.SIG_DFL)
    self._previous = {}

  def _on_sigterm(self, signum, frame) -> None:
    del signum, frame  # Only sets a flag: the handler may run in the middle of anything.
    self.stop_requested = self.stop_requested or "SIGTERM"

  def _on_sigint(self, signum, frame) -> None:
    del frame
    if self.stop_requested == "SIGINT":  # The second Ctrl-C: stop now, as by default.
      os.write(2, b"\nSecond Ctrl-C: aborting without saving; run the same "
               b"command to resume from the last complete checkpoint\n")
      signal.signal(signum, signal.SIG_DFL)
      os.kill(os.getpid(), signum)
      return
    self.stop_requested = "SIGINT"
    os.write(2, b"\nCtrl-C: saving the current step, then stopping (Ctrl-C again aborts "
             b"without saving)\n")
    if jax.distributed.is_initialized():  # JAX's sync manager makes every host stop.
      os.kill(os.getpid(), signal.SIGTERM)

  def reached(self, step: int, manager: ocp.CheckpointManager) -> bool:
    """Whether to save `step` and stop. Call it after every step, on every process.

    The multi-host protocol needs every step: it picks a future step and answers True only
    there.

    Args:
      step: the step just completed.
      manager: the run's checkpoint manager (its `reached_preemption` is the multi-host sync).

    Returns:
      True once a stop request arrived (here, or on any host when distributed).
    """
    if jax.distributed.is_initialized():
      return manager.reached_preemption(step)
    return self.stop_requested is not None or manager.reached_preemption(step)
