#!/usr/bin/env bash
# Runs `python -m colorize.main` on one GPU host, or on several nodes under SLURM.
#
# One host: one process over all its visible GPUs (the batch is split between them; no
# jax.distributed). SLURM: `srun` starts one process per node; JAX reads the coordinator,
# process count and index from SLURM's environment (colorize.distributed), and each process
# drives all the GPUs of its node. The workdir must be visible to every node (a shared
# filesystem or gs://).
#
# Tested here: the --dry-run output (tests/launch_test.py) and the SLURM detection with a
# faked SLURM environment on CPU (tests/multihost_test.py); not on a real GPU cluster.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage:
  scripts/launch_gpu.sh [--dry-run] [--gpus=0,1,...] -- MAIN_ARGS...
  scripts/launch_gpu.sh [--dry-run] --nodes=N --gpus_per_node=G [--sbatch]
      [--partition=P] [--time=HH:MM:SS] [--account=A] [--job_name=NAME] -- MAIN_ARGS...

MAIN_ARGS go to `python -m colorize.main` unchanged: --config=..., --workdir=...,
--config.KEY=VALUE ...

  --gpus=LIST        one host: use these GPUs (CUDA_VISIBLE_DEVICES); default all.
  --nodes=N          run under SLURM with `srun`, one process per node.
  --gpus_per_node=G  GPUs per node (each process uses all G).
  --sbatch           submit a batch job (returns at once; log in NAME-JOBID.out) instead
                     of running srun in the foreground (inside salloc, or blocking).
  --partition, --time, --account, --job_name
                     passed to srun/sbatch (job name default: colorize).
  --dry-run          print every command instead of running it.
Environment: PYTHON (default: python), the interpreter of the environment to run in.
EOF
}

source "$(dirname "${BASH_SOURCE[0]}")/launch_lib.sh"

dry_run=0 gpus="" nodes="" gpus_per_node="" sbatch=0
slurm_opts=() job_name=colorize
while (( $# )); do
  case $1 in
    --dry-run) dry_run=1 ;;
    --gpus=*) gpus=${1#*=} ;;
    --nodes=*) nodes=${1#*=} ;;
    --gpus_per_node=*) gpus_per_node=${1#*=} ;;
    --sbatch) sbatch=1 ;;
    --partition=* | --time=* | --account=*) slurm_opts+=("$1") ;;
    --job_name=*) job_name=${1#*=} ;;
    -h | --help) usage; exit 0 ;;
    --) shift; break ;;
    *) usage >&2; die "unknown option $1 (colorize.main's flags go after --)" ;;
  esac
  shift
done
(( $# )) || { usage >&2; die "no arguments for colorize.main after --"; }
main=("${PYTHON:-python}" -m colorize.main "$@")

if [[ -z $nodes ]]; then
  (( ! sbatch )) && [[ -z $gpus_per_node ]] || die "--gpus_per_node and --sbatch need --nodes"
  if [[ -n $gpus ]]; then
    run env CUDA_VISIBLE_DEVICES="$gpus" "${main[@]}"
  else
    run "${main[@]}"
  fi
  exit
fi

[[ $nodes =~ ^[1-9][0-9]*$ ]] || die "--nodes must be a positive integer, not '$nodes'"
[[ $gpus_per_node =~ ^[1-9][0-9]*$ ]] || die "--nodes needs --gpus_per_node=G (G >= 1)"
[[ -z $gpus ]] || die "--gpus is for one host; SLURM assigns the GPUs of each node"
# JAX's SLURM detection gives each process only the GPU numbered by its local task id (one
# process per GPU); with one process per node, it must be told to use all of them.
device_ids=$(seq -s, 0 $(( gpus_per_node - 1 )))
task=(env "JAX_LOCAL_DEVICE_IDS=$device_ids" "${main[@]}")
# If one process dies, the others would wait for it in a collective until JAX times out.
srun_opts=(--kill-on-bad-exit=1)
allocation=(--nodes="$nodes" --ntasks-per-node=1 --gpus-per-node="$gpus_per_node"
            "${slurm_opts[@]}" --job-name="$job_name")
if (( sbatch )); then
  run sbatch "${allocation[@]}" --output="$job_name-%j.out" \
    --wrap="$(quote srun "${srun_opts[@]}" "${task[@]}")"
else
  run srun "${allocation[@]}" "${srun_opts[@]}" "${task[@]}"
fi
