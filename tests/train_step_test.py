"""colorize.train_step: one iteration of the tiny test config, per loss and colour space.

Every case compiles `train_iteration` once (a few seconds on CPU) and is run once per test
session: `_run` is memoised, and each test reads the cached result.
"""
import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import skimage

from colorize import color
from colorize import input_pipeline
from colorize import train_step
from configs import test as test_config
from tests import helpers

# (name, config overrides). Together they cover every loss, both colour spaces, the EMA and
# n_critic > 1 with four compilations instead of the full product (each costs seconds), and the
# classification head.
_CASES = {
    "wgan_gp": dict(loss="wgan_gp"),  # The test config as is: golden values.
    "vanilla_rgb_ema": dict(loss="vanilla", color_space="rgb", ema_decay=0.9),
    "lsgan_n_critic_2": dict(loss="lsgan", n_critic=2),
    "l1_rgb": dict(loss="l1", color_space="rgb"),
    "wgan_gp_classification": dict(loss="wgan_gp", model=dict(head="classification")),
    # DiffAugment's every policy, with the critic's features matched too (both read the
    # augmented pairs).
    "wgan_gp_augment": dict(loss="wgan_gp", critic_augment="translation,cutout",
                            feature_matching_weight=1.0),
}

_ALWAYS = {"adversarial", "l1", "generator_loss"}
_EXPECTED_METRICS = {
    "wgan_gp": _ALWAYS | {"critic_loss", "wasserstein", "gradient_penalty", "critic_grad_norm"},
    "vanilla": _ALWAYS | {"critic_loss", "critic_real", "critic_fake"},
    "lsgan": _ALWAYS | {"critic_loss", "critic_real", "critic_fake"},
    "l1": _ALWAYS,
}

# Metrics of one iteration of configs/test.py (wgan_gp, lab, seed 0) on `_images(1)`, on CPU
# with jax 0.10.2 / flax 0.12.8 and the XLA flags of tests/conftest.py. To regenerate after an
# intended change of the models, the losses, the initialisation or the step, run from the
# repo root (importing conftest first, so that the XLA flags are those of the tests)
#   python -c "import tests.conftest; from tests import train_step_test as t; t.print_golden()"
# and paste its output here (and say in the commit why the numbers moved).
_GOLDEN = {
    "adversarial": 0.09252619743347168,
    "critic_grad_norm": 0.15720655024051666,
    "critic_loss": 7.151937961578369,
    "generator_loss": 35.98666763305664,
    "gradient_penalty": 0.7139824628829956,
    "l1": 0.3589414060115814,
    "wasserstein": -0.012113057076931,
}


def _images(k: int, seed: int = 0) -> np.ndarray:
  """A fixed uint8 batch [K, B, H, W, 3] for the test config (B = 8, H = W = 8)."""
  config = test_config.get_config()
  shape = (k, config.batch_size, config.image_size, config.image_size, 3)
  return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


@functools.cache
def _initial_state(case: str) -> train_step.TrainState:
  # Eager init: its per-op compilations are shared between the cases, a jitted init's not.
  config = helpers.config(**_CASES[case])
  return train_step.create_train_state(config, jax.random.key(config.seed))


@functools.cache
def _compiled(case: str):
  config = helpers.config(**_CASES[case])
  hp = train_step.StepConfig.from_config(config)
  # Not donated, so that the initial state can be reused and compared with.
  return jax.jit(functools.partial(train_step.train_iteration, hp=hp)), config


@functools.cache
def _run(case: str):
  """(config, initial state, images, state after one iteration, its metrics)."""
  fn, config = _compiled(case)
  state = _initial_state(case)
  images = _images(input_pipeline.batches_per_step(config))
  new_state, metrics = fn(state, images, jax.random.key(config.seed))
  return config, state, images, new_state, jax.device_get(metrics)


def _fresh(config):
  """A new state of `config` (key 0) and its jitted train_iteration (not donated)."""
  hp = train_step.StepConfig.from_config(config)
  return (train_step.create_train_state(config, jax.random.key(0)),
          jax.jit(functools.partial(train_step.train_iteration, hp=hp)))


