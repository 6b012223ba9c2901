"""In-process reliability tests: NaN/Inf steps, damaged checkpoints, a changed config, an
unwritable workdir, SIGTERM during start-up. (Killed and preempted processes:
tests/reliability_test.py.)"""
import functools
import json
import os
import shutil
import signal

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
from PIL import Image
import pytest

from colorize import inference
from colorize import input_pipeline
from colorize import preemption
from colorize import train
from colorize import train_step
from colorize import validation
from colorize import workdir as workdir_lib
from colorize.errors import UserError
from tests import helpers

# Restoring a damaged checkpoint leaves Orbax's failed read tasks to the garbage collector,
# which reports each as an unraisable exception: expected here, and not the code under test.
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


def _steps(workdir):
  return sorted(int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit())


def _restore(workdir, step, config=None):
  abstract = jax.eval_shape(functools.partial(train_step.create_train_state,
                                              config or helpers.config()), jax.random.key(0))
  manager = ocp.CheckpointManager((workdir / "checkpoints").resolve())
  return manager.restore(step, args=ocp.args.StandardRestore(abstract))


def _equal(a, b) -> bool:
  leaves_a, leaves_b = jax.tree.leaves(a), jax.tree.leaves(b)
  return len(leaves_a) == len(leaves_b) and all(
      np.array_equal(x, y) for x, y in zip(leaves_a, leaves_b))


def _finite(tree) -> bool:
  return all(np.all(np.isfinite(x)) for x in jax.tree.leaves(tree)
             if np.issubdtype(np.asarray(x).dtype, np.inexact))


@pytest.fixture
def nan_at_step_3(monkeypatch):
  """Makes iteration 3 produce NaN generator params (and, if asked, a NaN l1 metric)."""
  real = train_step.train_iteration

  def install(in_metrics: bool):
    def poisoned(state, images, key, *, hp, axis_name=None, labels=None):
      new_state, metrics = real(state, images, key, hp=hp, axis_name=axis_name, labels=labels)
      nan = jnp.where(new_state.step == 3, jnp.nan, 0.0)
      new_state = new_state.replace(
          gen_params=jax.tree.map(lambda p: p + nan, new_state.gen_params))
      if in_metrics:
        metrics = {**metrics, "l1": metrics["l1"] + nan}
      return new_state, metrics
    monkeypatch.setattr(train_step, "train_iteration", poisoned)
  return install


def test_nan_only_in_the_parameters_stops_naming_them(tmp_path, nan_at_step_3):
  # Every loss is finite, but the update was not (as with a NaN gradient): still caught.
  nan_at_step_3(in_metrics=False)
  config = helpers.config(num_train_steps=4, log_every_steps=1, checkpoint_every_steps=1)
  with pytest.raises(FloatingPointError, match=r"non-finite gen_params \(a parameter or "
                     r"optimizer moment: a NaN/Inf gradient\) at step 3; .* checkpoint is "
                     r"step 2"):
    train.train_and_evaluate(config, str(tmp_path))
  assert _steps(tmp_path) == [1, 2]
  assert _finite(_restore(tmp_path, 2))


def test_skip_drops_the_bad_step_keeps_the_state_and_counts_it(tmp_path, nan_at_step_3):
  nan_at_step_3(in_metrics=True)
  config = helpers.config(num_train_steps=4, log_every_steps=1, checkpoint_every_steps=1,
                   on_nonfinite="skip")
  train.train_and_evaluate(config, str(tmp_path))
  after_2, after_3 = _restore(tmp_path, 2), _restore(tmp_path, 3)
  # Step 3 changed nothing but the step counter (so step 4 draws fresh randomness).
  assert int(after_3.step) == 3
  assert _equal(after_3.replace(step=after_2.step), after_2)
  assert all(_finite(_restore(tmp_path, step)) for step in _steps(tmp_path))
  rows = [r for r in helpers.jsonl(tmp_path) if "skipped_steps" in r]
  assert [(r["step"], r["skipped_steps"]) for r in rows] == [(1, 0), (2, 0), (3, 1), (4, 0)]
  assert "l1" not in rows[2]  # No step of that window was kept: no mean to log.
  assert all(np.isfinite(v) for r in rows for v in r.values())


