"""Tests of colorize.inference: restoring a workdir, the Python API on arrays, decoding files."""
import functools
import json
import shutil

import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp
from PIL import Image
import pytest

import colorize
from colorize import color
from colorize import evaluate
from colorize import inference
from colorize import restore
from colorize import train
from colorize import train_step
from colorize import validation
from colorize.errors import UserError
from configs import test as test_config


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
  """A tiny trained run with an EMA and checkpoints at steps 1 and 2 (shared by the module)."""
  path = tmp_path_factory.mktemp("run")
  config = test_config.get_config()
  config.update(num_train_steps=2, checkpoint_every_steps=1, ema_decay=0.5)
  train.train_and_evaluate(config, str(path))
  return path


@pytest.fixture(scope="module")
def colorizer(workdir):
  return colorize.Colorizer.from_workdir(str(workdir), batch_size=4)


def _full_state(workdir, step):
  """The whole TrainState of a checkpoint, restored the way train.py does."""
  config = restore.read_config(str(workdir))
  abstract = jax.eval_shape(functools.partial(train_step.create_train_state, config),
                            jax.random.key(0))
  manager = ocp.CheckpointManager((workdir / "checkpoints").resolve())
  return manager.restore(step, args=ocp.args.StandardRestore(abstract))


def _trees_equal(a, b):
  return all(jax.tree.leaves(jax.tree.map(np.array_equal, a, b)))


def _lightness(rgb01):
  return np.asarray(color.rgb_to_lab(rgb01))[..., 0]


def _assert_same_lightness(rgb01_in, rgb_uint8_out):
  """L out == L in at every pixel, up to the output's 8-bit rounding (< 0.5 in L)."""
  error = np.abs(_lightness(rgb01_in) - _lightness(rgb_uint8_out / 255.0))
  assert error.max() < 0.5


def _copy_with_config(workdir, tmp_path, **changes):
  copy = tmp_path / "copy"
  shutil.copytree(workdir, copy)
  config = json.loads((copy / "config.json").read_text())
  for dotted, value in changes.items():
    *parents, key = dotted.split(".")
    node = config
    for parent in parents:
      node = node[parent]
    node[key] = value
  (copy / "config.json").write_text(json.dumps(config))
  return copy


def test_config_json_round_trip_builds_the_same_state():
  config = test_config.get_config()
  config.sample_epochs = (1, 3)
  loaded = ml_collections.ConfigDict(json.loads(config.to_json()))
  assert loaded.sample_epochs == [1, 3]  # JSON has no tuples: the one thing that changes.
  def build(c):
    return jax.eval_shape(functools.partial(train_step.create_train_state, c),
                          jax.random.key(0))
  original, restored = build(config), build(loaded)
  assert jax.tree.structure(original) == jax.tree.structure(restored)
  assert jax.tree.leaves(original) == jax.tree.leaves(restored)


def test_restores_latest_or_given_step_with_ema(workdir, colorizer):
  assert colorizer.generator.step == 2
  state = _full_state(workdir, 2)
  assert _trees_equal(colorizer.generator.variables["params"], state.ema_params)
  assert not _trees_equal(state.ema_params, state.gen_params)
  # The statistics the trainer recomputed for the EMA weights, not the raw weights' ones.
  assert _trees_equal(colorizer.generator.variables["batch_stats"], state.ema_batch_stats)
  assert not _trees_equal(state.ema_batch_stats, state.gen_batch_stats)
  first = restore.restore_generator(str(workdir), step=1)
  assert first.step == 1
  assert _trees_equal(first.variables["params"], _full_state(workdir, 1).ema_params)


def test_uses_generator_params_without_ema(workdir, tmp_path):
  copy = _copy_with_config(workdir, tmp_path, ema_decay=0.0)
  generator = restore.restore_generator(str(copy))
  assert _trees_equal(generator.variables["params"], _full_state(workdir, 2).gen_params)
  assert _trees_equal(generator.variables["batch_stats"], _full_state(workdir, 2).gen_batch_stats)