def print_golden():
  """Prints `_GOLDEN` for the current code (see the comment on `_GOLDEN`)."""
  metrics = _run("wgan_gp")[-1]
  print("_GOLDEN = {")
  for name in sorted(metrics):
    print(f'    "{name}": {float(metrics[name])!r},')
  print("}")


def _tree_equal(a, b) -> bool:
  leaves_a, leaves_b = jax.tree.leaves(a), jax.tree.leaves(b)
  return len(leaves_a) == len(leaves_b) and all(
      np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(leaves_a, leaves_b))


def _leaves_changed(a, b) -> list[bool]:
  return [not np.array_equal(np.asarray(x), np.asarray(y))
          for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b))]


def _kernels(params) -> list[jax.Array]:
  """The convolution kernels of `params`: after one Adam step (~lr * sign(grad)) a small
  bias or scale can equal another run's, a kernel of many weights practically cannot."""
  return [leaf for path, leaf in jax.tree_util.tree_leaves_with_path(params)
          if jax.tree_util.keystr(path[-1:]) == "['kernel']"]


@pytest.mark.parametrize("color_space,channels", [("lab", 2), ("rgb", 3)])
def test_create_train_state(color_space, channels):
  config = helpers.config(color_space=color_space)
  abstract = jax.eval_shape(functools.partial(train_step.create_train_state, config),
                            jax.random.key(0))
  assert abstract.step.shape == () and abstract.step.dtype == jnp.int32
  assert abstract.generator.out_channels == channels
  assert abstract.ema_params is None
  assert abstract.gen_batch_stats  # model.norm is "batch" in the test config.
  # The optimizers are memoised, so two states have the same treedef (checkpoint restore).
  again = jax.eval_shape(functools.partial(train_step.create_train_state, config),
                         jax.random.key(1))
  assert jax.tree.structure(abstract) == jax.tree.structure(again)


def test_create_train_state_without_batch_norm_or_with_ema():
  no_bn = jax.eval_shape(functools.partial(
      train_step.create_train_state, helpers.config(model=dict(norm="layer"))), jax.random.key(0))
  assert no_bn.gen_batch_stats == {}
  ema = jax.eval_shape(functools.partial(
      train_step.create_train_state, helpers.config(ema_decay=0.5)), jax.random.key(0))
  assert jax.tree.structure(ema.ema_params) == jax.tree.structure(ema.gen_params)


@pytest.mark.parametrize("case", list(_CASES))
def test_one_iteration(case):
  config, state, images, new_state, metrics = _run(case)
  # One batch per critic step, and the L1 ablation's single generator batch.
  assert images.shape[0] == max(1, train_step.StepConfig.from_config(config).critic_steps)
  assert int(state.step) == 0 and int(new_state.step) == 1

  classify = config.model.head == "classification"
  assert set(metrics) == (_EXPECTED_METRICS[config.loss]
                          | ({"cross_entropy"} if classify else set())
                          | ({"feature_matching"} if config.feature_matching_weight else set()))
  for name, value in metrics.items():
    assert np.shape(value) == () and np.isfinite(value), (name, value)
  assert metrics["l1"] > 0.0

  # Every generator parameter moves (Adam's first step is ~lr * sign(grad)).
  assert all(_leaves_changed(state.gen_params, new_state.gen_params))
  # Batch norm's running statistics follow the batch.
  assert all(_leaves_changed(state.gen_batch_stats, new_state.gen_batch_stats))
  if config.loss == "l1":
    # No critic in the L1 ablation: its params and optimizer state are untouched.
    assert _tree_equal(state.critic_params, new_state.critic_params)
    assert _tree_equal(state.critic_opt_state, new_state.critic_opt_state)
  else:
    assert all(_leaves_changed(_kernels(state.critic_params),
                               _kernels(new_state.critic_params)))
    # Adam's step count: one update per critic step.
    assert int(new_state.critic_opt_state[0].count) == config.n_critic
  assert int(new_state.gen_opt_state[0].count) == 1


