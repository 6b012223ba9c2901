"""scripts/compare_revisions.py: two revisions' trainer calls, timed in turns, end to end."""
import re
import subprocess
import sys

import pytest

from tests import process_helpers


def test_times_the_committed_tree_against_the_working_tree():
  if subprocess.run(["git", "rev-parse", "HEAD"], cwd=process_helpers.REPO,
                    capture_output=True).returncode:
    pytest.skip("needs a git checkout (the script exports revisions with git archive)")
  proc = subprocess.run(
      [sys.executable, "scripts/compare_revisions.py", "--config_file=configs/test.py",
       "--batch=2", "--rounds=3", '--config={"steps_per_call": 2}', "HEAD", "."],
      cwd=process_helpers.REPO, env=process_helpers.cpu_env(1), capture_output=True,
      text=True, timeout=process_helpers.TIMEOUT)
  assert proc.returncode == 0, proc.stderr[-2000:]
  rounds = [l for l in proc.stdout.splitlines() if l.startswith("round")]
  assert len(rounds) == 3
  for line in rounds:  # Both revisions' times per iteration (to 0.1 ms), and their ratio.
    assert re.search(r"HEAD +[\d.]+ ms +\. +[\d.]+ ms +ratio \d+\.\d{3} \(cpu \d+\.\d{3}\)$",
                     line), line
  for name in ("wall", "cpu"):
    faster = re.search(rf"^{name} *: time\(HEAD\) / time\(\.\) median [\d.]+ over 3 rounds; "
                       r"\. faster in (\d), HEAD faster in (\d)$", proc.stdout, re.M)
    assert faster and sum(map(int, faster.groups())) == 3, proc.stdout
