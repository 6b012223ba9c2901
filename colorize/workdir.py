"""The workdir: checked writable at start-up, held by one run, and guarded by its config.

A workdir holds one run, and one process at a time trains it: `lock` holds `run.lock` (an
advisory `flock`, which the kernel drops when the process ends, however it ends) and writes
the holder's host and process id into it for the message a second run gets. Object stores
(gs://) have no such locks: there nothing stops a second run, and none is taken.

Resuming a workdir with a config that changes the model or the data would continue a different
experiment under the old one's name (or fail deep inside a restore), so `check_resumable`
compares the new config with the saved `config.json` on `RUN_DEFINING_KEYS` and refuses with a
one-line diff unless `config.allow_config_change` is set. Everything else (length, intervals,
optimizer, loss weights, data_dir, model.conv_impl) may change, e.g. to extend a run with a
larger `num_train_steps`.
"""
import contextlib
import fcntl
import json
import os
import socket
import stat
import zipfile
from typing import Any, Iterator

from absl import logging
from etils import epath
import jax
import ml_collections
import numpy as np

from colorize import atomic
from colorize import image_files
from colorize import validation
from colorize.errors import UserError

# Keys that define what is trained and on what data; every `model.*` key counts too, except
# `model.conv_impl` (two implementations of the same convolutions, with the same parameters).
RUN_DEFINING_KEYS = ("dataset", "train_split", "image_size", "color_space", "batch_size",
                     "seed", "loss", "n_critic", "ema_decay")
_CHANGEABLE_MODEL_KEYS = ("model.conv_impl",)
CONFIG_FILE = "config.json"
LOCK_FILE = "run.lock"


def check_writable(workdir: epath.Path) -> None:
  """Creates `workdir` if needed and checks that a file can be written and removed there.

  Args:
    workdir: the run's directory.

  Raises:
    UserError: naming the workdir and the reason (read-only, full, not a directory, ...).
  """
  if os.path.islink(workdir) and not os.path.exists(workdir):
    raise UserError(f"workdir {workdir} is a symbolic link to {os.readlink(workdir)}, which "
                    "does not exist; create it, fix the link or use another --workdir")
  probe = workdir / f".write_probe.{jax.process_index()}"
  try:
    workdir.mkdir(parents=True, exist_ok=True)
    probe.write_text("colorize checks that the workdir is writable\n")
    probe.unlink()
  except OSError as e:
    raise UserError(f"workdir {workdir} is not writable ({e.strerror or e}); "
                    "free some space, fix its permissions or use another --workdir") from None


@contextlib.contextmanager
def lock(workdir: epath.Path) -> Iterator[None]:
  """Holds `workdir` for this run (module docstring); process 0 of a job takes it.

  Args:
    workdir: the run's directory (it exists: see `check_writable`).

  Yields:
    Nothing; the hold ends with the block, or with the process.

  Raises:
    UserError: another live process holds the workdir (the message names its host and
      process id), or the lock file cannot be opened.
  """
  if "://" in os.fspath(workdir) or jax.process_index() != 0:
    yield
    return
  path = os.path.join(workdir, LOCK_FILE)
  try:
    # O_NOFOLLOW: a link planted as run.lock does not make us create or write its target.
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o666)
  except OSError as e:
    raise UserError(f"cannot open {path} ({e.strerror or e}); remove it if it is not a "
                    "regular file, or use another --workdir") from None
  try:
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      holder = _lock_text(fd)
      raise UserError(f"workdir {workdir} is in use by another run ({holder}); wait for it "
                      "to end or stop it, or use another --workdir") from None
    # The file stays when the run ends: removing it would let two runs lock two files.
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"host {socket.gethostname()}, process {os.getpid()}\n".encode(), 0)
    yield
  finally:
    os.close(fd)


def _lock_text(fd: int) -> str:
  """What the holding run wrote into its lock file, on one line (the file may be planted)."""
  return " ".join(os.pread(fd, 200, 0).decode(errors="replace").split()) or "starting up"


