#!/usr/bin/env bash
# Builds the wheels of scripts/wheelhouse.txt for a bare Linux x86-64 accelerator image with
# Python 3.12 and no network (scripts/accelerator_check.py; docs/performance.md says how to
# use them). Run where pip reaches PyPI:
#
#   bash scripts/build_wheelhouse.sh [wheelhouse]
set -euo pipefail
out="${1:-wheelhouse}"
list="$(dirname "$0")/wheelhouse.txt"
mkdir -p "$out"
# promise is published as a source archive only: it is built here (pure Python).
grep -v -e '^#' -e '^promise==' "$list" | python -m pip download --no-deps --only-binary=:all: \
    --python-version 3.12 --implementation cp --platform manylinux2014_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux_2_24_x86_64 \
    --platform manylinux_2_27_x86_64 --platform manylinux_2_28_x86_64 -d "$out" -r /dev/stdin
python -m pip wheel --no-deps -w "$out" "$(grep '^promise==' "$list")"
du -sh "$out"