def test_a_config_json_from_before_the_classification_head_reads_as_regression(workdir,
                                                                               tmp_path):
  copy = tmp_path / "old"
  shutil.copytree(workdir, copy)
  config = json.loads((copy / "config.json").read_text())
  for key in validation.ADDED_KEYS:
    del config["model"][key.removeprefix("model.")]
  (copy / "config.json").write_text(json.dumps(config))
  assert restore.read_config(str(copy)).model.head == "regression"
  assert restore.restore_generator(str(copy)).step == 2


def test_workdir_without_config_or_checkpoint(tmp_path, workdir):
  with pytest.raises(UserError, match=f"{tmp_path}: no config.json"):
    restore.restore_generator(str(tmp_path))
  shutil.copy(workdir / "config.json", tmp_path / "config.json")
  with pytest.raises(UserError, match=f"^{tmp_path}: no checkpoint in"):
    restore.restore_generator(str(tmp_path))
  with pytest.raises(UserError, match=r"no checkpoint at step 7 \(available: 1, 2\)"):
    restore.restore_generator(str(workdir), step=7)


@pytest.mark.parametrize("key,value,found", [
    ("model.width", 8, r"\['ema_batch_stats'\]\['BatchNorm_2'\]\['mean'\] is shape \(4,\) on disk"),
    # Without norm layers the convolutions get biases, which are not in the checkpoint.
    ("model.norm", "none", r"\['ema_params'\]\['Conv4x4_1'\]\['bias'\] is missing on disk"),
])
def test_incompatible_config_is_one_line_naming_the_workdir(workdir, tmp_path, key, value,
                                                            found):
  copy = _copy_with_config(workdir, tmp_path, **{key: value})
  with pytest.raises(UserError,
                     match=f"^{copy}: checkpoint 2 does not match config.json: {found}"
                     ) as error:
    restore.restore_generator(str(copy))
  assert "\n" not in str(error.value)


def _gray(rng, shape):
  return rng.integers(0, 256, shape, np.uint8)


@pytest.mark.parametrize("make", [
    lambda rng: _gray(rng, (8, 8)),
    lambda rng: _gray(rng, (1, 37)),
    lambda rng: _gray(rng, (23, 1)),
    lambda rng: _gray(rng, (3, 700)),  # Very wide.
    lambda rng: _gray(rng, (45, 30, 1)),
    lambda rng: _gray(rng, (19, 26, 3)),  # Colour in: recoloured from its lightness.
    lambda rng: rng.integers(0, 65536, (17, 9), np.uint16),
    lambda rng: rng.random((12, 20, 3)).astype(np.float32),
], ids=["8x8", "1xN", "Nx1", "very_wide", "HxWx1", "rgb", "uint16", "float"])
@pytest.mark.parametrize("native", [False, True], ids=["resized", "native"])
def test_any_size_keeps_size_and_lightness(colorizer, make, native):
  image = make(np.random.default_rng(0))
  colorizer.native = native
  try:
    out = colorizer(image)
  finally:
    colorizer.native = False
  assert out.shape == image.shape[:2] + (3,) and out.dtype == np.uint8
  scale = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(image.dtype, 1.0)
  rgb_in = np.broadcast_to((image / scale).reshape(image.shape[:2] + (-1,)),
                           image.shape[:2] + (3,))
  _assert_same_lightness(rgb_in, out)


def test_alpha_is_kept(colorizer):
  rng = np.random.default_rng(1)
  rgba, gray_alpha = _gray(rng, (10, 14, 4)), _gray(rng, (6, 5, 2))
  out_rgba, out_la = colorizer.colorize_batch([rgba, gray_alpha])
  assert out_rgba.shape == (10, 14, 4) and np.array_equal(out_rgba[..., 3], rgba[..., 3])
  assert out_la.shape == (6, 5, 4) and np.array_equal(out_la[..., 3], gray_alpha[..., 1])