# Step 1's update (lr 1e6) is finite but so large that the generator's outputs overflow, so
# the final eval and sample grid see NaN colours: expected, and not what this test checks.
@pytest.mark.filterwarnings("ignore:invalid value encountered in cast:RuntimeWarning")
def test_skip_survives_a_critic_that_blows_up(tmp_path):
  # A real divergence, not a hook: from step 2 every update is non-finite and dropped.
  config = helpers.config(num_train_steps=4, log_every_steps=1, on_nonfinite="skip")
  config.optimizer.generator_lr = config.optimizer.critic_lr = 1e6
  train.train_and_evaluate(config, str(tmp_path))
  assert sum(r.get("skipped_steps", 0) for r in helpers.jsonl(tmp_path)) == 3
  assert _finite(_restore(tmp_path, 4, config))


def _run_then_damage(tmp_path, damage):
  """A 4-step run (checkpoints 2 and 4) whose step 4 is then damaged; returns its state."""
  state = train.train_and_evaluate(helpers.config(), str(tmp_path))
  damage(tmp_path / "checkpoints" / "4")
  return state


def _truncate_data(step_dir):
  for path in (step_dir / "default" / "ocdbt.process_0" / "d").iterdir():
    with open(path, "r+b") as f:
      f.truncate(os.path.getsize(path) // 2)


def _remove_data(step_dir):
  shutil.rmtree(step_dir / "default" / "ocdbt.process_0" / "d")


def _remove_metadata(step_dir):
  (step_dir / "default" / "_METADATA").unlink()


@pytest.mark.parametrize("damage", [_truncate_data, _remove_data, _remove_metadata])
def test_unreadable_newest_checkpoint_falls_back_to_the_previous(tmp_path, damage, caplog):
  straight = _run_then_damage(tmp_path, damage)
  resumed = train.train_and_evaluate(helpers.config(), str(tmp_path))
  assert "Checkpoint step 4 in" in caplog.text and "cannot be restored" in caplog.text
  assert "Resumed from step 2 instead of step 4" in caplog.text
  # Steps 3 and 4 were trained again, to the same result; the damaged step was set aside.
  assert _equal(resumed, straight)
  assert _steps(tmp_path) == [2, 4] and _equal(_restore(tmp_path, 4), straight)
  assert os.listdir(tmp_path / "damaged_checkpoints") == ["4"]


def test_no_restorable_checkpoint_is_an_error_not_a_fresh_start(tmp_path):
  _run_then_damage(tmp_path, _remove_metadata)
  _remove_metadata(tmp_path / "checkpoints" / "2")
  with pytest.raises(UserError, match=r"no checkpoint in .* can be restored \(step 4: .*; "
                                      r"step 2: .*\); move the directory away"):
    train.train_and_evaluate(helpers.config(), str(tmp_path))
  assert _steps(tmp_path) == [2, 4] and not (tmp_path / "damaged_checkpoints").exists()


def test_a_save_cut_short_is_never_restored_and_is_removed(tmp_path):
  straight = train.train_and_evaluate(helpers.config(), str(tmp_path))
  # What a kill in the middle of writing step 6 leaves: a partial temporary directory.
  partial = tmp_path / "checkpoints" / "6.orbax-checkpoint-tmp"
  shutil.copytree(tmp_path / "checkpoints" / "4", partial)
  _truncate_data(partial)
  state = train.train_and_evaluate(helpers.config(num_train_steps=6), str(tmp_path))
  assert int(state.step) == 6 and not partial.exists() and _steps(tmp_path) == [2, 4, 6]
  assert _equal(_restore(tmp_path, 4), straight)


def test_a_changed_model_or_data_is_refused_with_a_one_line_diff(tmp_path):
  train.train_and_evaluate(helpers.config(num_train_steps=2), str(tmp_path))
  config = helpers.config(num_train_steps=4, seed=1, batch_size=16)
  config.model.width = 8
  with pytest.raises(UserError) as info:
    train.train_and_evaluate(config, str(tmp_path))
  assert str(info.value) == (
      f"workdir {tmp_path} was trained with a different model or data: batch_size=8 -> 16, "
      "model.width=4 -> 8, seed=0 -> 1; use a new --workdir, or pass "
      "--config.allow_config_change=True to continue this run with the new values")
  assert _steps(tmp_path) == [2]


def test_allow_config_change_continues_and_records_the_new_config(tmp_path, caplog):
  train.train_and_evaluate(helpers.config(num_train_steps=2), str(tmp_path))
  state = train.train_and_evaluate(
      helpers.config(num_train_steps=4, seed=1, allow_config_change=True), str(tmp_path))
  assert int(state.step) == 4 and "seed=0 -> 1; continuing anyway" in caplog.text
  assert json.loads((tmp_path / "config.json").read_text())["seed"] == 1


def test_what_may_change_on_resume():
  saved = json.loads(helpers.config().to_json())
  changed = helpers.config(num_train_steps=100, log_every_steps=7, checkpoint_every_steps=9,
                    l1_weight=10.0, data_dir="/elsewhere", on_nonfinite="skip")
  changed.optimizer.critic_lr = 1e-5
  changed.model.conv_impl = "matmul"
  assert workdir_lib.run_defining_changes(saved, json.loads(changed.to_json())) == []
  # A workdir from before a model key was added resumes with its value, not others.
  for key in validation.ADDED_KEYS:
    del saved["model"][key.removeprefix("model.")]
  assert workdir_lib.run_defining_changes(saved, json.loads(helpers.config().to_json())) == []
  assert workdir_lib.run_defining_changes(saved, json.loads(helpers.config(
      model=dict(head="classification")).to_json())) == ["model.head='regression' -> "
                                                         "'classification'"]
  for key, value in [("dataset", "cifar10"), ("image_size", 16), ("n_critic", 2),
                     ("loss", "lsgan"), ("color_space", "rgb"), ("ema_decay", 0.9)]:
    assert workdir_lib.run_defining_changes(
        saved, json.loads(helpers.config(**{key: value}).to_json()))[0].startswith(f"{key}=")


def test_an_unwritable_workdir_is_refused_at_start_up(tmp_path):
  # (Tests run as root, where permissions do not stop writes; a path under a file fails for
  # everyone. tests/reliability_test.py also mounts a read-only and a full filesystem.)
  (tmp_path / "file").write_text("")
  workdir = tmp_path / "file" / "run"
  with pytest.raises(UserError, match=rf"^workdir {workdir} is not writable \(Not a "
                                      r"directory\); free some space"):
    train.train_and_evaluate(helpers.config(), str(workdir))


def test_a_disk_too_small_for_one_checkpoint_is_refused_at_start_up(tmp_path, monkeypatch):
  monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(1, 1, 1000))
  with pytest.raises(UserError, match=r"has 0.0 MB free, and one checkpoint needs about "
                                      r"0.1 MB"):
    train.train_and_evaluate(helpers.config(), str(tmp_path))
  assert not _steps(tmp_path)


