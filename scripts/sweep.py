r"""Runs a hyperparameter sweep (configs/sweeps/*.py): here point by point, or by a launcher.

    python scripts/sweep.py --sweep=configs/sweeps/lambda_gp.py --workdir_root=runs/sweep
    python scripts/sweep.py --sweep=configs/sweeps/lambda_gp.py --workdir_root=runs/sweep --print
    python scripts/sweep.py --sweep=configs/sweeps/lambda_gp.py --workdir_root=/shared/sweep \
        --launcher=slurm -- --sbatch --nodes=2 --gpus_per_node=8
    python scripts/sweep.py --sweep=configs/sweeps/lambda_gp.py --workdir_root=gs://b/sweep \
        --launcher=tpu -- --name=my-tpu --zone=us-central2-b

Each point is `python -m colorize.main --config=<base> --workdir=<root>/<name>
--config.<key>=<value> ...`, its name the overrides (`loss=vanilla,l1_weight=10`). Every
point's flags are parsed as colorize.main parses them before anything runs, so a typo in a
sweep file stops it at once, with the point's name.

* Here (`--launcher=local`, the default), one point after another. A point is finished when
  its workdir holds the checkpoint of its last step (the step the trainer stops at:
  num_train_steps, or num_epochs of the training split); finished points are skipped and an
  interrupted one resumes from its newest checkpoint, so the same command continues a sweep.
  A point that fails (e.g. a NaN stop) is reported and the sweep goes on; the exit status is
  then 1.
* `--print` writes one command per point to stdout (for a cluster's own launcher).
* `--launcher=tpu|slurm` hands each point to scripts/launch_tpu.sh or scripts/launch_gpu.sh,
  one after another, with the arguments after `--` (add `--dry-run` there to see the commands).
  Every point is handed over: a finished one restores its last checkpoint and ends at once.

At the end it prints the `python -m colorize.evaluate --compare` command for the sweep's table.
"""
import importlib.util
import os
import re
import shlex
import subprocess
import sys
from typing import Any

from absl import app
from absl import flags
from etils import epath
import ml_collections
from ml_collections import config_flags

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from colorize import train  # pylint: disable=g-import-not-at-top
from colorize import validation
from colorize.errors import UserError
from configs.sweeps import Sweep

_SWEEP = flags.DEFINE_string("sweep", None, "Sweep file, e.g. configs/sweeps/lambda_gp.py.")
_ROOT = flags.DEFINE_string("workdir_root", None, "Each point's workdir is <root>/<name>.")
_PRINT = flags.DEFINE_bool("print", False, "Print one command per point; run nothing.")
_LAUNCHER = flags.DEFINE_enum("launcher", "local", ["local", "tpu", "slurm"],
                              "Run here, or hand each point to launch_tpu.sh / launch_gpu.sh "
                              "(their arguments after --).")
flags.mark_flags_as_required(["sweep", "workdir_root"])
LAUNCH_SCRIPTS = {"tpu": "scripts/launch_tpu.sh", "slurm": "scripts/launch_gpu.sh"}


def load_sweep(path: str) -> Sweep:
  """Imports the sweep file at `path` and returns its `get_sweep()`.

  Args:
    path: a Python file defining `get_sweep() -> configs.sweeps.Sweep`.

  Returns:
    The sweep.

  Raises:
    UserError: there is no such file.
  """
  spec = importlib.util.spec_from_file_location("sweep_file", path)
  if spec is None or not os.path.isfile(path):
    raise UserError(f"--sweep={path}: no such file")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_sweep()


def _value_name(value: Any) -> str:
  if isinstance(value, float):
    return f"{value:g}"  # 10.0 -> "10", 2e-4 -> "0.0002".
  if isinstance(value, (tuple, list)):
    return "-".join(_value_name(v) for v in value)
  return str(value)


def run_name(point: dict[str, Any]) -> str:
  """The point's overrides as `key=value,key=value`, safe as a directory name.

  Args:
    point: config key -> value.

  Returns:
    The name ("base" for a point without overrides).
  """
  name = ",".join(f"{key}={_value_name(value)}" for key, value in point.items())
  return re.sub(r"[^\w.,=+-]", "_", name) or "base"


def main_flags(sweep: Sweep, point: dict[str, Any], workdir: str) -> list[str]:
  """colorize.main's flags for one point: the base config, the workdir, the overrides.

  Args:
    sweep: the sweep (its base config and the overrides of every point).
    point: this point's overrides.
    workdir: this point's workdir.

  Returns:
    `--config=...`, `--workdir=...`, then one `--config.<key>=<value>` per override.
  """
  overrides = {**sweep.overrides, **point}
  return [f"--config={sweep.config}", f"--workdir={workdir}",
          *(f"--config.{key}={value}" for key, value in overrides.items())]


