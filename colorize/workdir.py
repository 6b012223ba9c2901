"""The workdir: checked writable at start-up, written atomically, and guarded by its config.

A workdir holds one run. Resuming it with a config that changes the model or the data would
continue a different experiment under the old one's name (or fail deep inside a restore), so
`check_resumable` compares the new config with the saved `config.json` on `RUN_DEFINING_KEYS`
and refuses with a one-line diff unless `config.allow_config_change` is set. Everything else
(length, intervals, optimizer, loss weights, data_dir, model.conv_impl) may change, e.g. to
extend a run with a larger `num_train_steps`.
"""
import json
from typing import Any

from absl import logging
from etils import epath
import jax
import ml_collections

from colorize import validation
from colorize.errors import UserError

# Keys that define what is trained and on what data; every `model.*` key counts too, except
# `model.conv_impl` (two implementations of the same convolutions, with the same parameters).
RUN_DEFINING_KEYS = ("dataset", "train_split", "image_size", "color_space", "batch_size",
                     "seed", "loss", "n_critic", "ema_decay")
_CHANGEABLE_MODEL_KEYS = ("model.conv_impl",)
CONFIG_FILE = "config.json"


def check_writable(workdir: epath.Path) -> None:
  """Creates `workdir` if needed and checks that a file can be written and removed there.

  Args:
    workdir: the run's directory.

  Raises:
    UserError: naming the workdir and the reason (read-only, full, not a directory, ...).
  """
  probe = workdir / f".write_probe.{jax.process_index()}"
  try:
    workdir.mkdir(parents=True, exist_ok=True)
    probe.write_text("colorize checks that the workdir is writable\n")
    probe.unlink()
  except OSError as e:
    raise UserError(f"workdir {workdir} is not writable ({e.strerror or e}); "
                    "free some space, fix its permissions or use another --workdir") from None


def write_text_atomically(path: epath.Path, text: str) -> None:
  """Writes `text` to `path` so that a reader (or a killed writer) never sees half a file.

  Args:
    path: the file to (over)write.
    text: its new content.
  """
  tmp = path.parent / f".{path.name}.tmp"
  tmp.write_text(text)
  tmp.replace(path)


def _is_run_defining(key: str) -> bool:
  return key in RUN_DEFINING_KEYS or (key.startswith("model.")
                                      and key not in _CHANGEABLE_MODEL_KEYS)


def run_defining_changes(saved: dict[str, Any], new: dict[str, Any]) -> list[str]:
  """The run-defining keys whose values differ, as "key=old -> new" (JSON values).

  Args:
    saved: the config a workdir was trained with (as read from config.json).
    new: the config of this run, as JSON would store it (tuples as lists).

  Returns:
    One entry per changed key, in a stable order; empty when the run may resume.
  """
  saved_flat, new_flat = validation.flatten(saved), validation.flatten(new)
  missing = "(absent)"
  return [f"{key}={saved_flat.get(key, missing)!r} -> {new_flat.get(key, missing)!r}"
          for key in sorted(set(saved_flat) | set(new_flat))
          if _is_run_defining(key) and saved_flat.get(key, missing) != new_flat.get(key, missing)]


def check_resumable(workdir: epath.Path, config: ml_collections.ConfigDict) -> None:
  """Refuses to resume `workdir` with a config that changes its model or data.

  Call it only when the workdir holds checkpoints (otherwise there is nothing to resume).

  Args:
    workdir: the run's directory, with the config.json of the run that wrote its checkpoints.
    config: the new config.

  Raises:
    UserError: a one-line diff of the run-defining keys, unless config.allow_config_change.
  """
  path = workdir / CONFIG_FILE
  try:
    saved = json.loads(path.read_text())
  except (OSError, ValueError) as e:
    problem = f"cannot read {path} ({e})"
  else:
    changes = run_defining_changes(saved, json.loads(config.to_json()))
    if not changes:
      return
    problem = (f"workdir {workdir} was trained with a different model or data: "
               f"{', '.join(changes)}")
  if config.allow_config_change:
    logging.warning("%s; continuing anyway (config.allow_config_change=True)", problem)
    return
  raise UserError(f"{problem}; use a new --workdir, or pass --config.allow_config_change=True "
                  "to continue this run with the new values")


def write_config(workdir: epath.Path, config: ml_collections.ConfigDict) -> None:
  """Saves the resolved config as `workdir/config.json` (atomically: it guards resumes).

  Args:
    workdir: the run's directory.
    config: the config this run trains with.
  """
  write_text_atomically(workdir / CONFIG_FILE, config.to_json(indent=2))