def test_wgan_critic_output_bias_gets_no_gradient():
  # mean(fake) - mean(real) cancels a constant added to every score, and the penalty depends
  # on input gradients only, so the output conv's bias has an exactly zero gradient and Adam
  # leaves it where it was (a check that the critic loss is the difference of the means).
  _, state, _, new_state, _ = _run("wgan_gp")
  convs = [name for name in state.critic_params if "kernel" in state.critic_params[name]]
  output_layer = max(convs, key=lambda name: int(name.rsplit("_", 1)[1]))
  assert state.critic_params[output_layer]["kernel"].shape[-1] == 1
  np.testing.assert_array_equal(new_state.critic_params[output_layer]["bias"],
                                state.critic_params[output_layer]["bias"])


def test_ema_update():
  config, state, _, new_state, _ = _run("vanilla_rgb_ema")
  assert state.ema_params is not None
  # ema <- decay * ema + (1 - decay) * params, starting from the initial params.
  want = jax.tree.map(lambda old, new: config.ema_decay * old + (1 - config.ema_decay) * new,
                      state.gen_params, new_state.gen_params)
  for got, expected in zip(jax.tree.leaves(new_state.ema_params), jax.tree.leaves(want)):
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)
  assert _run("wgan_gp")[3].ema_params is None


def test_debiased_ema_is_the_weighted_mean_of_the_trained_params():
  # Without the initial params: after update 1 the EMA is p1, after update 2 it is
  # (d p1 + p2) / (d + 1), where the plain recursion gives d^2 p0 + d(1 - d) p1 + (1 - d) p2.
  config = helpers.config(loss="l1", ema_decay=0.5, ema_debias=True)
  state, step = _fresh(config)
  first, _ = step(state, _images(1), jax.random.key(1))
  second, _ = step(first, _images(1, seed=1), jax.random.key(2))
  for got, p1 in zip(jax.tree.leaves(first.ema_params), jax.tree.leaves(first.gen_params)):
    np.testing.assert_allclose(got, p1, rtol=1e-6, atol=1e-7)
  want = jax.tree.map(lambda p1, p2: (0.5 * p1 + p2) / 1.5, first.gen_params, second.gen_params)
  for got, expected in zip(jax.tree.leaves(second.ema_params), jax.tree.leaves(want)):
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)
  assert not _tree_equal(second.ema_params, second.gen_params)


def test_deterministic():
  fn, config = _compiled("wgan_gp")
  _, state, images, first_state, first_metrics = _run("wgan_gp")
  again_state, again_metrics = fn(state, images, jax.random.key(config.seed))
  assert _tree_equal(first_state, again_state)
  assert _tree_equal(first_metrics, again_metrics)
  # And the key matters (dropout, penalty interpolation).
  other_state, _ = fn(state, images, jax.random.key(config.seed + 1))
  assert not _tree_equal(first_state.gen_params, other_state.gen_params)


@pytest.mark.parametrize("case", ["wgan_gp", "lsgan_n_critic_2", "wgan_gp_augment"])
def test_iteration_is_critic_steps_then_generator_step(case):
  # train_iteration shares the last critic step's generator forward with the generator step;
  # that must equal running the public steps one after the other with the same keys.
  config, state, images, new_state, metrics = _run(case)
  hp = train_step.StepConfig.from_config(config)

  @jax.jit
  def unfused(state, images, key):
    rng = jax.random.fold_in(key, state.step)
    critic_rngs = jax.random.split(jax.random.fold_in(rng, 0), hp.critic_steps)
    for batch, critic_rng in zip(images, critic_rngs):
      state, critic_metrics = train_step.critic_step(state, batch, critic_rng, hp=hp)
    gen_rng = jax.random.split(critic_rngs[-1])[0]
    state, gen_metrics = train_step.generator_step(state, images[-1], gen_rng, hp=hp)
    return state, {**critic_metrics, **gen_metrics}

  want_state, want_metrics = unfused(state, images, jax.random.key(config.seed))
  for got, want in zip(jax.tree.leaves((new_state, metrics)),
                       jax.tree.leaves((want_state, want_metrics))):
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_critic_augment_changes_what_the_critic_sees_only():
  # The same initial state, images and key, with and without DiffAugment: the generator's
  # output (hence its L1) is the same, the critic's scores and every update are not.
  plain_state, augmented_state = (_fresh(helpers.config(critic_augment=policy))
                                  for policy in ("", "translation,cutout"))
  images, key = _images(1), jax.random.key(0)
  plain, plain_metrics = plain_state[1](plain_state[0], images, key)
  augmented, augmented_metrics = augmented_state[1](augmented_state[0], images, key)
  assert float(plain_metrics["l1"]) == float(augmented_metrics["l1"])
  for name in ("wasserstein", "adversarial", "gradient_penalty"):
    assert float(plain_metrics[name]) != float(augmented_metrics[name]), name
  assert all(_leaves_changed(_kernels(plain.critic_params), _kernels(augmented.critic_params)))
  # The generator's through the critic's scores; its first kernel (one input channel) may keep
  # every sign of its gradient, which L1 dominates after one step.
  assert any(_leaves_changed(_kernels(plain.gen_params), _kernels(augmented.gen_params)))