def test_batches_equal_single_images_and_color_is_added(colorizer):
  rng = np.random.default_rng(2)
  images = [_gray(rng, (9 + i, 12, 3)) for i in range(6)]  # 2 model calls at batch 4.
  batched = colorizer.colorize_batch(images)
  for image, out in zip(images, batched):
    assert np.array_equal(out, colorizer(image))
  # A gray image comes back with chroma: the channels differ somewhere.
  assert np.ptp(batched[0].astype(int), axis=-1).max() > 0
  # Every size ran through the one compiled model shape.
  compiled = inference._predict_ab._cache_size()  # pylint: disable=protected-access
  colorizer.colorize_batch([_gray(rng, (h, w)) for h, w in [(3, 90), (64, 48), (1, 1)]])
  assert inference._predict_ab._cache_size() == compiled  # pylint: disable=protected-access


def test_rgb_color_space_model():
  config = test_config.get_config()
  config.color_space = "rgb"
  state = train_step.create_train_state(config, jax.random.key(0))
  generator = restore.Generator(
      module=state.generator, variables={"params": state.gen_params,
                                         "batch_stats": state.gen_batch_stats},
      color_space="rgb", image_size=config.image_size, step=0)
  image = _gray(np.random.default_rng(3), (20, 11))
  out = inference.Colorizer(generator)(image)
  assert out.shape == (20, 11, 3)
  _assert_same_lightness(np.repeat(image[..., None] / 255.0, 3, -1), out)


def test_a_classification_run_colorizes(tmp_path):
  config = test_config.get_config()
  config.update(num_train_steps=1, checkpoint_every_steps=1)
  config.model.head = "classification"
  train.train_and_evaluate(config, str(tmp_path))
  colorizer = colorize.Colorizer.from_workdir(str(tmp_path))
  assert colorizer.generator.module.head == "classification"
  image = _gray(np.random.default_rng(5), (12, 10))
  out = colorizer(image)
  assert out.shape == (12, 10, 3)
  _assert_same_lightness(np.repeat(image[..., None] / 255.0, 3, -1), out)
  # Decoded at another temperature: the lower, the nearer the most likely bin's colour.
  chroma = {}
  for temperature in (1.0, 0.38, 0.01):
    ab = colorize.Colorizer.from_workdir(str(tmp_path), temperature=temperature).predict_ab(
        np.repeat(image[None, :8, :8, None], 3, -1))
    chroma[temperature] = float(np.linalg.norm(ab, axis=-1).mean())
  assert chroma[1.0] < chroma[0.38] < chroma[0.01]
  with pytest.raises(ValueError, match="temperature 0.0: give a finite number > 0"):
    colorize.Colorizer(colorizer.generator, temperature=0.0)


def test_a_temperature_for_a_regression_run_is_refused(workdir):
  with pytest.raises(UserError, match=f"^{workdir}: a temperature \\(0.5\\) applies to a "
                     "classification head"):
    colorize.Colorizer.from_workdir(str(workdir), temperature=0.5)


def test_pillow_image_input(colorizer):
  image = Image.fromarray(_gray(np.random.default_rng(4), (7, 9, 3))).convert("P")
  assert colorizer(image).shape == (7, 9, 3)


def test_rejects_bad_arrays(colorizer):
  with pytest.raises(ValueError, match="shape"):
    colorizer(np.zeros((4, 0), np.uint8))
  with pytest.raises(ValueError, match="dtype"):
    colorizer(np.zeros((4, 4), np.int64))