def holder(workdir: str) -> str | None:
  """Who is training `workdir` now ("host h, process p"), or None when no run holds it.

  Args:
    workdir: a training workdir on a local filesystem (an object store has no lock: None).

  Returns:
    The text the holding run wrote into its lock file, or None.
  """
  try:
    # O_NONBLOCK: a FIFO planted as run.lock does not block the open.
    fd = os.open(os.path.join(workdir, LOCK_FILE), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
  except OSError:  # No lock file (never trained here, or gs://), or a planted link.
    return None
  try:
    if not stat.S_ISREG(os.fstat(fd).st_mode):
      return None  # Not a trainer's lock file.
    fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # Released by the close below.
    return None
  except BlockingIOError:
    return _lock_text(fd)
  finally:
    os.close(fd)


def run_defining_changes(saved: dict[str, Any], new: dict[str, Any]) -> list[str]:
  """The run-defining keys whose values differ, as "key=old -> new" (JSON values).

  Args:
    saved: the config a workdir was trained with (as read from config.json).
    new: the config of this run, as JSON would store it (tuples as lists).

  Returns:
    One entry per changed key, in a stable order; empty when the run may resume.
  """
  saved = {**validation.ADDED_KEYS, **validation.flatten(saved)}
  new = validation.flatten(new)
  missing = "(absent)"
  run_defining = [key for key in sorted(set(saved) | set(new)) if key in RUN_DEFINING_KEYS
                  or (key.startswith("model.") and key not in _CHANGEABLE_MODEL_KEYS)]
  return [f"{key}={saved.get(key, missing)!r} -> {new.get(key, missing)!r}"
          for key in run_defining if saved.get(key, missing) != new.get(key, missing)]


def check_resumable(workdir: epath.Path, config: ml_collections.ConfigDict) -> list[str]:
  """Refuses to resume `workdir` with a config that changes its model or data.

  Call it only when the workdir holds checkpoints (otherwise there is nothing to resume).

  Args:
    workdir: the run's directory, with the config.json of the run that wrote its checkpoints.
    config: the new config.

  Returns:
    The changes that config.allow_config_change lets through (`run_defining_changes`, or
    the reason config.json cannot be read); empty when nothing changed.

  Raises:
    UserError: a one-line diff of the run-defining keys, unless config.allow_config_change.
  """
  path = workdir / CONFIG_FILE
  try:
    saved = json.loads(path.read_text())
    if not isinstance(saved, dict):
      raise ValueError(f"a JSON {type(saved).__name__}, not an object")
  except (OSError, ValueError) as e:
    changes = [f"cannot read {path} ({e})"]
    problem = changes[0]
  else:
    changes = run_defining_changes(saved, json.loads(config.to_json()))
    if not changes:
      return []
    problem = (f"workdir {workdir} was trained with a different model or data: "
               f"{', '.join(changes)}")
  if config.allow_config_change:
    logging.warning("%s; continuing anyway (config.allow_config_change=True)", problem)
    return changes
  raise UserError(f"{problem}; use a new --workdir, or pass --config.allow_config_change=True "
                  "to continue this run with the new values")


def write_config(workdir: epath.Path, config: ml_collections.ConfigDict) -> None:
  """Saves the resolved config as `workdir/config.json` (atomically: it guards resumes).

  Args:
    workdir: the run's directory.
    config: the config this run trains with.
  """
  atomic.write_bytes(workdir / CONFIG_FILE, config.to_json(indent=2).encode(), inside=workdir)


def read_arrays(path: str, max_bytes: int) -> dict[str, np.ndarray]:
  """The arrays of an .npz file that a workdir holds, read as untrusted data.

  A workdir may come from someone else: the file must be a regular file (a FIFO would block
  the read forever), may not unpack to more than `max_bytes` (the zip directory's sizes are
  checked before anything is decompressed) and may hold numbers only: no pickled objects,
  no strings (which would fail deep in the caller's arithmetic).

  Args:
    path: the .npz file.
    max_bytes: the most its arrays may take unpacked.

  Returns:
    {name: array}.

  Raises:
    ValueError: the file is missing, not a regular file, too large, not an .npz archive or
      holds an array that is not numbers; the message says which, for the caller's one-line
      error.
  """
  if not image_files.is_regular_file(path):
    raise ValueError("missing, or not a regular file")
  try:
    with zipfile.ZipFile(path) as archive:
      size = sum(member.file_size for member in archive.infolist())
    if size > max_bytes:
      raise ValueError(f"it unpacks to {size} bytes, more than the {max_bytes} expected")
    with np.load(path, allow_pickle=False) as archive:
      arrays = {name: archive[name] for name in archive.files}
  except (OSError, EOFError, zipfile.BadZipFile) as e:
    raise ValueError(f"{type(e).__name__}: {e}") from None
  for name, array in arrays.items():
    if array.dtype.kind not in "biuf":
      raise ValueError(f"{name} holds {array.dtype}, not numbers")
  return arrays