def test_golden_one_step():
  metrics = _run("wgan_gp")[-1]
  assert set(metrics) == set(_GOLDEN)
  for name, want in _GOLDEN.items():
    np.testing.assert_allclose(float(metrics[name]), want, rtol=1e-4, atol=1e-7, err_msg=name)


def test_colorize_keeps_lab_lightness():
  _, _, _, state, _ = _run("wgan_gp")
  # Out-of-gamut predictions lose chroma, not lightness: L is kept at every pixel (up to
  # float32: the error is ~1e-5).
  rng = np.random.default_rng(1)
  gray = rng.integers(90, 170, (8, 8, 8, 1))
  images = np.clip(gray + rng.integers(-20, 21, (8, 8, 8, 3)), 0, 255).astype(np.uint8)
  out = jax.jit(train_step.colorize, static_argnums=2)(state, images, "lab")
  out = np.asarray(out)
  assert out.shape == (8, 8, 8, 3) and out.dtype == np.float32
  assert out.min() >= 0.0 and out.max() <= 1.0
  l_in = np.asarray(color.rgb_to_lab(images / 255.0))[..., 0]
  l_out = np.asarray(color.rgb_to_lab(out))[..., 0]
  assert np.max(np.abs(l_out - l_in)) < 0.01


def test_colorize_uses_ema_params():
  _, _, images, state, _ = _run("vanilla_rgb_ema")
  colorize = jax.jit(train_step.colorize, static_argnums=2)
  with_ema = np.asarray(colorize(state, images[0], "rgb"))
  as_params = np.asarray(colorize(state.replace(
      gen_params=state.ema_params, gen_batch_stats=state.ema_batch_stats, ema_params=None),
      images[0], "rgb"))
  without_ema = np.asarray(colorize(state.replace(ema_params=None), images[0], "rgb"))
  np.testing.assert_array_equal(with_ema, as_params)
  assert not np.allclose(with_ema, without_ema)


def test_lr_factor_is_pix2pix_linear_decay():
  hp = train_step.StepConfig(decay_start=0.5, num_steps=10)
  factors = [float(train_step.lr_factor(jnp.asarray(s), hp)) for s in (0, 5, 6, 9, 10, 12)]
  np.testing.assert_allclose(factors, [1.0, 1.0, 0.8, 0.2, 0.0, 0.0], atol=1e-6)
  assert float(train_step.lr_factor(jnp.asarray(10**6), train_step.StepConfig())) == 1.0
  with pytest.raises(ValueError, match="num_steps"):
    config = helpers.config()
    config.optimizer.decay_start = 0.5
    train_step.StepConfig.from_config(config)


@pytest.mark.parametrize("case, part", [("wgan_gp", "critic_params"), ("l1_rgb", "gen_params")])
def test_decayed_learning_rate_scales_the_updates(case, part):
  # At step 75 of 100 the factor is 0.5: the parameters move half as far as at full rate.
  # (The critic is updated first, so its update is comparable; the generator's is checked
  # without a critic, whose halved update would change the generator's gradient.)
  config, state, images, _, _ = _run(case)
  config = config.copy_and_resolve_references()
  config.optimizer.decay_start = 0.5
  hp = train_step.StepConfig.from_config(config, num_steps=100)
  at_75 = state.replace(step=jnp.asarray(75, jnp.int32))
  moved = {}
  for name, step_hp in (("half", hp), ("full", dataclasses.replace(hp, decay_start=1.0))):
    new_state, _ = jax.jit(functools.partial(train_step.train_iteration, hp=step_hp))(
        at_75, images, jax.random.key(config.seed))
    moved[name] = jax.tree.map(lambda new, old: new - old, getattr(new_state, part),
                               getattr(state, part))
  for half, full in zip(jax.tree.leaves(moved["half"]), jax.tree.leaves(moved["full"])):
    # (Differences of float32 parameters near 1: absolute rounding of about 1e-7.)
    np.testing.assert_allclose(half, 0.5 * full, rtol=1e-4, atol=2e-7)


