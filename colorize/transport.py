"""Colour transport after training: the predicted colours moved towards the true distribution.

A model trained for accuracy predicts, where it is unsure, colours near the mean: its colours
are right on average and too few, too gray. Freirich et al. 2021 ("A theory of the
distortion-perception tradeoff in Wasserstein space") show that for squared error the best
estimator whose outputs are distributed as the truth is the minimum-error one followed by the
optimal transport map T from its outputs' distribution to the truth's, and that the best
estimators in between are x + strength * (T(x) - x): error grows with strength squared, while
the distribution moves linearly towards the truth (Ohayon et al. 2025 build a restoration
method on it). Here the distributions are of single pixels' ab, so the map moves each
predicted colour on its own, by its value alone; it cannot put a colour on the right object,
but it moves predicted colours to where true ones are, which a chroma gain (ab times a
constant) cannot: it changes hues' shares, not only their strength.

The map is fit between the run's predictions on its own training split and those images'
true ab, by iterative distribution transfer (Pitié et al. 2007, "Automated colour grading
using colour distribution transfer"): rotate the ab plane, match each axis's 1-D distribution
by its quantiles, repeat at other angles. Its result is distributed as the target (up to the
quantile grid); it is close to, not exactly, the optimal map. What it does to the scores is
measured in docs/results.md.

A map by group (`fit_by_group`) is one such map per group of pixels, each fit on its group's
predicted and true colours alone: with the group the class that the generator's own classifier
predicts for each image, greens move towards where frogs' colours are and blues towards
ships', where one map for every image moves all alike: Freirich et al.'s construction given a
little of what the image shows, not only each pixel's colour.
"""
import dataclasses
import io

import numpy as np

from colorize import workdir
from colorize.errors import UserError

ITERATIONS = 20  # Rotations; the moved colours' distribution has settled well before.
KNOTS = 1001  # Quantiles per axis and iteration: a piecewise-linear 1-D map.
_GOLDEN = (np.sqrt(5.0) - 1.0) / 2.0  # Successive angles spread evenly over the quarter turn.
# A group with fewer pixels than this borrows the map of all pixels: its own quantiles would be
# those of a handful of colours.
MIN_GROUP_PIXELS = KNOTS
# A kept map is data from a workdir: one that unpacks to more than this (a map is
# ITERATIONS x 4 x KNOTS float64s, under a megabyte) is refused before it is read.
_MAX_BYTES = 1 << 26


@dataclasses.dataclass(frozen=True)
class Transport:
  """A fit map: at iteration k, rotate by angles[k], then map each axis's quantiles.

  Attributes:
    angles: [K] radians; the ab plane is rotated so that axis j is (cos, sin) turned by j * 90.
    source: [K, 2, KNOTS] the moved predictions' quantiles along each rotated axis; [G, K, 2,
      KNOTS] for a map by group (`fit_by_group`), group g's map being source[g], target[g].
    target: [K, 2, KNOTS] the true colours' quantiles along the same axes ([G, ...] likewise).
  """
  angles: np.ndarray
  source: np.ndarray
  target: np.ndarray

  @property
  def num_groups(self) -> int:
    """G for a map by group, 0 for one map of every pixel."""
    return len(self.source) if self.source.ndim == 4 else 0


def _rotation(angle: float) -> np.ndarray:
  """[2, 2]: ab @ rotation gives the coordinates along the two axes of `angle`."""
  c, s = np.cos(angle), np.sin(angle)
  return np.array([[c, -s], [s, c]])


def _increasing(quantiles: np.ndarray) -> np.ndarray:
  """Quantiles made strictly increasing (np.interp's knots); ties become tiny steps."""
  return np.maximum.accumulate(quantiles) + np.arange(len(quantiles)) * 1e-9


def fit(source_N2: np.ndarray, target_M2: np.ndarray, iterations: int = ITERATIONS) -> Transport:
  """Fits the map that moves the colours `source_N2` to be distributed as `target_M2`.

  Args:
    source_N2: predicted ab [N, 2] (Lab units) of the training split's pixels.
    target_M2: true ab [M, 2] of the same (or other) pixels; M need not equal N.
    iterations: rotations (module docstring).

  Returns:
    The Transport; `apply(t, source_N2, 1)` is distributed as `target_M2`.

  Raises:
    ValueError: an empty or non-finite set of colours.
  """
  levels = np.linspace(0.0, 1.0, KNOTS)
  x = np.asarray(source_N2, np.float64)
  y = np.asarray(target_M2, np.float64)
  for name, ab in (("source", x), ("target", y)):
    if ab.ndim != 2 or ab.shape[1] != 2 or not len(ab) or not np.isfinite(ab).all():
      raise ValueError(f"{name} colours must be a non-empty finite [N, 2] array, got "
                       f"shape {ab.shape}")
  angles = (np.arange(iterations) * _GOLDEN % 1.0) * np.pi / 2
  source, target = [], []
  for angle in angles:
    rotation = _rotation(angle)
    xr, yr = x @ rotation, y @ rotation
    source.append([_increasing(np.quantile(xr[:, j], levels)) for j in range(2)])
    target.append([np.quantile(yr[:, j], levels) for j in range(2)])
    x = _step(xr, source[-1], target[-1]) @ rotation.T
  return Transport(angles, np.array(source), np.array(target))


