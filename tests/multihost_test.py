"""Multi-process training with JAX's own distributed runtime, on this machine's CPU.

Two `python -m colorize.main` processes (one CPU device each, jax.distributed on 127.0.0.1,
gloo collectives) train the tiny test config; one process with two CPU devices trains the
same global batch. The final states agree within float tolerance, the checkpoint the two
processes wrote collectively resumes in this (one-device) process, and a job whose SLURM
environment is faked is detected and initialised by `jax.distributed.initialize()` itself.
"""
import json
import shutil

import jax
import numpy as np
import orbax.checkpoint as ocp
import process_helpers as ph
import pytest

from colorize import distributed
from colorize import train
from colorize import train_step
from configs import test as test_config

STEPS = 4
_FLAGS = ["--config=configs/test.py", f"--config.num_train_steps={STEPS}",
          "--config.eval_every_steps=1000"]
# Measured: the largest difference between the two runs' final parameters and optimizer
# moments was 0 (bit-identical) on this machine; the bound leaves room for other CPUs and XLA
# versions, whose collectives may sum the two halves of a batch in another order.
_ATOL = 1e-5


def _restore(workdir, step: int) -> train_step.TrainState:
  """The checkpoint of `step` in `workdir`, restored onto this process's one device."""
  config = test_config.get_config()
  abstract = jax.eval_shape(lambda: train_step.create_train_state(config, jax.random.key(0)))
  # The target's shardings say where to put the arrays; Orbax refuses to guess when the
  # checkpoint was written from other devices.
  device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  abstract = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=device),
                          abstract)
  manager = ocp.CheckpointManager((workdir / "checkpoints").resolve())
  return manager.restore(step, args=ocp.args.StandardRestore(abstract))


def _train_steps(workdir) -> list[int]:
  rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
  return [row["step"] for row in rows if "l1" in row]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
  """Workdirs of a 2-process run (1 device each) and a 1-process run on 2 devices."""
  root = tmp_path_factory.mktemp("multihost")
  address = f"127.0.0.1:{ph.free_port()}"
  logs = [root / "process_0.log", root / "process_1.log", root / "single.log"]
  procs = [ph.start_main([*_FLAGS, f"--workdir={root / 'two'}", f"--coordinator_address={address}",
                          "--num_processes=2", f"--process_id={i}"], logs[i], ph.cpu_env(1))
           for i in range(2)]
  procs.append(ph.start_main([*_FLAGS, f"--workdir={root / 'one'}"], logs[2], ph.cpu_env(2)))
  ph.wait_all(procs, logs)
  return {"two": root / "two", "one": root / "one", "logs": logs}


def test_two_processes_train_as_one_process_on_two_devices(runs):
  logs = [log.read_text() for log in runs["logs"]]
  assert "JAX process 0/2" in logs[0] and "JAX process 1/2" in logs[1]
  assert "JAX process 0/1" in logs[2] and "not starting jax.distributed" in logs[2]
  two, one = _restore(runs["two"], STEPS), _restore(runs["one"], STEPS)
  assert int(two.step) == int(one.step) == STEPS
  diffs = jax.tree.leaves(jax.tree.map(
      lambda a, b: float(np.max(np.abs(np.asarray(a, np.float64) - b), initial=0)), two, one))
  assert max(diffs) <= _ATOL, max(diffs)


def test_only_process_0_writes_logs_samples_and_plots(runs):
  assert _train_steps(runs["two"]) == _train_steps(runs["one"]) == [2, 4]  # Each line once.
  assert len(list(runs["two"].glob("events.out.tfevents.*"))) == 1
  assert [p.name for p in (runs["two"] / "samples").iterdir()] == ["step_0000004.png"]
  assert (runs["two"] / "plots" / "l1_loss.png").exists()


def test_two_process_checkpoint_resumes_in_one_process(runs, tmp_path):
  workdir = tmp_path / "resumed"
  shutil.copytree(runs["two"], workdir)
  config = test_config.get_config()
  config.num_train_steps = STEPS + 2
  state = train.train_and_evaluate(config, str(workdir))  # Here: 1 process, 1 device.
  assert jax.process_count() == 1 and int(state.step) == STEPS + 2
  # The 2-process run logged steps 2 and 4; this one continued after step 4.
  assert _train_steps(workdir) == [2, 4, 6]


def test_slurm_environment_is_detected_and_initialises_jax_distributed(tmp_path):
  # What `srun --ntasks=2` gives each task, on one node called localhost. JAX derives the
  # coordinator from SLURM_STEP_NODELIST and JAX_COORDINATOR_PORT, the rest from SLURM_*.
  slurm = {"SLURM_JOB_ID": "4242", "SLURM_STEP_NODELIST": "localhost", "SLURM_NTASKS": "2",
           "JAX_COORDINATOR_PORT": str(ph.free_port())}
  logs = [tmp_path / f"task_{i}.log" for i in range(2)]
  procs = [ph.start_main([*_FLAGS, "--config.num_train_steps=2", f"--workdir={tmp_path / 'run'}"],
                         logs[i], ph.cpu_env(1, **slurm, SLURM_PROCID=str(i),
                                             SLURM_LOCALID=str(i)))
           for i in range(2)]
  ph.wait_all(procs, logs)
  for i, log in enumerate(logs):
    text = log.read_text()
    assert "Multi-process job detected (slurm, 2 processes)" in text
    assert f"JAX process {i}/2" in text
  assert _train_steps(tmp_path / "run") == [2]


def test_one_task_slurm_allocation_is_a_single_process_run(monkeypatch):
  # E.g. `python -m colorize.main` typed inside `salloc`: JAX would see SLURM, but starting
  # the distributed runtime there would only restrict the process to GPU 0.
  for name, value in {"SLURM_JOB_ID": "1", "SLURM_STEP_NODELIST": "node1", "SLURM_NTASKS": "1",
                      "SLURM_PROCID": "0", "SLURM_LOCALID": "0"}.items():
    monkeypatch.setenv(name, value)
  assert distributed.detected_cluster() == ("slurm", 1)
  monkeypatch.setattr(jax.distributed, "initialize", lambda *a, **k: pytest.fail("called"))
  assert not distributed.initialize()
  monkeypatch.setenv("SLURM_NTASKS", "4")
  assert distributed.detected_cluster() == ("slurm", 4)


def test_open_mpi_task_count_is_read_from_its_environment(monkeypatch):
  monkeypatch.delenv("SLURM_JOB_ID", raising=False)
  monkeypatch.setenv("OMPI_MCA_orte_hnp_uri", "1531576320.0;tcp://10.0.0.1:34911")
  monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "3")
  assert distributed.detected_cluster() == ("ompi", 3)


def test_no_cluster_and_no_flags_is_a_single_process_run(monkeypatch):
  monkeypatch.setattr(jax.distributed, "initialize", lambda *a, **k: pytest.fail("called"))
  for name in ("SLURM_JOB_ID", "OMPI_MCA_orte_hnp_uri", "KUBERNETES_SERVICE_HOST"):
    monkeypatch.delenv(name, raising=False)
  assert distributed.detected_cluster() is None
  assert not distributed.initialize()


def test_incomplete_flags_are_one_line(tmp_path):
  log = tmp_path / "main.log"
  proc = ph.start_main(["--config=configs/test.py", f"--workdir={tmp_path}", "--process_id=1"],
                       log, ph.cpu_env(1))
  assert proc.wait(timeout=ph.TIMEOUT) != 0
  last_line = log.read_text().strip().splitlines()[-1]
  assert last_line.startswith("error: cannot start jax.distributed (coordinator_address "
                              "should be defined.); give --coordinator_address"), last_line
