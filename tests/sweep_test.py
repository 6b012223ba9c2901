"""scripts/sweep.py: a sweep file's points run here (resumably), printed, or handed to launchers.

The local run is configs/sweeps/test.py (two points of the tiny test config, a few seconds
each); the other modes only print, so they take the 9-point CIFAR-10 sweep as it is.
"""
import pathlib
import shlex
import shutil
import subprocess
import sys

from configs.sweeps import grid

REPO = pathlib.Path(__file__).resolve().parents[1]
_TIMEOUT = 240  # Seconds; two tiny runs, on a shared machine.


def _sweep(*args: str) -> subprocess.CompletedProcess:
  return subprocess.run([sys.executable, "scripts/sweep.py", *args], cwd=REPO,
                        capture_output=True, text=True, timeout=_TIMEOUT)


def _sweep_lines(stderr: str) -> list[str]:
  return [line for line in stderr.splitlines() if line.startswith("sweep: ")]


def test_grid_varies_the_last_axis_fastest():
  assert grid({"a": [1, 2], "model.norm": ["x", "y"]}) == [
      {"a": 1, "model.norm": "x"}, {"a": 1, "model.norm": "y"},
      {"a": 2, "model.norm": "x"}, {"a": 2, "model.norm": "y"}]


def test_local_sweep_runs_each_point_skips_finished_ones_and_compares(tmp_path):
  root = tmp_path / "sweep"
  first = _sweep("--sweep=configs/sweeps/test.py", f"--workdir_root={root}")
  assert first.returncode == 0, first.stderr[-3000:]
  assert sorted(p.name for p in root.iterdir()) == ["loss=l1", "loss=wgan_gp"]
  assert all((root / name / "checkpoints" / "4").is_dir() for name in ("loss=l1", "loss=wgan_gp"))
  # As if the sweep was killed during the second point, after its checkpoint of step 2.
  shutil.rmtree(root / "loss=l1" / "checkpoints" / "4")
  second = _sweep("--sweep=configs/sweeps/test.py", f"--workdir_root={root}")
  assert second.returncode == 0, second.stderr[-3000:]
  lines = _sweep_lines(second.stderr)
  assert lines[0] == "sweep: [1/2] loss=wgan_gp: finished, skipped"
  assert lines[1].startswith("sweep: [2/2] loss=l1: python -m colorize.main "
                             f"--config=configs/test.py --workdir={root}/loss=l1 "
                             "--config.loss=l1")
  assert "Resuming from checkpoint at step 2" in second.stderr
  assert lines[2] == "sweep: 1 ran, 1 skipped (finished), 0 failed"

  # The command it ends with gives one table of both runs.
  compare = shlex.split(lines[3].removeprefix("sweep: one table of every run: "))
  assert compare == ["python", "-m", "colorize.evaluate", f"--workdir={root}/loss=wgan_gp",
                     "--compare", f"{root}/loss=l1"]
  table = subprocess.run([sys.executable, *compare[1:], "--num_images=16"], cwd=REPO,
                         capture_output=True, text=True, timeout=_TIMEOUT, check=True).stdout
  rows = [line for line in table.splitlines() if line.startswith(f"| {root}")]
  assert [row.split(" | ")[1] for row in rows] == ["wgan_gp", "l1"]


def test_print_emits_one_command_per_point():
  result = _sweep("--sweep=configs/sweeps/lambda_gp.py", "--workdir_root=runs/sweep", "--print")
  assert result.returncode == 0, result.stderr[-3000:]
  commands = [shlex.split(line) for line in result.stdout.splitlines()]
  assert len(commands) == 9
  assert commands[0] == [
      "python", "-m", "colorize.main", "--config=configs/cifar10.py:subset",
      "--workdir=runs/sweep/loss=wgan_gp,lambda_gp=1,l1_weight=10", "--config.loss=wgan_gp",
      "--config.lambda_gp=1.0", "--config.l1_weight=10.0"]
  assert [c[4] for c in commands[6:]] == ["--workdir=runs/sweep/loss=vanilla,l1_weight=10",
                                          "--workdir=runs/sweep/loss=vanilla,l1_weight=100",
                                          "--workdir=runs/sweep/loss=l1"]


def test_launchers_get_each_point_with_their_own_arguments():
  slurm = _sweep("--sweep=configs/sweeps/lambda_gp.py", "--workdir_root=/shared/sweep",
                 "--launcher=slurm", "--", "--dry-run", "--sbatch", "--nodes=2",
                 "--gpus_per_node=8")
  assert slurm.returncode == 0, slurm.stderr[-3000:]
  submitted = [shlex.split(line) for line in slurm.stdout.splitlines()]
  assert len(submitted) == 9 and all(c[0] == "sbatch" and "--nodes=2" in c for c in submitted)
  assert shlex.split(submitted[-1][-1].removeprefix("--wrap="))[-4:] == [
      "colorize.main", "--config=configs/cifar10.py:subset", "--workdir=/shared/sweep/loss=l1",
      "--config.loss=l1"]

  tpu = _sweep("--sweep=configs/sweeps/test.py", "--workdir_root=gs://bucket/sweep",
               "--launcher=tpu", "--print", "--", "--name=pod", "--zone=us-central2-b")
  assert tpu.returncode == 0, tpu.stderr[-3000:]
  assert [shlex.split(line) for line in tpu.stdout.splitlines()] == [
      ["scripts/launch_tpu.sh", "--name=pod", "--zone=us-central2-b", "--",
       "--config=configs/test.py", f"--workdir=gs://bucket/sweep/loss={loss}",
       f"--config.loss={loss}"] for loss in ("wgan_gp", "l1")]


def test_a_typo_in_a_sweep_file_stops_it_before_anything_runs(tmp_path):
  sweep_file = tmp_path / "typo.py"
  sweep_file.write_text("from configs.sweeps import Sweep\n"
                        "def get_sweep():\n"
                        "  return Sweep('configs/test.py', [{'loss': 'l1'}, {'lamda_gp': 1.0}])\n")
  result = _sweep(f"--sweep={sweep_file}", f"--workdir_root={tmp_path / 'sweep'}")
  assert result.returncode == 2
  assert result.stderr.strip().splitlines()[-1] == (
      "error: sweep point lamda_gp=1: config.lamda_gp is not a config key (did you mean "
      "lambda_gp?); the keys are those of configs/cifar10.py")
  assert not (tmp_path / "sweep").exists()
