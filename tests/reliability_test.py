"""Real processes killed, preempted, interrupted (Ctrl-C), doubled on one workdir and starved of
disk: runs resume exactly, losing nothing.

Each test starts `colorize.main` on the tiny test config as a subprocess, interrupts it,
restarts it with the same command and compares the final checkpoint, bit for bit, with an
uninterrupted run of the same length (CPU, the XLA flags of tests/conftest.py).

Kill timing is made deterministic with a test-only hook in the launcher (`_LAUNCHER`): Orbax's
commit of a checkpoint (the rename of `<step>.orbax-checkpoint-tmp` to `<step>`) is delayed,
either for one step ("hang the commit of step 3": a kill then always lands mid-save) or for
every step (a slow disk: each step then takes >= the delay, so "kill after step 6 was logged"
always lands mid-run).
"""
import json
import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import orbax.checkpoint as ocp
import process_helpers
import pytest

from colorize import train
from colorize import train_step
from configs import test as test_config

REPO = pathlib.Path(__file__).resolve().parents[1]
STEPS = 16
_FLAGS = ("--config=configs/test.py", f"--config.num_train_steps={STEPS}",
          "--config.checkpoint_every_steps=1", "--config.log_every_steps=1",
          "--config.eval_every_steps=1000")
_TIMEOUT = 180  # Seconds; generous, the machine is shared. A run here takes ~10 s.

# `python -c _LAUNCHER <flags>` runs colorize.main, after a test-only patch driven by the
# environment: SLOW_SAVE_STEP/SECONDS delay Orbax's commit (rename) of that step's checkpoint
# ("*": every step's).
_LAUNCHER = r'''
import asyncio, os, sys
from absl import app
from orbax.checkpoint._src.path import atomicity

slow_step = os.environ.get("SLOW_SAVE_STEP")
if slow_step:
  delay = float(os.environ["SLOW_SAVE_SECONDS"])
  finalize = atomicity.AtomicRenameTemporaryPath.finalize

  async def slow_finalize(self, *args, **kwargs):
    name = self._final_path.name
    if name == slow_step or (slow_step == "*" and name.isdigit()):
      await asyncio.sleep(delay)
    return await finalize(self, *args, **kwargs)

  atomicity.AtomicRenameTemporaryPath.finalize = slow_finalize
from colorize import main
app.run(main.main, argv=["colorize.main", *sys.argv[1:]], flags_parser=main._parse_flags)
'''


def _config(**overrides):
  config = test_config.get_config()
  config.update({"num_train_steps": STEPS, "checkpoint_every_steps": 1, "log_every_steps": 1,
                 "eval_every_steps": 1000, **overrides})
  return config


def _start(workdir, log_path, *, slow_step=None, delay=0.0, flags=()):
  """Starts a training process; its stdout and stderr go to `log_path`."""
  env = dict(os.environ)
  if slow_step is not None:
    env.update(SLOW_SAVE_STEP=str(slow_step), SLOW_SAVE_SECONDS=str(delay))
  with open(log_path, "w") as log:
    return subprocess.Popen(
        [sys.executable, "-c", _LAUNCHER, f"--workdir={workdir}", *_FLAGS, *flags],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)


def _wait_until(condition, proc, log_path, timeout=_TIMEOUT):
  deadline = time.monotonic() + timeout
  while not condition():
    if proc.poll() is not None:
      pytest.fail(f"process ended ({proc.returncode}) before the test could interrupt it:\n"
                  + pathlib.Path(log_path).read_text()[-3000:])
    if time.monotonic() > deadline:
      proc.kill()
      pytest.fail(f"timed out waiting; log:\n{pathlib.Path(log_path).read_text()[-3000:]}")
    time.sleep(0.02)


def _train_rows(workdir) -> list[dict]:
  """The training lines of metrics.jsonl (a line being written is skipped)."""
  path = workdir / "metrics.jsonl"
  rows = []
  for line in path.read_text().splitlines() if path.exists() else []:
    try:
      row = json.loads(line)
    except json.JSONDecodeError:
      continue
    if "l1" in row:
      rows.append(row)
  return rows