def fit_by_group(source_N2: np.ndarray, target_N2: np.ndarray, groups_N: np.ndarray,
                 num_groups: int, iterations: int = ITERATIONS) -> Transport:
  """Fits one map per group, each between the group's own predicted and true colours.

  Args:
    source_N2: predicted ab [N, 2] (Lab units).
    target_N2: the same pixels' true ab [N, 2].
    groups_N: each pixel's group, int in [0, num_groups).
    num_groups: G; a group with fewer than MIN_GROUP_PIXELS pixels gets the map of all.
    iterations: rotations (module docstring).

  Returns:
    The Transport by group: `apply(t, ab, 1, group=g)` moves group g's predictions to be
    distributed as its true colours.

  Raises:
    ValueError: sets of other lengths, groups out of range, or what `fit` refuses.
  """
  groups_N = np.asarray(groups_N)
  if not len(source_N2) == len(target_N2) == len(groups_N):
    raise ValueError(f"{len(source_N2)} predicted, {len(target_N2)} true colours and "
                     f"{len(groups_N)} groups: one of each per pixel")
  if num_groups < 1 or len(groups_N) and not 0 <= groups_N.min() <= groups_N.max() < num_groups:
    raise ValueError(f"groups must lie in [0, {num_groups}) for {num_groups} groups")
  every = fit(source_N2, target_N2, iterations)
  maps = [fit(source_N2[m], target_N2[m], iterations)
          if (m := groups_N == g).sum() >= MIN_GROUP_PIXELS else every
          for g in range(num_groups)]
  return Transport(every.angles, np.stack([m.source for m in maps]),
                   np.stack([m.target for m in maps]))


def _step(rotated_N2: np.ndarray, source_2K: np.ndarray, target_2K: np.ndarray) -> np.ndarray:
  """Each rotated axis mapped from its source quantiles to its target quantiles."""
  return np.stack([np.interp(rotated_N2[:, j], source_2K[j], target_2K[j]) for j in range(2)],
                  axis=1)


def apply(transport: Transport, ab: np.ndarray, strength: float,
          chroma_gain: float = 1.0, group: int | None = None) -> np.ndarray:
  """Moves predicted colours `strength` of the way along the map, from their scaled chroma.

  The fit is equivariant to scaling its source (each axis's quantiles scale with it), so the
  map fit on `ab` also serves `chroma_gain * ab`: T(ab) is where both end.

  Args:
    transport: from `fit`, on predictions decoded as `ab` is (not scaled).
    ab: predicted ab [..., 2] in Lab units.
    strength: 0 leaves the colours at `chroma_gain * ab`; 1 moves them to T(ab), distributed
      as the fit's target.
    chroma_gain: where the path starts (a chroma gain below 1 starts nearer the colours'
      mean, where the per-pixel error of the path grows more slowly; docs/results.md).
    group: for a map by group, which group's map moves `ab` (every colour given is moved by
      that one); None for a map of every pixel.

  Returns:
    float32 ab of `ab`'s shape: g * ab + strength * (T(ab) - g * ab).

  Raises:
    ValueError: a group for a map of every pixel, none (or one out of range) for a map by
      group.
  """
  source_maps, target_maps = transport.source, transport.target
  if transport.num_groups:
    if group is None or not 0 <= group < transport.num_groups:
      raise ValueError(f"a colour transport by group needs a group in [0, "
                       f"{transport.num_groups}), got {group}")
    source_maps, target_maps = source_maps[group], target_maps[group]
  elif group is not None:
    raise ValueError(f"group {group} for a colour transport of every pixel (not by group)")
  flat = np.asarray(ab, np.float64).reshape(-1, 2)
  start = chroma_gain * flat
  if strength:
    moved = flat
    for angle, source, target in zip(transport.angles, source_maps, target_maps):
      rotation = _rotation(angle)
      moved = _step(moved @ rotation, source, target) @ rotation.T
    start = start + strength * (moved - start)
  return start.astype(np.float32).reshape(np.shape(ab))


def to_bytes(transport: Transport) -> bytes:
  """`transport` as the bytes of an .npz file (for `atomic.write_bytes`)."""
  buffer = io.BytesIO()
  np.savez(buffer, **dataclasses.asdict(transport))
  return buffer.getvalue()


def load(path: str) -> Transport:
  """Reads a map written as `to_bytes` gives it.

  Raises:
    UserError: the file is missing, unreadable or not a colour transport (named).
  """
  try:
    arrays = workdir.read_arrays(path, _MAX_BYTES)
    transport = Transport(**{k.name: arrays[k.name] for k in dataclasses.fields(Transport)})
  except (KeyError, ValueError, TypeError) as e:
    raise UserError(f"{path}: not a readable colour transport ({type(e).__name__}: {e}); "
                    "delete it and it is fit again") from None
  k = len(transport.angles)
  shape = transport.source.shape[:-3] + (k, 2, KNOTS)
  if (transport.source.ndim not in (3, 4) or transport.source.shape != shape
      or transport.target.shape != shape or not transport.source.size):
    raise UserError(f"{path}: a colour transport of another shape than this version's "
                    f"({k} x 2 x {KNOTS} knots); delete it and it is fit again")
  if not all(np.isfinite(x).all() for x in dataclasses.astuple(transport)):
    raise UserError(f"{path}: a colour transport with non-finite values; delete it and it is "
                    "fit again")
  return transport