def test_ema_batch_stats_are_the_ema_generators_own():
  # With statistics recomputed on one batch (and no dropout), the EMA generator in inference
  # mode normalises exactly as it does in training mode on that batch.
  config = helpers.config(ema_decay=0.5)
  config.model.dropout = 0.0
  state = train_step.create_train_state(config, jax.random.key(0))
  state = state.replace(ema_params=jax.tree.map(lambda p: p * 1.5, state.ema_params))
  hp = train_step.StepConfig.from_config(config)
  batch = _images(1)
  fresh = jax.jit(functools.partial(train_step.ema_batch_stats, hp=hp))(
      state, batch, jax.random.key(1))
  assert not any(np.allclose(a, b) for a, b in zip(jax.tree.leaves(fresh.ema_batch_stats),
                                                    jax.tree.leaves(state.ema_batch_stats)))
  cond, _ = color.encode(batch[0], "lab")
  train_mode, _ = state.generator.apply(
      {"params": state.ema_params, "batch_stats": state.gen_batch_stats}, cond, train=True,
      mutable=["batch_stats"])
  inference = state.generator.apply(train_step.inference_variables(fresh), cond, train=False)
  np.testing.assert_allclose(inference, train_mode, atol=2e-5)
  # Over several batches, the statistics are the batches' mean.
  two = jax.jit(functools.partial(train_step.ema_batch_stats, hp=hp))(
      state, _images(2), jax.random.key(1))
  one_each = [jax.jit(functools.partial(train_step.ema_batch_stats, hp=hp))(
      state, _images(2)[i:i + 1], jax.random.key(1)).ema_batch_stats for i in range(2)]
  for got, a, b in zip(jax.tree.leaves(two.ema_batch_stats), *map(jax.tree.leaves, one_each)):
    np.testing.assert_allclose(got, (a + b) / 2, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("class_weight", [0.0, 100.0])
def test_auxiliary_classifier_is_trained_by_its_weight(class_weight):
  # With a weight its cross-entropy trains the classifier on the bottleneck: repeated on one
  # batch the step fits the batch's labels. With weight 0 the classifier gets no gradient.
  config = helpers.config(class_weight=class_weight)
  config.model.num_classes = 3
  config.optimizer.generator_lr = 1e-2
  state, fn = _fresh(config)
  images, labels = _images(1), np.arange(8).reshape(1, 8) % 3
  new_state, losses = state, []
  for _ in range(40):
    new_state, metrics = fn(new_state, images, jax.random.key(0), labels=labels)
    losses.append(float(metrics["class_ce"]))
  assert abs(losses[0] - np.log(3)) < 0.5  # Near chance at the start.
  classifier = lambda s: s.gen_params["Dense_0"]
  if class_weight:
    assert float(metrics["class_ce"]) < 0.1 and float(metrics["class_accuracy"]) == 1.0
  else:
    assert _tree_equal(classifier(state), classifier(new_state))
  with pytest.raises(ValueError, match="pass their labels"):
    fn(state, images, jax.random.key(0))


def test_projection_critic_is_told_each_critic_batchs_labels():
  # With n_critic 2 each critic step (the scanned one and the last) scores its own batch with
  # its own labels: labels that differ only in the first batch change the first critic update.
  config = helpers.config(n_critic=2, model=dict(num_classes=3, critic_projection=True))
  state, step = _fresh(config)
  images = _images(2)
  labels = np.arange(16).reshape(2, 8) % 3
  new_state, _ = step(state, images, jax.random.key(0), labels=labels)
  embedding = lambda s: s.critic_params["Embed_0"]["embedding"]
  assert not np.allclose(embedding(new_state), embedding(state))
  other, _ = step(state, images, jax.random.key(0), labels=labels * [[0], [1]])
  assert not _tree_equal(other.critic_params, new_state.critic_params)
  with pytest.raises(ValueError, match="pass their labels"):
    step(state, images, jax.random.key(0))


@pytest.mark.parametrize("key,metric,extra", [
    ("swd_weight", "sliced_wasserstein", {}),
    ("swd_weight", "sliced_wasserstein", {"swd_space": "lab", "swd_scope": "batch"}),
    ("feature_matching_weight", "feature_matching", {})])
def test_a_weighted_term_joins_the_generator_loss(key, metric, extra):
  # With a weight the step logs the term and adds it, weighted, to the generator's loss; the
  # adversarial term is the same (for feature matching, the fake half of the critic's forward
  # over both halves is its forward over the fakes), the critic's update is untouched and the
  # generator's differs.
  states, metrics = {}, {}
  for weight in (0.0, 50.0):
    config = helpers.config(**{key: weight}, **extra)
    state, step = _fresh(config)
    states[weight], metrics[weight] = step(state, _images(1), jax.random.key(0))
  assert metric not in metrics[0.0]
  m = metrics[50.0]
  assert float(m[metric]) > 0
  np.testing.assert_allclose(float(m["adversarial"]), float(metrics[0.0]["adversarial"]),
                             rtol=1e-5)
  np.testing.assert_allclose(
      float(m["generator_loss"]),
      float(m["adversarial"] + config.l1_weight * m["l1"] + 50.0 * m[metric]), rtol=1e-5)
  assert _tree_equal(states[0.0].critic_params, states[50.0].critic_params)
  assert not _tree_equal(states[0.0].gen_params, states[50.0].gen_params)


def test_critic_sows_one_feature_map_per_hidden_layer():
  config = helpers.config()
  state = _initial_state("wgan_gp")
  cond, colour = jnp.zeros((2, 8, 8, 1)), jnp.zeros((2, 8, 8, 2))
  scores, sown = state.critic.apply({"params": state.critic_params}, cond, colour,
                                    mutable=["intermediates"])
  features = sown["intermediates"]["features"]
  assert len(features) == config.model.critic_layers
  assert [f.shape[-1] for f in features] == [
      config.model.critic_width * 2**i for i in range(config.model.critic_layers)]
  # Sowing changes nothing in a plain call.
  np.testing.assert_array_equal(
      np.asarray(scores),
      np.asarray(state.critic.apply({"params": state.critic_params}, cond, colour)))


def test_sliced_wasserstein_over_the_batch_is_at_most_the_images_mean():
  # The batch's colours are the mixture of its images': the 1-D Wasserstein distance is
  # jointly convex, so matching the mixture asks less than matching each image.
  values = {}
  for scope in ("image", "batch"):
    state, step = _fresh(helpers.config(swd_weight=1.0, swd_scope=scope))
    _, metrics = step(state, _images(1), jax.random.key(0))
    values[scope] = float(metrics["sliced_wasserstein"])
  assert 0 < values["batch"] < values["image"]


def test_colour_sets_with_lightness_put_it_in_ab_units():
  # swd_space="lab": each point is (lightness, a, b), all three in Lab units / AB_SCALE, the
  # lightness offset by 50 (which sorting and distances do not see); the batch's scope is its
  # pixels as one image.
  images = _images(1)[0]
  cond, real = color.encode(images, "lab")
  fake = -real
  hp = train_step.StepConfig(swd_space="lab", swd_scope="batch")
  fake_set, real_set = train_step._colour_sets(cond, fake, real, hp, None)
  lab = skimage.color.rgb2lab(images / 255.0).reshape(1, -1, 1, 3)
  np.testing.assert_allclose(np.asarray(real_set) * color.AB_SCALE, lab - [50, 0, 0], atol=0.01)
  np.testing.assert_array_equal(fake_set[..., 0], real_set[..., 0])
  np.testing.assert_array_equal(fake_set[..., 1:], -real_set[..., 1:])
