"""scripts/compare_revisions.py: two revisions' trainer calls, timed in turns, end to end."""
import os
import re
import subprocess
import sys

import pytest

from tests import process_helpers

if subprocess.run(["git", "rev-parse", "HEAD"], cwd=process_helpers.REPO,
                  capture_output=True).returncode:
  pytest.skip("needs a git checkout (the script exports revisions with git archive)",
              allow_module_level=True)


def test_times_the_committed_tree_against_the_working_tree(tmp_path):
  proc = subprocess.run(
      [sys.executable, "scripts/compare_revisions.py", "--config_file=configs/test.py",
       "--batch=2", "--rounds=3", '--config={"steps_per_call": 2}', "HEAD", "."],
      cwd=process_helpers.REPO, env=process_helpers.cpu_env(1, TMPDIR=str(tmp_path)),
      capture_output=True, text=True, timeout=process_helpers.TIMEOUT)
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert not os.listdir(tmp_path)  # The revisions' copies are removed.
  rounds = [l for l in proc.stdout.splitlines() if l.startswith("round")]
  assert len(rounds) == 3
  for line in rounds:  # Both revisions' times per iteration (to 0.1 ms), and their ratio.
    assert re.search(r"HEAD +[\d.]+ ms +\. +[\d.]+ ms +ratio \d+\.\d{3} \(cpu \d+\.\d{3}\)$",
                     line), line
  for name in ("wall", "cpu"):
    faster = re.search(rf"^{name} *: time\(HEAD\) / time\(\.\) median [\d.]+ over 3 rounds; "
                       r"\. faster in (\d), HEAD faster in (\d)$", proc.stdout, re.M)
    assert faster and sum(map(int, faster.groups())) == 3, proc.stdout


@pytest.mark.parametrize("args, error", [
    (["nosuchrev", "HEAD"], "error: 'nosuchrev' is not a commit of this repository"),
    (["--config_file=configs/nope.py", "HEAD", "."],
     "error: --config_file=configs/nope.py: HEAD has no configs/nope.py"),
    (["--config_file=/etc/passwd", "HEAD", "."],
     "error: --config_file=/etc/passwd: give a path inside the repository"),
])
def test_a_bad_revision_or_config_file_is_one_line_before_any_worker_starts(args, error):
  proc = subprocess.run([sys.executable, "scripts/compare_revisions.py", *args],
                        cwd=process_helpers.REPO, env=process_helpers.cpu_env(1),
                        capture_output=True, text=True, timeout=process_helpers.TIMEOUT)
  assert proc.returncode == 1 and proc.stderr.startswith(error), proc.stderr
  assert len(proc.stderr.strip().splitlines()) == 1