def test_sigterm_handler_is_installed_only_while_training():
  before = signal.getsignal(signal.SIGTERM)
  with preemption.Watch() as watch:
    os.kill(os.getpid(), signal.SIGTERM)  # Handled between two bytecodes: no sleep needed.
    assert watch.stop_requested == "SIGTERM"
  assert signal.getsignal(signal.SIGTERM) is before


def test_sigterm_during_start_up_stops_before_training(tmp_path, monkeypatch, caplog):
  train.train_and_evaluate(helpers.config(num_train_steps=2), str(tmp_path))
  real = input_pipeline.train_batches

  def batches_then_sigterm(*args, **kwargs):  # As if the notice came while compiling.
    os.kill(os.getpid(), signal.SIGTERM)
    return real(*args, **kwargs)

  monkeypatch.setattr(input_pipeline, "train_batches", batches_then_sigterm)
  state = train.train_and_evaluate(helpers.config(num_train_steps=4), str(tmp_path))
  assert int(state.step) == 2 and _steps(tmp_path) == [2]
  assert "SIGTERM during start-up: stopping at step 2" in caplog.text


def _snapshot(workdir) -> dict[str, bytes]:
  """Every file of a workdir and its bytes (run.lock, which says who ran last, left out)."""
  return {str(p.relative_to(workdir)): p.read_bytes() for p in sorted(workdir.rglob("*"))
          if p.is_file() and p.name != workdir_lib.LOCK_FILE}


