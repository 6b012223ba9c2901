"""colorize.transport: the fit map moves colours to the target's distribution, and no further."""
import io

import numpy as np
import pytest
import scipy.stats

from colorize import transport
from colorize.errors import UserError


def _source(n, seed):
  """Dull colours: a narrow, tilted Gaussian near gray."""
  z = np.random.default_rng(seed).normal(size=(n, 2))
  return z @ np.array([[6.0, 2.0], [0.0, 3.0]]) + [2.0, 5.0]


def _target(n, seed):
  """True colours: two clusters far apart (a green and an orange), unlike any Gaussian."""
  rng = np.random.default_rng(seed)
  centres = np.where(rng.random((n, 1)) < 0.3, [-40.0, 35.0], [25.0, 45.0])
  return centres + rng.normal(size=(n, 2)) * [8.0, 5.0]


def _sliced_distances(x, y, angles=np.linspace(0.1, np.pi, 7)):
  """1-D Wasserstein distances (scipy's) along directions the fit did not use."""
  return np.array([scipy.stats.wasserstein_distance(x @ d, y @ d)
                   for d in np.stack([np.cos(angles), np.sin(angles)], axis=1)])


def test_fit_moves_new_source_colours_to_the_target_distribution():
  fit = transport.fit(_source(50_000, 0), _target(40_000, 1))
  fresh, truth = _source(20_000, 2), _target(20_000, 3)  # Colours the fit has not seen.
  moved = transport.apply(fit, fresh, 1.0)
  before, after = _sliced_distances(fresh, truth), _sliced_distances(moved, truth)
  assert before.min() > 10.0
  assert after.max() < 1.0  # Two samples of one distribution differ by about 0.3 here.
  assert moved.dtype == np.float32 and moved.shape == fresh.shape


def test_a_source_already_distributed_as_the_target_stays():
  colours = _target(50_000, 4)
  moved = transport.apply(transport.fit(colours, _target(50_000, 5)), colours, 1.0)
  assert np.percentile(np.linalg.norm(moved - colours, axis=1), 99) < 3.0


def test_strength_moves_linearly_from_the_gained_colours_to_the_same_end():
  fit = transport.fit(_source(20_000, 6), _target(20_000, 7))
  colours = _source(500, 8).reshape(10, 50, 2)
  end = transport.apply(fit, colours, 1.0)
  for gain in (1.0, 0.5):
    np.testing.assert_allclose(transport.apply(fit, colours, 0.0, gain), gain * colours,
                               rtol=1e-6)
    np.testing.assert_allclose(transport.apply(fit, colours, 1.0, gain), end, rtol=1e-6)
    np.testing.assert_allclose(transport.apply(fit, colours, 0.25, gain),
                               gain * colours + 0.25 * (end - gain * colours), atol=1e-4)


def test_fit_on_scaled_predictions_is_the_same_map():
  """Why one map serves every chroma gain (transport.apply)."""
  source, target, colours = _source(20_000, 9), _target(20_000, 10), _source(300, 11)
  scaled = transport.fit(0.7 * source, target)
  np.testing.assert_allclose(transport.apply(scaled, 0.7 * colours, 1.0),
                             transport.apply(transport.fit(source, target), colours, 1.0),
                             atol=0.01)  # Ab units: far below 8-bit steps.


def test_bytes_round_trip(tmp_path):
  fit = transport.fit(_source(2_000, 12), _target(2_000, 13), iterations=3)
  path = tmp_path / "t.npz"
  path.write_bytes(transport.to_bytes(fit))
  loaded = transport.load(str(path))
  colours = _source(100, 14)
  np.testing.assert_array_equal(transport.apply(loaded, colours, 0.6),
                                transport.apply(fit, colours, 0.6))


def _two_groups(n, seed):
  """Predicted and true colours of two groups that want opposite moves, and their groups."""
  source = np.concatenate([_source(n, seed), _source(n, seed + 1)])
  truth = np.concatenate([_target(n, seed + 2), -_target(n, seed + 3)])
  return source, truth, np.repeat([0, 1], n)


def test_a_map_by_group_moves_each_group_to_its_own_true_colours():
  source, truth, groups = _two_groups(20_000, 20)
  fit = transport.fit_by_group(source, truth, groups, num_groups=2)
  assert fit.num_groups == 2 and transport.fit(source, truth).num_groups == 0
  fresh, fresh_truth, _ = _two_groups(10_000, 30)
  for g, rows in ((0, slice(None, 10_000)), (1, slice(10_000, None))):
    moved = transport.apply(fit, fresh[rows], 1.0, group=g)
    assert _sliced_distances(moved, fresh_truth[rows]).max() < 1.0
  # One map for both groups moves both to their mixture, the right place for neither.
  pooled = transport.apply(transport.fit(source, truth), fresh[:10_000], 1.0)
  assert _sliced_distances(pooled, fresh_truth[:10_000]).min() > 10.0


