#!/usr/bin/env bash
# Runs `python -m colorize.main` on every worker of a Cloud TPU VM (a pod slice or one host).
#
# Steps: create the TPU VM (a queued resource, or directly) or use an existing one; copy this
# repository's HEAD to every worker (or clone it from --git_url); install it with JAX's TPU
# build; run the same command on all workers with `gcloud compute tpus tpu-vm ssh
# --worker=all`. On the workers, `jax.distributed.initialize()` finds the other hosts from the
# TPU metadata (colorize.distributed). The workdir must be on GCS (gs://...): every worker
# writes its part of each checkpoint there, and process 0 the logs.
#
# Tested here: the --dry-run output (tests/launch_test.py), and multi-process training with
# JAX's distributed runtime on CPU (tests/multihost_test.py); not on a real TPU.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage:
  scripts/launch_tpu.sh --name=NAME --zone=ZONE [--project=PROJECT]
      [--create=queued|vm] [--accelerator=v4-32] [--version=tpu-ubuntu2204-base] [--spot]
      [--git_url=URL [--git_ref=REF]] [--dry-run] -- --workdir=gs://BUCKET/RUN MAIN_ARGS...

MAIN_ARGS go to `python -m colorize.main` unchanged (--config=..., --config.KEY=VALUE ...).

  --name, --zone, --project  the TPU VM (project: gcloud's default if not given).
  --create=queued            request it as a queued resource and wait until it is ACTIVE.
  --create=vm                create it with `tpu-vm create` (fails if none is free).
                             Without --create, the TPU VM must exist.
  --accelerator, --version   for --create: type and runtime (v4: tpu-ubuntu2204-base; v5e:
                             v2-alpha-tpuv5-lite; v5p: v2-alpha-tpuv5; v6e: v2-alpha-tpuv6e).
  --spot                     for --create: a Spot TPU (preemptible; rerun to resume).
  --git_url, --git_ref       clone this repository on the workers instead of copying the
                             local HEAD (uncommitted changes are not copied either way).
  --dry-run                  print every command instead of running it.
EOF
}

source "$(dirname "${BASH_SOURCE[0]}")/launch_lib.sh"

dry_run=0 name="" zone="" project=() create="" accelerator=v4-32
version=tpu-ubuntu2204-base spot=() git_url="" git_ref=""
while (( $# )); do
  case $1 in
    --dry-run) dry_run=1 ;;
    --name=*) name=${1#*=} ;;
    --zone=*) zone=${1#*=} ;;
    --project=*) project=("$1") ;;
    --create=queued | --create=vm) create=${1#*=} ;;
    --accelerator=*) accelerator=${1#*=} ;;
    --version=*) version=${1#*=} ;;
    --spot) spot=(--spot) ;;
    --git_url=*) git_url=${1#*=} ;;
    --git_ref=*) git_ref=${1#*=} ;;
    -h | --help) usage; exit 0 ;;
    --) shift; break ;;
    *) usage >&2; die "unknown option $1 (colorize.main's flags go after --)" ;;
  esac
  shift
done
[[ -n $name && -n $zone ]] || { usage >&2; die "--name and --zone are required"; }
[[ -z $git_ref || -n $git_url ]] || die "--git_ref needs --git_url"
workdir=""
previous=""
for arg in "$@"; do
  [[ $previous == --workdir ]] && workdir=$arg
  [[ $arg == --workdir=* ]] && workdir=${arg#--workdir=}
  previous=$arg
done
[[ $workdir == gs://* ]] || die "--workdir must be gs://BUCKET/...: every worker writes to it"

tpu=(gcloud compute tpus)
where=(--zone="$zone" "${project[@]}")
on_all_workers=("${tpu[@]}" tpu-vm ssh "$name" "${where[@]}" --worker=all)

case $create in
  queued)
    run "${tpu[@]}" queued-resources create "$name" --node-id="$name" "${where[@]}" \
      --accelerator-type="$accelerator" --runtime-version="$version" "${spot[@]}"
    describe=("${tpu[@]}" queued-resources describe "$name" "${where[@]}"
              --format='value(state.state)')
    if (( dry_run )); then
      echo "# (repeated every 30 s until the state is ACTIVE)"
      quote "${describe[@]}"
    else
      while state=$("${describe[@]}") && [[ $state != ACTIVE ]]; do
        [[ $state =~ FAILED|SUSPENDED ]] && die "queued resource $name is $state"
        echo "launch_tpu.sh: queued resource $name is $state; waiting for ACTIVE" >&2
        sleep 30
      done
    fi
    ;;
  vm)
    run "${tpu[@]}" tpu-vm create "$name" "${where[@]}" --accelerator-type="$accelerator" \
      --version="$version" "${spot[@]}"
    ;;
esac

if [[ -n $git_url ]]; then
  clone=(git clone --depth=1)
  [[ -n $git_ref ]] && clone+=(--branch="$git_ref")
  clone+=("$git_url" colorize)
  run "${on_all_workers[@]}" --command="rm -rf colorize && $(quote "${clone[@]}")"
else
  archive="${TMPDIR:-/tmp}/colorize-$name.tar.gz"
  repo=$(cd "$(dirname "$0")/.." && pwd)
  run git -C "$repo" archive --format=tar.gz --output="$archive" HEAD
  run "${tpu[@]}" tpu-vm scp "$archive" "$name:colorize.tar.gz" "${where[@]}" --worker=all
  run "${on_all_workers[@]}" \
    --command="rm -rf colorize && mkdir colorize && tar -xzf colorize.tar.gz -C colorize"
fi
# JAX's TPU build (libtpu) in the range setup.cfg pins for jax.
run "${on_all_workers[@]}" \
  --command="cd colorize && python3 -m pip install -q -e . 'jax[tpu]>=0.10.2,<0.12'"
# Blocks until training ends on every worker. If the connection drops, the runs stop: the
# same command resumes from the last checkpoint in the workdir.
run "${on_all_workers[@]}" --command="cd colorize && $(quote python3 -m colorize.main "$@")"
