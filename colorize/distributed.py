"""Starts JAX's distributed runtime when the job has several processes, and only then.

A multi-process job is one where

* the command line names it: any of `--coordinator_address`, `--num_processes`,
  `--process_id` (JAX's auto-detection fills in the ones left out, and fails if it cannot);
* or the environment does: SLURM or Open MPI report more than one task, or this is a Cloud TPU
  VM (`jax.distributed.initialize()` then finds the slice's hosts, one or several).

Everything else is a plain single-process run, which uses all of its local devices and does
not call `jax.distributed.initialize()`: without a cluster it raises, and inside a one-task
SLURM allocation it would restrict the process to one GPU (JAX gives each SLURM task the GPU
numbered by its local task id; see `scripts/launch_gpu.sh` for one process per node). Other
launchers (Kubernetes, mpi4py) pass the three flags.
"""
import glob
import os
import re

from absl import logging
import jax

from colorize.errors import UserError

# Google's PCI vendor id: a TPU chip on this host, as JAX itself detects Cloud TPU VMs.
_TPU_PCI_VENDOR = "0x1ae0"


def _tpu_vm() -> bool:
  for path in glob.glob("/sys/bus/pci/devices/*/vendor"):
    try:
      with open(path) as f:
        if f.read().strip() == _TPU_PCI_VENDOR:
          return True
    except OSError:
      continue
  return False


def detected_cluster() -> tuple[str, int | None] | None:
  """The cluster environment this process runs in, and its number of processes.

  Read from what the schedulers document (SLURM's and Open MPI's environment variables) and
  from the PCI bus (a TPU), the signals JAX's own auto-detection uses. (JAX's registry of
  environments is private, `jax._src.clusters`, so it is not asked.)

  Returns:
    ("slurm" or "ompi", the task count), ("tpu", None) on a Cloud TPU VM (JAX finds the
    count), or None when no cluster environment is present.
  """
  env = os.environ
  if all(k in env for k in ("SLURM_JOB_ID", "SLURM_STEP_NODELIST", "SLURM_NTASKS",
                            "SLURM_PROCID", "SLURM_LOCALID")):
    return "slurm", int(env["SLURM_NTASKS"])
  if "OMPI_MCA_orte_hnp_uri" in env and "OMPI_COMM_WORLD_SIZE" in env:
    return "ompi", int(env["OMPI_COMM_WORLD_SIZE"])
  if _tpu_vm():
    return "tpu", None
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
  if (coordinator_address, num_processes, process_id) == (None, None, None):
    cluster = detected_cluster()
    if cluster is None or cluster[1] == 1:
      logging.info("Single process (%s): not starting jax.distributed",
                   f"{cluster[0]} with 1 process" if cluster else "no cluster detected")
      return False
    if cluster[1] is None:
      logging.info("Cloud TPU VM: starting jax.distributed (it finds the slice's hosts)")
    else:
      logging.info("Multi-process job detected (%s, %d processes): starting jax.distributed",
                   *cluster)
  try:
    jax.distributed.initialize(coordinator_address, num_processes, process_id)
  except (ValueError, TypeError) as e:  # JAX's checks of missing or inconsistent values.
    raise UserError(f"cannot start jax.distributed ({e}); give --coordinator_address, "
                    "--num_processes and --process_id together, or run under a TPU pod "
                    "slice or SLURM, which are detected") from None
  return True
