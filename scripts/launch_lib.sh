# Shell helpers shared by launch_gpu.sh and launch_tpu.sh (sourced, not run).

# Prints a command as one line of shell, quoting only the words that need it.
quote() {
  local words=() word
  for word in "$@"; do
    if [[ $word =~ ^[A-Za-z0-9_./:=,@%+-]+$ ]]; then
      words+=("$word")
    else
      words+=("'${word//\'/\'\\\'\'}'")
    fi
  done
  echo "${words[*]}"
}

# Runs a command, or with dry_run=1 (set by the caller's --dry-run) only prints it.
run() {
  if (( dry_run )); then
    quote "$@"
  else
    "$@"
  fi
}

die() {
  echo "$(basename "$0"): $*" >&2
  exit 2
}
