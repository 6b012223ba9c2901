"""Hyperparameter sweeps as data, run by `scripts/sweep.py --sweep=configs/sweeps/<name>.py`.

A sweep file defines `get_sweep() -> Sweep`: a base config (a `--config` value) and a list of
points, each a dict of config overrides that becomes `--config.<key>=<value>` flags and,
joined as `key=value,key=value`, the run's name (its workdir under `--workdir_root`).
"""
import dataclasses
import itertools
from typing import Any, Sequence


@dataclasses.dataclass(frozen=True)
class Sweep:
  """A base config and the points to run.

  Attributes:
    config: the `--config` value every point starts from, e.g. "configs/cifar10.py:subset".
    points: one dict of overrides per run, e.g. {"loss": "vanilla", "l1_weight": 10.0};
      nested keys are dotted ("model.norm"). Each point's keys, in order, name its run.
    overrides: applied to every point and left out of the run names (e.g. a shorter length).
  """
  config: str
  points: list[dict[str, Any]]
  overrides: dict[str, Any] = dataclasses.field(default_factory=dict)


def grid(axes: dict[str, Sequence[Any]]) -> list[dict[str, Any]]:
  """Every combination of the axes' values, the last axis varying fastest.

  Args:
    axes: config key -> the values to try, e.g. {"lambda_gp": [1.0, 10.0], "loss": [...]}.

  Returns:
    One point (key -> value, in the axes' order) per combination.
  """
  return [dict(zip(axes, values)) for values in itertools.product(*axes.values())]
