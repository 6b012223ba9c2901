"""Helpers for tests that start real training processes (`python -m colorize.main`).

Children inherit the environment tests/conftest.py sets (CPU only, LLVM -O0, the shared
persistent compilation cache), so their compiles are as fast as the tests' own.
"""
import os
import pathlib
import socket
import subprocess
import sys
import time

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
TIMEOUT = 240  # Seconds for a few tiny runs at once; generous, the machine is shared.


def free_port() -> int:
  """A TCP port that was free a moment ago (for a jax.distributed coordinator)."""
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def cpu_env(num_devices: int, **extra: str) -> dict[str, str]:
  """This process's environment, with `num_devices` CPU devices per process and `extra`.

  Args:
    num_devices: the value of --xla_force_host_platform_device_count.
    **extra: more variables to set.

  Returns:
    A copy of os.environ for a child process.
  """
  # Any device count already in XLA_FLAGS is replaced: the last flag would win anyway, but a
  # reader of the child's log should see one.
  flags = [f for f in os.environ.get("XLA_FLAGS", "").split()
           if not f.startswith("--xla_force_host_platform_device_count")]
  flags.append(f"--xla_force_host_platform_device_count={num_devices}")
  return {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": " ".join(flags), **extra}


def start_main(args: list[str], log_path: pathlib.Path, env: dict[str, str]
               ) -> subprocess.Popen:
  """Starts `python -m colorize.main *args` in the repo.

  Args:
    args: colorize.main's flags.
    log_path: where its stdout and stderr go.
    env: its environment (`cpu_env`).

  Returns:
    The running process.
  """
  with open(log_path, "w") as log:
    return subprocess.Popen([sys.executable, "-m", "colorize.main", *args], cwd=REPO, env=env,
                            stdout=log, stderr=subprocess.STDOUT)


def wait_all(procs: list[subprocess.Popen], logs: list[pathlib.Path],
             timeout: float = TIMEOUT) -> None:
  """Waits for every process to exit 0; otherwise kills the rest and fails with the log.

  One process of a jax.distributed job that fails leaves the others waiting for it (up to
  JAX's 5-minute timeouts), so the first failure or the deadline ends them all.

  Args:
    procs: the processes, in any order.
    logs: their log files, in the same order.
    timeout: seconds for all of them together.
  """
  deadline = time.monotonic() + timeout
  try:
    while any(p.poll() is None for p in procs):
      failed = [(p, log) for p, log in zip(procs, logs) if p.poll() not in (None, 0)]
      if failed or time.monotonic() > deadline:
        proc, log = failed[0] if failed else next(
            (p, log) for p, log in zip(procs, logs) if p.poll() is None)
        what = f"exited with {proc.returncode}" if failed else f"timed out after {timeout} s"
        pytest.fail(f"{log.name} {what}:\n{log.read_text()[-3000:]}")
      time.sleep(0.1)
    for proc, log in zip(procs, logs):
      assert proc.returncode == 0, f"{log.name}:\n{log.read_text()[-3000:]}"
  finally:
    for proc in procs:
      if proc.poll() is None:
        proc.kill()
        proc.wait()
