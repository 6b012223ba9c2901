"""The launch scripts' dry runs: every command they would run, parsed back as a shell would.

Nothing here reaches a cloud or a cluster: `gcloud`, `srun`, `sbatch`, `git` and `python` are
replaced on PATH by stubs that record any call, and the tests check that none was made.
"""
import os
import pathlib
import shlex
import subprocess

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
MAIN_ARGS = ["--config=configs/cifar10.py:fast", "--config.batch_size=512",
             "--config.dataset=folder:/photos/it's mine"]  # Quotes and spaces survive.


@pytest.fixture
def stub_path(tmp_path):
  """A PATH on which the commands a launcher runs only record that they were called."""
  bin_dir = tmp_path / "bin"
  bin_dir.mkdir()
  for name in ("gcloud", "srun", "sbatch", "git", "python", "python3"):
    stub = bin_dir / name
    stub.write_text(f"#!/bin/sh\necho {name} >> {tmp_path / 'called'}\n")
    stub.chmod(0o755)
  yield f"{bin_dir}:{os.environ['PATH']}"
  assert not (tmp_path / "called").exists(), (tmp_path / "called").read_text()


def _dry_run(stub_path, script, *args) -> list[list[str]]:
  """Runs `script --dry-run *args`; returns its commands, each split into words."""
  result = subprocess.run(["bash", str(REPO / "scripts" / script), "--dry-run", *args],
                          cwd=REPO, env={**os.environ, "PATH": stub_path},
                          capture_output=True, text=True, timeout=30, check=True)
  return [shlex.split(line) for line in result.stdout.splitlines()
          if not line.startswith("#")]


def _fails(script, *args) -> str:
  result = subprocess.run(["bash", str(REPO / "scripts" / script), "--dry-run", *args],
                          cwd=REPO, capture_output=True, text=True, timeout=30)
  assert result.returncode == 2
  return result.stderr.strip().splitlines()[-1]


def test_gpu_one_host_runs_main_over_all_local_gpus(stub_path):
  args = [*MAIN_ARGS, "--workdir=runs/fast"]
  assert _dry_run(stub_path, "launch_gpu.sh", "--", *args) == [
      ["python", "-m", "colorize.main", *args]]
  assert _dry_run(stub_path, "launch_gpu.sh", "--gpus=0,1", "--", *args) == [
      ["env", "CUDA_VISIBLE_DEVICES=0,1", "python", "-m", "colorize.main", *args]]


def test_gpu_slurm_runs_one_process_per_node_with_all_its_gpus(stub_path):
  args = [*MAIN_ARGS, "--workdir=/shared/runs/fast"]
  [srun] = _dry_run(stub_path, "launch_gpu.sh", "--nodes=2", "--gpus_per_node=4",
                    "--partition=gpu", "--time=02:00:00", "--", *args)
  assert srun == ["srun", "--nodes=2", "--ntasks-per-node=1", "--gpus-per-node=4",
                  "--partition=gpu", "--time=02:00:00", "--job-name=colorize",
                  "--kill-on-bad-exit=1", "env", "JAX_LOCAL_DEVICE_IDS=0,1,2,3",
                  "python", "-m", "colorize.main", *args]


def test_gpu_sbatch_submits_the_same_srun(stub_path):
  args = [*MAIN_ARGS, "--workdir=/shared/runs/fast"]
  [sbatch] = _dry_run(stub_path, "launch_gpu.sh", "--sbatch", "--nodes=3", "--gpus_per_node=2",
                      "--job_name=fast", "--", *args)
  wrap = [w for w in sbatch if w.startswith("--wrap=")]
  assert sbatch[:-1] == ["sbatch", "--nodes=3", "--ntasks-per-node=1", "--gpus-per-node=2",
                         "--job-name=fast", "--output=fast-%j.out"]
  assert wrap == [sbatch[-1]]
  assert shlex.split(wrap[0][len("--wrap="):]) == [
      "srun", "--kill-on-bad-exit=1", "env", "JAX_LOCAL_DEVICE_IDS=0,1", "python", "-m",
      "colorize.main", *args]