def _last_logged_step(workdir) -> int:
  return max((row["step"] for row in _train_rows(workdir)), default=0)


def _complete_steps(workdir) -> list[int]:
  return sorted(ocp.path.step.checkpoint_steps(workdir / "checkpoints"))


def _restore(workdir, step):
  abstract = jax.eval_shape(lambda: train_step.create_train_state(_config(), jax.random.key(0)))
  manager = ocp.CheckpointManager((workdir / "checkpoints").resolve())
  return manager.restore(step, args=ocp.args.StandardRestore(abstract))


def _assert_same_run(workdir, reference):
  """The run in `workdir` ended exactly as the uninterrupted one, and logged every step once."""
  final = _restore(workdir, STEPS)
  leaves, expected = jax.tree.leaves(final), jax.tree.leaves(reference["state"])
  assert len(leaves) == len(expected)
  assert all(np.array_equal(a, b) for a, b in zip(leaves, expected))
  assert _train_rows(workdir) == reference["rows"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
  """An uninterrupted run (in this process) of the length the interrupted runs have."""
  workdir = tmp_path_factory.mktemp("uninterrupted")
  state = train.train_and_evaluate(_config(), str(workdir))
  return {"state": state, "rows": _train_rows(workdir)}


def test_sigkill_mid_save_and_mid_run_then_rerun_equals_uninterrupted(tmp_path, reference):
  workdir, ckpts = tmp_path / "run", tmp_path / "run" / "checkpoints"

  # 1. SIGKILL while step 3's checkpoint is written but not committed.
  proc = _start(workdir, tmp_path / "1.log", slow_step=3, delay=600)
  _wait_until(lambda: (ckpts / "3.orbax-checkpoint-tmp").exists(), proc, tmp_path / "1.log")
  proc.kill()
  proc.wait()
  assert (ckpts / "3.orbax-checkpoint-tmp").exists() and _complete_steps(workdir) == [1, 2]

  # 2. Rerun: the half-written step 3 is never restored (it is removed); SIGKILL again at
  # some point after step 6, with every commit slowed so the run is still going (10 more
  # steps take >= 3 s).
  proc = _start(workdir, tmp_path / "2.log", slow_step="*", delay=0.3)
  _wait_until(lambda: _last_logged_step(workdir) >= 6, proc, tmp_path / "2.log")
  proc.kill()
  proc.wait()
  log = (tmp_path / "2.log").read_text()
  assert "Removing" in log and "3.orbax-checkpoint-tmp" in log
  assert "Resuming from checkpoint at step 2" in log
  assert 2 < max(_complete_steps(workdir)) < STEPS

  # 3. The same command again, to the end.
  proc = _start(workdir, tmp_path / "3.log")
  assert proc.wait(timeout=_TIMEOUT) == 0, (tmp_path / "3.log").read_text()[-3000:]
  _assert_same_run(workdir, reference)


def test_sigterm_saves_the_current_step_exits_0_and_resumes_there(tmp_path, reference):
  workdir = tmp_path / "run"
  # Every commit slowed: SIGTERM lands while a save is in flight, the hardest case.
  proc = _start(workdir, tmp_path / "1.log", slow_step="*", delay=0.2)
  _wait_until(lambda: _last_logged_step(workdir) >= 4, proc, tmp_path / "1.log")
  sent = time.monotonic()
  proc.send_signal(signal.SIGTERM)
  assert proc.wait(timeout=60) == 0, (tmp_path / "1.log").read_text()[-3000:]
  seconds = time.monotonic() - sent
  # The step in flight, the save before it and its own (0.2 s each here), and Python's exit.
  assert seconds < 30, seconds
  stopped = int(re.search(r"Preempted \(SIGTERM\) at step (\d+)",
                          (tmp_path / "1.log").read_text()).group(1))
  assert 4 <= stopped < STEPS
  assert max(_complete_steps(workdir)) == stopped == _last_logged_step(workdir)

  proc = _start(workdir, tmp_path / "2.log")
  assert proc.wait(timeout=_TIMEOUT) == 0, (tmp_path / "2.log").read_text()[-3000:]
  assert f"Resuming from checkpoint at step {stopped}" in (tmp_path / "2.log").read_text()
  _assert_same_run(workdir, reference)


def test_killed_fused_run_on_device_data_resumes_bitwise_like_one_step_calls(tmp_path):
  # 8 iterations per call, batches gathered from the split on the device; killed while the
  # last checkpoint is written, so the rerun resumes from step 8 and trains 9..16 again. The
  # reference trains one step per call from the host pipeline, uninterrupted.
  every_8 = dict(checkpoint_every_steps=8, log_every_steps=8)
  reference = train.train_and_evaluate(_config(**every_8), str(tmp_path / "reference"))
  workdir, ckpts = tmp_path / "run", tmp_path / "run" / "checkpoints"
  flags = ("--config.checkpoint_every_steps=8", "--config.log_every_steps=8",
           "--config.steps_per_call=8", "--config.data_on_device=True")
  proc = _start(workdir, tmp_path / "1.log", slow_step=STEPS, delay=600, flags=flags)
  _wait_until(lambda: (ckpts / f"{STEPS}.orbax-checkpoint-tmp").exists(), proc,
              tmp_path / "1.log")
  proc.kill()
  proc.wait()
  assert _complete_steps(workdir) == [8]
  proc = _start(workdir, tmp_path / "2.log", flags=flags)
  assert proc.wait(timeout=_TIMEOUT) == 0, (tmp_path / "2.log").read_text()[-3000:]
  log = (tmp_path / "2.log").read_text()
  assert "Resuming from checkpoint at step 8" in log and "8 steps per call" in log
  final = _restore(workdir, STEPS)
  for a, b in zip(jax.tree.leaves(final), jax.tree.leaves(reference), strict=True):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  assert _train_rows(workdir) == _train_rows(tmp_path / "reference")


def test_sigterm_on_one_host_stops_all_hosts_at_the_same_step(tmp_path):
  # Two processes (jax.distributed on CPU, batch split between them): SIGTERM reaches only
  # process 1; JAX's preemption sync tells process 0, and both save the same step.
  workdir = tmp_path / "run"
  address = f"127.0.0.1:{process_helpers.free_port()}"
  logs = [tmp_path / f"process_{i}.log" for i in range(2)]
  procs = [_start(workdir, logs[i], slow_step="*", delay=0.2,
                  flags=("--config.num_train_steps=60", f"--coordinator_address={address}",
                         "--num_processes=2", f"--process_id={i}"))
           for i in range(2)]
  _wait_until(lambda: _last_logged_step(workdir) >= 3, procs[0], logs[0])
  procs[1].send_signal(signal.SIGTERM)
  for proc, log in zip(procs, logs):
    assert proc.wait(timeout=_TIMEOUT) == 0, log.read_text()[-3000:]
  stopped = [int(re.search(r"Preempted \(SIGTERM\) at step (\d+)", log.read_text()).group(1))
             for log in logs]
  assert stopped[0] == stopped[1] < 60
  assert max(_complete_steps(workdir)) == stopped[0] == _last_logged_step(workdir)


def _mount_tmpfs(path, size_kb) -> bool:
  path.mkdir()
  return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(path)],
                        capture_output=True, check=False).returncode == 0


