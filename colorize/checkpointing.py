"""Checkpoints that survive kills, damaged files and full disks (an Orbax CheckpointManager).

* Orbax writes a save to `<step>.orbax-checkpoint-tmp` and renames it to `<step>` once complete
  (atomic on local and NFS filesystems; on GCS a commit file plays that part), so a kill in the
  middle of a save leaves only a temporary directory: it is never restored, and
  `create_manager` removes it.
* `restore_latest` falls back to the previous checkpoint when the newest cannot be read,
  moving the unreadable ones to `<workdir>/damaged_checkpoints/` (kept for a look, and out of
  the way: Orbax never saves a step <= its newest).
* A save that fails for lack of space or permission becomes a one-line `UserError` naming the
  directory; by the same rename, the checkpoints already there are intact.
"""
import os
import re
import shutil

from absl import logging
from etils import epath
import jax
import orbax.checkpoint as ocp

from colorize import errors
from colorize.errors import UserError, first_line

TMP_SUFFIX = ".orbax-checkpoint-tmp"
# TensorStore raises ValueError, not OSError, for a failed write; these say it was the disk.
_OS_ERROR_CODE = re.compile(r"os_error_code='(\d+)'")
_STORAGE_ERROR = re.compile(r"RESOURCE_EXHAUSTED|PERMISSION_DENIED|No space left|"
                            r"Read-only file system|Permission denied|Disk quota exceeded")


def create_manager(directory: epath.Path, keep: int) -> ocp.CheckpointManager:
  """The run's checkpoint manager; removes what a save cut short by a kill left behind.

  Args:
    directory: where the step directories live (created if missing).
    keep: how many checkpoints to keep (the newest; the last step is always saved).

  Returns:
    The manager (async saves).
  """
  if directory.exists():
    for path in directory.glob(f"*{TMP_SUFFIX}*"):
      logging.warning("Removing %s: a save that did not complete (the process was killed "
                      "or the disk filled up); it was never a checkpoint", path)
  return ocp.CheckpointManager(
      directory, options=ocp.CheckpointManagerOptions(
          max_to_keep=keep, create=True, cleanup_tmp_directories=True))


def restore_latest(manager: ocp.CheckpointManager, target):
  """Restores the newest checkpoint that can be read, or returns None if there is none.

  Args:
    manager: the run's checkpoint manager.
    target: the abstract state (shapes, dtypes, shardings) to restore into.

  Returns:
    The restored state, or None when the directory holds no checkpoint at all.

  Raises:
    UserError: there are checkpoints, but none can be restored. The run does not start over
      from step 0 on its own: that would silently lose the run.
  """
  failures = []
  errors.drop_failed_restore_reports(str(manager.directory))  # Leftovers come later.
  for step in sorted(manager.all_steps(), reverse=True):
    try:
      state = manager.restore(step, args=ocp.args.StandardRestore(target))
    # Missing or truncated files surface as ValueError, JSONDecodeError, KeyError or a bare
    # Exception from TensorStore, depending on which file is hit.
    except Exception as e:  # pylint: disable=broad-exception-caught
      while e.__cause__ is not None:  # TensorStore's own error says which file and why.
        e = e.__cause__
      logging.warning("Checkpoint step %d in %s cannot be restored (%s: %s); trying the one "
                      "before it", step, manager.directory, type(e).__name__, first_line(e))
      failures.append((step, f"{type(e).__name__}: {first_line(e, 120)}"))
      continue
    if failures:
      _set_aside(manager, [s for s, _ in failures])
      logging.warning("Resumed from step %d instead of step %d; the unreadable checkpoints "
                      "are in %s", step, failures[0][0], _damaged_dir(manager))
    return state
  if failures:
    listed = "; ".join(f"step {s}: {reason}" for s, reason in failures)
    raise UserError(f"no checkpoint in {manager.directory} can be restored ({listed}); "
                    "move the directory away to start from step 0, or use a new --workdir")
  return None


def _damaged_dir(manager: ocp.CheckpointManager) -> epath.Path:
  return epath.Path(manager.directory).parent / "damaged_checkpoints"


def _set_aside(manager: ocp.CheckpointManager, steps: list[int]) -> None:
  """Moves unreadable step directories out of the manager's directory (process 0 only)."""
  if jax.process_index() == 0:
    damaged = _damaged_dir(manager)
    damaged.mkdir(parents=True, exist_ok=True)
    for step in steps:
      destination = damaged / str(step)
      suffix = 1
      while destination.exists():  # The same step may have been damaged before.
        destination = damaged / f"{step}-{suffix}"
        suffix += 1
      (epath.Path(manager.directory) / str(step)).rename(destination)
  ocp.multihost.sync_global_processes("colorize:set_aside_damaged_checkpoints")
  manager.reload()


def _storage_problem(error: BaseException) -> str | None:
  """For a full, read-only or forbidden destination, the OS's words for it; else None.

  Looks through however many layers Orbax wrapped the error in.
  """
  while error is not None:
    if isinstance(error, OSError):
      return error.strerror or str(error)
    code = _OS_ERROR_CODE.search(str(error))
    if code:  # TensorStore: "... No space left on device [os_error_code='28']".
      return os.strerror(int(code.group(1)))
    if _STORAGE_ERROR.search(str(error)):
      return first_line(error)
    error = error.__cause__ or error.__context__
  return None


def _raise_if_storage_error(manager: ocp.CheckpointManager, error: Exception) -> None:
  """Raises a one-line UserError when `error` says the disk is full, read-only or forbidden."""
  problem = _storage_problem(error)
  if problem:
    complete = ocp.path.step.checkpoint_steps(manager.directory)
    kept = (f"the complete checkpoints are intact (newest: step {max(complete)})" if complete
            else "no checkpoint was completed")
    raise UserError(f"cannot write a checkpoint in {manager.directory} ({problem}); is the "
                    f"disk full or read-only? {kept}") from error


def save(manager: ocp.CheckpointManager, step: int, state) -> None:
  """Starts an async save of `state` as `step` (and reports a failed earlier save).

  Args:
    manager: the run's checkpoint manager.
    step: the step number the checkpoint is saved as.
    state: the training state.

  Raises:
    UserError: this save or the previous async one could not be written (disk full,
      read-only, no permission).
  """
  try:
    manager.save(step, args=ocp.args.StandardSave(state))
  except Exception as e:  # pylint: disable=broad-exception-caught
    _raise_if_storage_error(manager, e)
    raise


def wait_until_finished(manager: ocp.CheckpointManager) -> None:
  """Waits for the async save in flight, if any.

  Args:
    manager: the run's checkpoint manager.

  Raises:
    UserError: that save could not be written (disk full, read-only, no permission).
  """
  try:
    manager.wait_until_finished()
  except Exception as e:  # pylint: disable=broad-exception-caught
    _raise_if_storage_error(manager, e)
    raise


def check_free_space(directory: epath.Path, target) -> None:
  """Refuses to start when the disk cannot hold even one checkpoint of `target`.

  Args:
    directory: the checkpoint directory (a local path; others are not checked).
    target: the abstract state: its arrays' sizes are a checkpoint's size, give or take
      compression and metadata.

  Raises:
    UserError: less free space than one checkpoint needs.
  """
  try:
    free = shutil.disk_usage(directory).free
  except OSError:  # Not a local path (gs://...): nothing to measure.
    return
  needed = sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(target))
  if free < needed:
    raise UserError(f"{directory} has {free / 1e6:.1f} MB free, and one checkpoint needs about "
                    f"{needed / 1e6:.1f} MB: free some space or use another --workdir")