def test_chroma_gain_scales_chroma_at_the_same_hue_and_lightness(colorizer):
  image = np.random.default_rng(5).integers(0, 256, (12, 10, 3), np.uint8)
  outputs = {gain: colorize.Colorizer(colorizer.generator, chroma_gain=gain)(image)
             for gain in (0.0, 1.0, 10.0)}
  # Gain 0 is the gray baseline: the input's L with ab = 0.
  gray = evaluate.baseline_outputs(image[None], (0.0, 0.0))[0]
  assert np.abs(outputs[0.0].astype(int) - gray).max() <= 1
  lab = {gain: np.asarray(color.rgb_to_lab(out / 255.0)) for gain, out in outputs.items()}
  chroma = {gain: np.hypot(x[..., 1], x[..., 2]) for gain, x in lab.items()}
  assert chroma[0.0].max() < 1.0 < chroma[1.0].mean() < chroma[10.0].mean()
  hue = {gain: np.angle(x[..., 1] + 1j * x[..., 2]) for gain, x in lab.items()}
  # The hue stays (8-bit rounding turns that of a faint colour by a few degrees); a gain of
  # one channel only would turn it by tens of degrees.
  turn = np.abs(np.angle(np.exp(1j * (hue[10.0] - hue[1.0]))))[chroma[1.0] > 2]
  assert turn.size and np.median(turn) < np.radians(10)
  for out in outputs.values():
    _assert_same_lightness(image / 255.0, out)
  with pytest.raises(ValueError, match="chroma_gain"):
    colorize.Colorizer(colorizer.generator, chroma_gain=-1.0)


def test_transport_moves_colours_towards_the_training_split_at_the_same_lightness(workdir,
                                                                                 colorizer):
  """A model trained for two steps is dull; moved all the way, its colours are as vivid as
  the training split's, and the output's L is still the input's."""
  image = np.random.default_rng(7).integers(0, 256, (12, 10, 3), np.uint8)
  moved = colorize.Colorizer.from_workdir(str(workdir), transport_strength=1.0)
  assert moved.transport is not None
  chroma = {name: np.hypot(*np.moveaxis(np.asarray(color.rgb_to_lab(c(image) / 255.0))[..., 1:],
                                        -1, 0)).mean()
            for name, c in (("own", colorizer), ("moved", moved))}
  assert chroma["moved"] > 2 * chroma["own"]
  _assert_same_lightness(image / 255.0, moved(image))
  with pytest.raises(ValueError, match="needs a transport"):
    colorize.Colorizer(colorizer.generator, transport_strength=0.5)


def test_transport_fit_keeps_a_fixed_number_of_pixels_per_image(workdir, colorizer,
                                                                monkeypatch):
  """Larger images are sampled, so the fit's memory does not grow with the training size."""
  monkeypatch.setattr(inference, "_TRANSPORT_PIXELS", 8 * 10)
  seen = []
  monkeypatch.setattr(inference.transport_lib, "fit", lambda *sets: seen.extend(sets))
  inference.fit_transport(colorizer, restore.read_config(str(workdir)), num_images=8)
  assert [x.shape for x in seen] == [(80, 2), (80, 2)]  # 10 of each 8x8 image's 64 pixels.


@pytest.fixture(scope="module")
def classifier_workdir(tmp_path_factory):
  """A tiny trained run whose generator also predicts each image's class (the shapes' kinds)."""
  path = tmp_path_factory.mktemp("classifier_run")
  config = test_config.get_config()
  config.update(num_train_steps=2, class_weight=1.0)
  config.model.num_classes = 3
  train.train_and_evaluate(config, str(path))
  return path


def test_transport_by_class_moves_each_image_by_its_predicted_class_map(classifier_workdir,
                                                                       monkeypatch):
  run = str(classifier_workdir)
  by_class = colorize.Colorizer.from_workdir(run, transport_strength=1.0,
                                             transport_by_class=True)
  transport = by_class.transport
  assert transport.num_groups == 3
  assert (classifier_workdir / "eval" / "2" / "transport-by_class.npz").is_file()
  images = list(np.random.default_rng(8).integers(0, 256, (6, 16, 16, 3), np.uint8))
  classes = by_class._small_classes(images)
  plain = colorize.Colorizer.from_workdir(run)
  # Each output is the plain colours moved by the map of the image's own predicted class.
  for image, image_class, out in zip(images, classes, by_class.colorize_batch(images)):
    ab = plain._small_ab([image])[0]
    moved = inference.transport_lib.apply(transport, ab, 1.0, group=image_class)
    np.testing.assert_array_equal(out, inference._recombine(image, moved, None))
    _assert_same_lightness(image / 255.0, out)
  # Native colorizing runs the classifier on the whole image too (its bottleneck's mean).
  native = colorize.Colorizer.from_workdir(run, native=True)
  assert native(np.zeros((40, 24, 3), np.uint8)).shape == (40, 24, 3)
  # The kept map is read back, not fit again.
  monkeypatch.setattr(inference, "fit_transport", lambda *_, **__: pytest.fail("fit again"))
  again = colorize.Colorizer.from_workdir(run, transport_strength=0.5, transport_by_class=True)
  np.testing.assert_array_equal(again.transport.source, transport.source)