@pytest.fixture
def small_disk(tmp_path):
  """A 400 KB filesystem: two checkpoints of the test model fit, the third does not."""
  disk = tmp_path / "disk"
  if not _mount_tmpfs(disk, 400):
    pytest.skip("cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN)")
  yield disk
  subprocess.run(["umount", "-l", str(disk)], check=False)


def test_disk_full_at_save_time_is_one_line_and_keeps_the_checkpoints(tmp_path, small_disk):
  workdir = small_disk / "run"
  proc = _start(workdir, tmp_path / "1.log")
  assert proc.wait(timeout=_TIMEOUT) != 0
  last_line = (tmp_path / "1.log").read_text().strip().splitlines()[-1]
  assert last_line.startswith(f"error: cannot write a checkpoint in {workdir}/checkpoints")
  assert "No space left on device" in last_line and "intact (newest: step" in last_line
  complete = _complete_steps(workdir)
  assert complete and max(complete) < STEPS
  _restore(workdir, max(complete))  # Earlier checkpoints are whole.


def test_read_only_workdir_is_refused_at_start_up(tmp_path, small_disk):
  workdir = small_disk / "run"
  config = test_config.get_config()
  config.num_train_steps = 2
  train.train_and_evaluate(config, str(workdir))
  subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
  proc = _start(workdir, tmp_path / "1.log")
  assert proc.wait(timeout=_TIMEOUT) != 0
  last_line = (tmp_path / "1.log").read_text().strip().splitlines()[-1]
  assert last_line == (f"error: workdir {workdir} is not writable (Read-only file system); "
                       "free some space, fix its permissions or use another --workdir")
  assert _complete_steps(workdir) == [2]
  _restore(workdir, 2)


