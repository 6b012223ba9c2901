"""Starts JAX's distributed runtime when the job has several processes, and only then.

A multi-process job is one where

* the command line names it: any of `--coordinator_address`, `--num_processes`,
  `--process_id` (JAX's auto-detection fills in the ones left out, and fails if it cannot);
* or the environment does: a cluster that `jax.distributed.initialize()` recognises (a TPU
  pod slice, SLURM, Open MPI, ...) reports more than one process.

Everything else is a plain single-process run, which uses all of its local devices and does
not call `jax.distributed.initialize()`: without a cluster it raises, and inside a one-task
SLURM allocation it would restrict the process to one GPU (JAX gives each SLURM task the GPU
numbered by its local task id; see `scripts/launch_gpu.sh` for one process per node).
"""
import re

from absl import logging
import jax
from jax._src import clusters  # The registry jax.distributed.initialize() itself detects from.

from colorize.errors import UserError


def detected_cluster() -> tuple[str, int] | None:
  """The cluster environment JAX would auto-detect, and its number of processes.

  Mirrors the selection in `jax.distributed.initialize()` (JAX 0.10: the first registered
  environment that is present and not opt-in only), without starting anything.

  Returns:
    (JAX's name for the environment, e.g. "slurm" or "gcetpu", its process count), or None
    when no cluster environment is present.
  """
  # (A private API: jax is pinned to 0.10.x in setup.cfg, and tests/multihost_test.py checks
  # the SLURM case against a real initialisation.)
  for env in clusters.ClusterEnv._cluster_types:  # pylint: disable=protected-access
    if not env.opt_in_only_method and env.is_env_present():
      return env.name, env.get_process_count()
  return None


def initialize(coordinator_address: str | None = None, num_processes: int | None = None,
               process_id: int | None = None) -> bool:
  """Calls `jax.distributed.initialize` if the job is multi-process (module docstring).

  Must run before anything touches a JAX device. Does nothing if already initialised.

  Args:
    coordinator_address: "host:port" of process 0, or None to auto-detect.
    num_processes: how many processes the job has, or None to auto-detect.
    process_id: this process's index in [0, num_processes), or None to auto-detect.

  Returns:
    Whether the distributed runtime is initialised (by this call or before it).

  Raises:
    UserError: flags JAX refuses or cannot complete (e.g. --process_id without the others
      outside a cluster, an address without a port).
  """
  if jax.distributed.is_initialized():
    return True
  if coordinator_address is not None and not re.fullmatch(r".+:\d+", coordinator_address):
    raise UserError(f"--coordinator_address={coordinator_address} has no port: give "
                    "host:port of process 0 (e.g. 10.0.0.2:8476), the same in every process")
  explicit = (coordinator_address, num_processes, process_id)
  if all(x is None for x in explicit):
    cluster = detected_cluster()
    if cluster is None or cluster[1] <= 1:
      logging.info("Single process (%s): not starting jax.distributed",
                   f"{cluster[0]} with 1 process" if cluster else "no cluster detected")
      return False
    logging.info("Multi-process job detected (%s, %d processes): starting jax.distributed",
                 *cluster)
  try:
    jax.distributed.initialize(coordinator_address, num_processes, process_id)
  except (ValueError, TypeError) as e:  # JAX's checks of missing or inconsistent values.
    raise UserError(f"cannot start jax.distributed ({e}); give --coordinator_address, "
                    "--num_processes and --process_id together, or run under a TPU pod "
                    "slice or SLURM, which are detected") from None
  return True