def resolve_config(name: str, args: list[str]) -> ml_collections.ConfigDict:
  """The config colorize.main would build from `args` (its flags for the point `name`).

  Args:
    name: the point's run name, for error messages.
    args: the point's colorize.main flags (`main_flags`).

  Returns:
    The point's config, validated as far as it can be without knowing the devices.

  Raises:
    UserError: naming the point: an unknown key, a value of the wrong type, or one that
      colorize.validation refuses whatever the devices.
  """
  argv = ["sweep", *(a for a in args if a.startswith("--config"))]
  values = flags.FlagValues()
  # (The config flag finds its --config.<key> overrides in sys_argv, sys.argv by default.)
  config_flags.DEFINE_config_file("config", None, "", flag_values=values, lock_config=True,
                                  sys_argv=argv)
  try:
    validation.check_override_keys(argv)
    values(argv)
    # One device: the checks that depend on the device count are left to the run itself.
    validation.validate_config(values.config, 1)
  except (flags.Error, UserError) as e:
    raise UserError(f"sweep point {name}: {e}") from None
  return values.config


def is_finished(workdir: str, last_step: int) -> bool:
  """Whether `workdir` holds the checkpoint of `last_step`, the run's last step.

  Orbax renames a checkpoint to its step number only once it is complete, so the directory
  existing is enough.

  Args:
    workdir: the point's workdir (local or any path epath reads).
    last_step: the step its run ends at (`train.num_train_steps`).

  Returns:
    True if the point needs no more training.
  """
  return (epath.Path(workdir) / "checkpoints" / str(last_step)).is_dir()


def launch_command(args: list[str], launcher_args: list[str]) -> list[str]:
  """The command that runs one point: colorize.main here, or a launch script.

  Args:
    args: the point's colorize.main flags.
    launcher_args: the launch script's own arguments (those after `--`).

  Returns:
    The command's words, as printed; `_run` runs them.
  """
  if _LAUNCHER.value == "local":
    return ["python", "-m", "colorize.main", *args]
  return [LAUNCH_SCRIPTS[_LAUNCHER.value], *launcher_args, "--", *args]


def _run(command: list[str]) -> int:
  if command[0] == "python":  # The interpreter running this script, with its packages.
    return subprocess.call([sys.executable, *command[1:]])
  return subprocess.call(["bash", os.path.join(REPO, command[0]), *command[1:]])


def _log(message: str) -> None:
  print(f"sweep: {message}", file=sys.stderr, flush=True)


def main(argv: list[str]) -> int:
  """Loads and checks the sweep, then prints, runs or hands over its points.

  Args:
    argv: the program name, then the arguments after `--` (for the launcher).

  Returns:
    0 when every point ran or was skipped, 1 when some failed, 2 when none could start.
  """
  launcher_args = argv[1:]
  if launcher_args and _LAUNCHER.value == "local":
    raise app.UsageError(f"arguments after -- are for --launcher=tpu|slurm: {launcher_args}")
  try:
    sweep = load_sweep(_SWEEP.value)
    names = [run_name(point) for point in sweep.points]
    if len(set(names)) < len(names):
      raise UserError(f"{_SWEEP.value}: two points have the same name: {names}")
    workdirs = [os.path.join(_ROOT.value, name) for name in names]
    points = [main_flags(sweep, p, w) for p, w in zip(sweep.points, workdirs)]
    configs = [resolve_config(n, args) for n, args in zip(names, points)]
    # Only here: a launcher's machines may see data and workdirs that this one does not.
    last_steps = ([train.num_train_steps(c) for c in configs]
                  if _LAUNCHER.value == "local" and not _PRINT.value else None)
  except UserError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  if _PRINT.value:
    for args in points:
      print(shlex.join(launch_command(args, launcher_args)))
    return 0

  failed, skipped = [], 0
  for i, (name, workdir, args) in enumerate(zip(names, workdirs, points)):
    if last_steps and is_finished(workdir, last_steps[i]):
      _log(f"[{i + 1}/{len(names)}] {name}: finished, skipped")
      skipped += 1
      continue
    command = launch_command(args, launcher_args)
    _log(f"[{i + 1}/{len(names)}] {name}: {shlex.join(command)}")
    if _run(command) != 0:
      _log(f"[{i + 1}/{len(names)}] {name}: FAILED (its output is above)")
      failed.append(name)
  _log(f"{len(names) - skipped - len(failed)} ran, {skipped} skipped (finished), "
       f"{len(failed)} failed{': ' + ', '.join(failed) if failed else ''}")
  _log("one table of every run: " + shlex.join(
      ["python", "-m", "colorize.evaluate", f"--workdir={workdirs[0]}",
       *(["--compare", *workdirs[1:]] if len(workdirs) > 1 else [])]))
  return 1 if failed else 0


if __name__ == "__main__":
  app.run(main)