def test_a_resume_that_cannot_restore_changes_nothing_in_the_workdir(tmp_path):
  train.train_and_evaluate(helpers.config(num_train_steps=2), str(tmp_path))
  before = _snapshot(tmp_path)
  changed = helpers.config(num_train_steps=4, allow_config_change=True)
  changed.model.width = 8  # Other shapes: no checkpoint of this run can hold them.
  with pytest.raises(UserError, match=r"cannot be restored with the changed config \("
                                      r"model.width=4 -> 8; .*the workdir is unchanged"):
    train.train_and_evaluate(changed, str(tmp_path))
  assert _snapshot(tmp_path) == before
  # The original command still resumes it, and inference still reads it.
  assert int(train.train_and_evaluate(helpers.config(), str(tmp_path)).step) == 4
  assert inference.Colorizer.from_workdir(str(tmp_path)).generator.step == 4


def test_an_eval_that_fails_does_not_cost_the_checkpoint(tmp_path, monkeypatch):
  def failing_eval(*args):
    raise ZeroDivisionError("an eval bug")
  real = train._evaluate
  monkeypatch.setattr(train, "_evaluate", failing_eval)
  with pytest.raises(ZeroDivisionError):
    train.train_and_evaluate(helpers.config(), str(tmp_path))  # Eval and checkpoint at 2.
  assert _steps(tmp_path) == [2]
  monkeypatch.setattr(train, "_evaluate", real)
  assert int(train.train_and_evaluate(helpers.config(), str(tmp_path)).step) == 4


def test_metrics_jsonl_with_bytes_that_are_not_utf8_does_not_block_the_resume(tmp_path):
  train.train_and_evaluate(helpers.config(num_train_steps=2), str(tmp_path))
  with (tmp_path / "metrics.jsonl").open("ab") as f:
    f.write(b'{"step": 1, "l1": \xff\xfe}\n')
  train.train_and_evaluate(helpers.config(), str(tmp_path))
  steps = [row["step"] for row in helpers.jsonl(tmp_path) if "l1" in row]
  assert steps == [2, 4]


def test_an_empty_workdir_is_refused_not_the_current_directory(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  with pytest.raises(UserError, match="--workdir is empty"):
    train.train_and_evaluate(helpers.config(), " ")
  assert os.listdir(tmp_path) == []


def test_an_all_grayscale_eval_set_trains_to_its_checkpoints(tmp_path):
  # Black-and-white photos: the colourfulness ratio is undefined on them (no colour to
  # match), which once raised ZeroDivisionError at every eval, before that step's save.
  photos = tmp_path / "photos"
  photos.mkdir()
  rng = np.random.default_rng(0)
  for i in range(12):
    Image.fromarray(rng.integers(0, 256, (8, 8), np.uint8)).save(photos / f"{i:02d}.png")
  workdir = tmp_path / "run"
  state = train.train_and_evaluate(helpers.config(dataset=f"folder:{photos}"), str(workdir))
  assert int(state.step) == 4 and _steps(workdir) == [2, 4]
  evals = [row for row in helpers.jsonl(workdir) if "eval_l1" in row]
  assert [row["step"] for row in evals] == [2, 4]