def test_a_second_run_on_a_live_workdir_stops_at_once_and_a_killed_runs_hold_does_not(
    tmp_path, reference):
  workdir = tmp_path / "run"
  proc = _start(workdir, tmp_path / "1.log", slow_step="*", delay=0.5)
  _wait_until(lambda: _last_logged_step(workdir) >= 1, proc, tmp_path / "1.log")
  second = subprocess.run([sys.executable, "-c", _LAUNCHER, f"--workdir={workdir}", *_FLAGS],
                          cwd=REPO, capture_output=True, text=True, timeout=_TIMEOUT)
  assert second.returncode == 1 and "Training steps" not in second.stderr
  assert second.stderr.strip().splitlines()[-1] == (
      f"error: workdir {workdir} is in use by another run (host {socket.gethostname()}, "
      f"process {proc.pid}); wait for it to end or stop it, or use another --workdir")
  assert proc.poll() is None  # The first run goes on.
  proc.kill()  # Its hold ends with it; run.lock stays, naming it.
  proc.wait()
  proc = _start(workdir, tmp_path / "2.log")
  assert proc.wait(timeout=_TIMEOUT) == 0, (tmp_path / "2.log").read_text()[-3000:]
  _assert_same_run(workdir, reference)


def test_ctrl_c_saves_the_current_step_and_a_second_one_aborts_at_once(tmp_path, reference):
  workdir, ckpts = tmp_path / "run", tmp_path / "run" / "checkpoints"
  # 1. One Ctrl-C: as SIGTERM, the step in flight is saved, and the run ends with status 0.
  proc = _start(workdir, tmp_path / "1.log", slow_step="*", delay=0.2)
  _wait_until(lambda: _last_logged_step(workdir) >= 4, proc, tmp_path / "1.log")
  proc.send_signal(signal.SIGINT)
  assert proc.wait(timeout=60) == 0, (tmp_path / "1.log").read_text()[-3000:]
  log = (tmp_path / "1.log").read_text()
  assert "Traceback" not in log and "KeyboardInterrupt" not in log
  stopped = int(re.search(r"Interrupted \(Ctrl-C\) at step (\d+): saving it in .*; run the "
                          r"same command to resume", log).group(1))
  assert 4 <= stopped < STEPS
  assert max(_complete_steps(workdir)) == stopped == _last_logged_step(workdir)

  # 2. Resumed, with the next save hung; a second Ctrl-C ends the process without waiting.
  proc = _start(workdir, tmp_path / "2.log", slow_step=stopped + 1, delay=600)
  _wait_until(lambda: (ckpts / f"{stopped + 1}.orbax-checkpoint-tmp").exists(), proc,
              tmp_path / "2.log")
  proc.send_signal(signal.SIGINT)
  _wait_until(lambda: "Ctrl-C again aborts" in (tmp_path / "2.log").read_text(), proc,
              tmp_path / "2.log")
  proc.send_signal(signal.SIGINT)
  assert proc.wait(timeout=60) == -signal.SIGINT
  assert "Second Ctrl-C: aborting without saving" in (tmp_path / "2.log").read_text()

  # 3. The same command again, to the end: as after any kill.
  proc = _start(workdir, tmp_path / "3.log")
  assert proc.wait(timeout=_TIMEOUT) == 0, (tmp_path / "3.log").read_text()[-3000:]
  _assert_same_run(workdir, reference)