def test_a_group_too_small_for_its_own_map_borrows_the_map_of_all():
  source, truth, groups = _two_groups(5_000, 40)
  groups[:transport.MIN_GROUP_PIXELS - 1] = 2  # Group 2 has one pixel too few; group 3 none.
  fit = transport.fit_by_group(source, truth, groups, num_groups=4)
  every = transport.fit(source, truth)
  for g in (2, 3):
    np.testing.assert_array_equal(fit.source[g], every.source)
    np.testing.assert_array_equal(fit.target[g], every.target)
  assert not np.array_equal(fit.source[0], every.source)


def test_a_map_by_group_needs_a_group_and_one_of_every_pixel_none():
  source, truth, groups = _two_groups(2_000, 50)
  by_group = transport.fit_by_group(source, truth, groups, num_groups=2, iterations=3)
  for group in (None, 2, -1):
    with pytest.raises(ValueError, match=r"needs a group in \[0, 2\)"):
      transport.apply(by_group, source, 0.5, group=group)
  with pytest.raises(ValueError, match="not by group"):
    transport.apply(transport.fit(source, truth, iterations=3), source, 0.5, group=0)
  with pytest.raises(ValueError, match="one of each per pixel"):
    transport.fit_by_group(source, truth, groups[1:], num_groups=2)
  with pytest.raises(ValueError, match=r"groups must lie in \[0, 1\)"):
    transport.fit_by_group(source, truth, groups, num_groups=1)


def test_a_map_by_group_is_kept_and_read_back(tmp_path):
  source, truth, groups = _two_groups(2_000, 60)
  fit = transport.fit_by_group(source, truth, groups, num_groups=2, iterations=3)
  path = tmp_path / "t.npz"
  path.write_bytes(transport.to_bytes(fit))
  loaded = transport.load(str(path))
  assert loaded.num_groups == 2
  np.testing.assert_array_equal(transport.apply(loaded, source, 0.6, group=1),
                                transport.apply(fit, source, 0.6, group=1))


def _npy_bytes():
  buffer = io.BytesIO()
  np.save(buffer, np.zeros(3))
  return buffer.getvalue()


def _npz(path, knots=transport.KNOTS, value=0.0):
  np.savez(path, angles=np.zeros(2), source=np.full((2, 2, knots), value),
           target=np.zeros((2, 2, knots)))


@pytest.mark.parametrize("write", [
    lambda path: path.write_bytes(b"not an npz"),
    lambda path: path.write_bytes(b""),  # Truncated to nothing.
    lambda path: path.write_bytes(_npy_bytes()),  # An .npy array, not an archive.
    lambda path: _npz(path, knots=5),
    lambda path: np.savez(path, angles=np.zeros(2), source=np.zeros((0, 2, 2, transport.KNOTS)),
                          target=np.zeros((0, 2, 2, transport.KNOTS))),  # No group at all.
    lambda path: _npz(path, value=np.nan),
    lambda path: np.savez(path, angles=np.array(["x", "y"]), source=np.zeros((2, 2, 5)),
                          target=np.zeros((2, 2, 5))),  # Strings: no arithmetic on them.
], ids=["garbage", "empty", "npy", "shape", "no_group", "nan", "strings"])
def test_a_damaged_map_is_one_line_naming_the_file_and_the_fix(tmp_path, write):
  path = tmp_path / "t.npz"
  write(path)
  with pytest.raises(UserError) as e:
    transport.load(str(path))
  assert str(path) in str(e.value) and "delete it" in str(e.value)
  assert "\n" not in str(e.value)


def test_a_map_that_unpacks_too_large_is_refused_before_it_is_read(tmp_path, monkeypatch):
  path = tmp_path / "t.npz"
  path.write_bytes(transport.to_bytes(transport.fit(_source(100, 0), _target(100, 1))))
  monkeypatch.setattr(transport, "_MAX_BYTES", 1000)
  monkeypatch.setattr(np, "load", lambda *_: pytest.fail("read"))
  with pytest.raises(UserError, match="unpacks to .* bytes"):
    transport.load(str(path))


@pytest.mark.parametrize("source", [np.zeros((0, 2)), np.zeros((5, 3)),
                                    np.array([[0.0, np.nan]])])
def test_fit_refuses_colours_it_cannot_use(source):
  with pytest.raises(ValueError, match="source colours"):
    transport.fit(source, _target(10, 0))