def test_gpu_refuses_incomplete_slurm_options():
  assert "--gpus_per_node" in _fails("launch_gpu.sh", "--nodes=2", "--", "--workdir=x")
  assert "need --nodes" in _fails("launch_gpu.sh", "--sbatch", "--", "--workdir=x")
  assert "after --" in _fails("launch_gpu.sh")


def test_tpu_queued_resource_copy_install_and_run_on_all_workers(stub_path):
  args = [*MAIN_ARGS, "--workdir=gs://my-bucket/runs/fast",
          "--config.data_dir=gs://my-bucket/tensorflow_datasets"]
  commands = _dry_run(stub_path, "launch_tpu.sh", "--name=pod", "--zone=us-central2-b",
                      "--project=proj", "--create=queued", "--accelerator=v4-32", "--spot",
                      "--", *args)
  where = ["--zone=us-central2-b", "--project=proj"]
  archive = f"{os.environ.get('TMPDIR', '/tmp')}/colorize-pod.tar.gz"
  ssh = ["gcloud", "compute", "tpus", "tpu-vm", "ssh", "pod", *where, "--worker=all"]
  assert commands[:4] == [
      ["gcloud", "compute", "tpus", "queued-resources", "create", "pod", "--node-id=pod",
       *where, "--accelerator-type=v4-32", "--runtime-version=tpu-ubuntu2204-base", "--spot"],
      ["gcloud", "compute", "tpus", "queued-resources", "describe", "pod", *where,
       "--format=value(state.state)"],
      ["git", "-C", str(REPO), "archive", "--format=tar.gz", f"--output={archive}", "HEAD"],
      ["gcloud", "compute", "tpus", "tpu-vm", "scp", archive, "pod:colorize.tar.gz", *where,
       "--worker=all"]]
  assert [c[:len(ssh)] for c in commands[4:]] == [ssh] * 3
  extract, install, train = (c[-1] for c in commands[4:])
  assert extract == ("--command=rm -rf colorize && mkdir colorize && "
                     "tar -xzf colorize.tar.gz -C colorize")
  assert shlex.split(install.removeprefix("--command=")) == [
      "cd", "colorize", "&&", "python3", "-m", "pip", "install", "-q", "-e", ".",
      "jax[tpu]>=0.10.2,<0.12"]
  assert shlex.split(train.removeprefix("--command=")) == [
      "cd", "colorize", "&&", "python3", "-m", "colorize.main", *args]


def test_tpu_existing_vm_or_created_one_and_git_clone(stub_path):
  args = ["--config=configs/cifar10.py", "--workdir", "gs://b/run"]
  existing = _dry_run(stub_path, "launch_tpu.sh", "--name=t", "--zone=z",
                      "--git_url=https://example.com/colorize.git", "--git_ref=v1", "--", *args)
  assert [c[3:5] for c in existing] == [["tpu-vm", "ssh"]] * 3  # No create, no copy.
  assert existing[0][-1] == ("--command=rm -rf colorize && git clone --depth=1 --branch=v1 "
                             "https://example.com/colorize.git colorize")
  created = _dry_run(stub_path, "launch_tpu.sh", "--name=t", "--zone=z", "--create=vm",
                     "--accelerator=v5litepod-16", "--version=v2-alpha-tpuv5-lite", "--", *args)
  assert created[0] == ["gcloud", "compute", "tpus", "tpu-vm", "create", "t", "--zone=z",
                        "--accelerator-type=v5litepod-16", "--version=v2-alpha-tpuv5-lite"]


def test_tpu_refuses_a_workdir_the_workers_do_not_share():
  assert "gs://" in _fails("launch_tpu.sh", "--name=t", "--zone=z", "--",
                           "--config=c", "--workdir=runs/local")
  assert "--name and --zone" in _fails("launch_tpu.sh", "--zone=z", "--", "--workdir=gs://b")