def test_transport_by_class_needs_a_run_whose_generator_classifies(workdir, colorizer,
                                                                  classifier_workdir):
  with pytest.raises(UserError, match="model.num_classes > 0.*leave out --transport_by_class"):
    colorize.Colorizer.from_workdir(str(workdir), transport_strength=0.5,
                                    transport_by_class=True)
  by_class = colorize.Colorizer.from_workdir(str(classifier_workdir), transport_strength=0.5,
                                             transport_by_class=True)
  with pytest.raises(UserError, match="predicts no class"):
    colorizer.predict_classes(np.zeros((2, 16, 16, 3), np.uint8))
  with pytest.raises(ValueError, match="by 3 classes for a generator that predicts 0"):
    colorize.Colorizer(colorizer.generator, transport=by_class.transport,
                       transport_strength=0.5)


def test_a_kept_map_of_the_other_kind_is_refused_naming_the_file(classifier_workdir):
  run = str(classifier_workdir)
  colorize.Colorizer.from_workdir(run, transport_strength=0.5)  # Keeps transport.npz.
  step = classifier_workdir / "eval" / "2"
  shutil.copy(step / "transport.npz", step / "transport-by_class.npz")
  with pytest.raises(UserError, match=r"transport-by_class.npz: a colour transport by no "
                                      r"groups, where this run needs 3; delete it"):
    colorize.Colorizer.from_workdir(run, transport_strength=0.5, transport_by_class=True)
  (step / "transport-by_class.npz").unlink()


def test_flip_average_is_the_mean_of_the_two_views_and_mirror_symmetric(colorizer):
  images = np.random.default_rng(6).integers(0, 256, (3, 16, 16, 3), np.uint8)
  mirrored = images[:, :, ::-1]
  averaging = colorize.Colorizer(colorizer.generator, flip_average=True)
  plain_ab = colorizer.predict_ab(images)
  expected = (plain_ab + colorizer.predict_ab(mirrored)[:, :, ::-1]) / 2
  np.testing.assert_allclose(averaging.predict_ab(images), expected, atol=1e-5)
  # The average sees both views, so the mirror image gets the mirrored colours; one view
  # does not (the generator is not mirror-symmetric).
  np.testing.assert_allclose(averaging.predict_ab(mirrored), expected[:, :, ::-1], atol=1e-5)
  assert np.abs(colorizer.predict_ab(mirrored)[:, :, ::-1] - plain_ab).max() > 0.1
  # Through the whole pipeline, at any size: the input's lightness, the output mirrored too.
  image = images[0, :13]
  out, out_mirrored = averaging.colorize_batch([image, image[:, ::-1]])
  _assert_same_lightness(image / 255.0, out)
  assert np.abs(out[:, ::-1].astype(int) - out_mirrored).max() <= 1


def test_native_flip_average_is_mirror_symmetric(colorizer):
  """At a width that is not a multiple of the U-Net's stride, where padding is one-sided."""
  image = np.random.default_rng(7).integers(0, 256, (21, 27, 3), np.uint8)
  native = colorize.Colorizer(colorizer.generator, native=True, flip_average=True)
  out, out_mirrored = native.colorize_batch([image, image[:, ::-1]])
  _assert_same_lightness(image / 255.0, out)
  assert np.abs(out[:, ::-1].astype(int) - out_mirrored).max() <= 1
