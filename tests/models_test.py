"""colorize.models: shapes, parameter counts against the PyTorch reference, norms, dropout.

Shapes and parameter counts use `jax.eval_shape`, so the 16.7M-parameter generator is never
materialised. The value tests fill the abstract variables with numpy random numbers instead
of calling `Module.init`: on XLA:CPU every distinct shape drawn with threefry costs its own
compilation (up to a second), and the initialisers are not what these tests are about.
"""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from colorize import ab_bins
from colorize import models

# Channels of the colour prediction: ab for Lab, RGB for rgb.
_OUT_CHANNELS = (2, 3)


def _num_params(params) -> int:
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(params))


def _abstract_variables(module, *shapes, **kwargs):
  """`module.init`'s variables as ShapeDtypeStructs, for float32 inputs of `shapes`."""
  args = [jax.ShapeDtypeStruct(s, jnp.float32) for s in shapes]
  return jax.eval_shape(lambda *a: module.init(jax.random.key(0), *a, **kwargs), *args)


def _numpy_variables(abstract, seed: int = 0):
  """Concrete variables for `abstract`: fan-in scaled normal kernels, random biases/scales.

  Batch statistics start at mean 0, variance 1 (flax's own init), everything else is random
  so that no layer is an identity by accident.
  """
  rng = np.random.default_rng(seed)

  def fill(path, leaf):
    names = [getattr(p, "key", "") for p in path]
    if names[0] == "batch_stats":
      return jnp.full(leaf.shape, 1.0 if names[-1] == "var" else 0.0, leaf.dtype)
    if names[-1] == "kernel":
      fan_in = int(np.prod(leaf.shape[:-1]))
      return jnp.asarray(rng.normal(0.0, 1.0 / np.sqrt(fan_in), leaf.shape), leaf.dtype)
    return jnp.asarray(rng.normal(0.0, 0.1, leaf.shape) + (names[-1] == "scale"), leaf.dtype)

  return jax.tree_util.tree_map_with_path(fill, abstract)


def _uniform(shape, seed: int = 0) -> jax.Array:
  """float32 values in [-1, 1], the range of the model's conditions and colours."""
  return jnp.asarray(np.random.default_rng(seed).uniform(-1, 1, shape), jnp.float32)


@pytest.mark.parametrize("out_channels", _OUT_CHANNELS)
@pytest.mark.parametrize("size", [4, 8, 16, 32, 64])
def test_generator_output_shape(size, out_channels):
  generator = models.UNetGenerator(out_channels=out_channels, width=8, max_width=32)
  variables = _abstract_variables(generator, (1, size, size, 1), train=False)
  cond = jax.ShapeDtypeStruct((3, size, size, 1), jnp.float32)
  for train in (False, True):
    out, _ = jax.eval_shape(
        lambda v, c: generator.apply(v, c, train=train, rngs={"dropout": jax.random.key(0)},
                                     mutable=["batch_stats"]), variables, cond)
    assert out.shape == (3, size, size, out_channels)
    assert out.dtype == jnp.float32


@pytest.mark.parametrize("size", [4, 16])
@pytest.mark.parametrize("out_channels", _OUT_CHANNELS)
def test_generator_output_is_in_tanh_range(size, out_channels):
  generator = models.UNetGenerator(out_channels=out_channels, width=4, max_width=8, dropout=0.0)
  variables = _numpy_variables(_abstract_variables(generator, (1, size, size, 1), train=False))
  # A large input drives the pre-tanh activations far from 0, so the range check bites.
  cond = 100.0 * _uniform((2, size, size, 1))
  out = np.asarray(jax.jit(lambda v, c: generator.apply(v, c, train=False))(variables, cond))
  assert out.shape == (2, size, size, out_channels)
  assert np.all(np.isfinite(out))
  assert np.all(np.abs(out) <= 1.0)
  assert np.max(np.abs(out)) > 0.9  # Saturated somewhere: the tanh is really there.


def test_unet_depth():
  assert [models.unet_depth(s) for s in (4, 8, 16, 32, 64)] == [2, 3, 4, 5, 6]


def test_parameter_counts_match_torch_reference():
  # ../shared/bench/torch_reference.py: the pix2pix-32 U-Net (L in, ab out, batch norm) and
  # the PatchGAN critic with per-sample GroupNorm(1, C), both at width 64.
  generator = models.UNetGenerator(out_channels=2, width=64, max_width=512, norm="batch")
  critic = models.PatchCritic(width=64, num_layers=3)
  gen_vars = _abstract_variables(generator, (1, 32, 32, 1), train=False)
  critic_vars = _abstract_variables(critic, (1, 32, 32, 1), (1, 32, 32, 2))
  assert _num_params(gen_vars["params"]) == 16_655_554
  assert _num_params(critic_vars["params"]) == 663_745


@pytest.mark.parametrize("size,num_layers,patches", [(8, 2, 1), (16, 2, 3), (32, 3, 3),
                                                     (64, 3, 7)])
def test_critic_patch_score_shape(size, num_layers, patches):
  # Each stride-2 conv halves the size; the final 4x4 stride-1 conv with padding 1 takes
  # n to n - 1 (pix2pix's 70x70 PatchGAN gives 30x30 at 256; here 32 -> 4 -> 3).
  critic = models.PatchCritic(width=8, num_layers=num_layers)
  params = _abstract_variables(critic, (1, size, size, 1), (1, size, size, 2))
  cond = jax.ShapeDtypeStruct((5, size, size, 1), jnp.float32)
  ab = jax.ShapeDtypeStruct((5, size, size, 2), jnp.float32)
  scores = jax.eval_shape(critic.apply, params, cond, ab)
  assert scores.shape == (5, patches, patches, 1)
  assert scores.dtype == jnp.float32


@pytest.mark.parametrize("norm", models.NORMS)
def test_every_norm_runs(norm):
  generator = models.UNetGenerator(out_channels=2, width=4, max_width=8, norm=norm,
                                   dropout=0.0)
  abstract = _abstract_variables(generator, (1, 8, 8, 1), train=False)
  # Only batch norm keeps state (running statistics); the others normalise per sample.
  assert set(abstract) == ({"params", "batch_stats"} if norm == "batch" else {"params"})
  variables = _numpy_variables(abstract)

  @jax.jit
  def run(variables, cond):
    train_out, mutated = generator.apply(variables, cond, train=True, mutable=["batch_stats"])
    return train_out, mutated, generator.apply(variables, cond, train=False)

  train_out, mutated, eval_out = run(variables, _uniform((4, 8, 8, 1)))
  assert train_out.shape == eval_out.shape == (4, 8, 8, 2)
  assert np.all(np.isfinite(np.asarray(train_out)))
  assert np.all(np.isfinite(np.asarray(eval_out)))
  if norm == "batch":
    # Training mode normalises with the batch's statistics and updates the running ones.
    assert not np.allclose(train_out, eval_out)
    before = jax.tree.leaves(variables["batch_stats"])
    after = jax.tree.leaves(mutated["batch_stats"])
    assert any(not np.allclose(a, b) for a, b in zip(before, after))
  else:
    # Without batch norm and dropout, training and inference compute the same function.
    assert not mutated
    np.testing.assert_allclose(train_out, eval_out, rtol=1e-6, atol=1e-6)


def test_classification_head_predicts_bins_and_returns_their_annealed_mean():
  generator = models.UNetGenerator(width=8, max_width=16, head="classification",
                                   temperature=0.5, dropout=0.0)
  regression = models.UNetGenerator(width=8, max_width=16, dropout=0.0)
  cond = _uniform((2, 16, 16, 1))
  abstract = _abstract_variables(generator, cond.shape, train=False)
  variables = _numpy_variables(abstract)
  out, sown = generator.apply(variables, cond, train=False, mutable=["intermediates"])
  logits = sown["intermediates"]["ab_logits"][0]
  assert out.shape == (2, 16, 16, 2) and out.dtype == jnp.float32
  assert logits.shape == (2, 16, 16, ab_bins.BINS**2)
  np.testing.assert_allclose(out, ab_bins.annealed_mean(logits, 0.5), atol=1e-6)
  # The regression head's last transposed conv (2 outputs) becomes one to `width` features
  # and a 1x1 layer to the bins' logits.
  last_in = 2 * 8  # The outermost decoder layer's output and its skip.
  head = (16 * last_in * 8 + 8) + (8 * ab_bins.BINS**2 + ab_bins.BINS**2)
  expected = (_num_params(_abstract_variables(regression, cond.shape, train=False)["params"])
              - (16 * last_in * 2 + 2) + head)
  assert _num_params(abstract["params"]) == expected


@pytest.mark.parametrize("kwargs", [dict(head="mixture"),
                                    dict(head="classification", out_channels=3)])
def test_unknown_head_or_a_classified_rgb_raises(kwargs):
  with pytest.raises(ValueError, match="head="):
    _abstract_variables(models.UNetGenerator(width=4, max_width=8, **kwargs), (1, 8, 8, 1),
                        train=False)


def test_unknown_norm_raises():
  generator = models.UNetGenerator(norm="weight")
  with pytest.raises(ValueError, match="model.norm"):
    _abstract_variables(generator, (1, 8, 8, 1), train=False)


def test_dropout_only_in_train_mode():
  # norm="none" so that the only difference between calls is the dropout mask. Size 4 has a
  # single decoder layer, hence a single dropout mask (one threefry shape to compile).
  generator = models.UNetGenerator(out_channels=2, width=4, max_width=8, norm="none",
                                   dropout=0.5)
  variables = _numpy_variables(_abstract_variables(generator, (1, 4, 4, 1), train=False))
  cond = _uniform((2, 4, 4, 1))
  apply = jax.jit(lambda key, train: generator.apply(variables, cond, train=train,
                                                     rngs={"dropout": key}),
                  static_argnums=1)
  train_1, train_2 = apply(jax.random.key(1), True), apply(jax.random.key(2), True)
  eval_1, eval_2 = apply(jax.random.key(1), False), apply(jax.random.key(2), False)
  assert not np.allclose(train_1, train_2)
  np.testing.assert_array_equal(train_1, apply(jax.random.key(1), True))
  np.testing.assert_array_equal(eval_1, eval_2)
  assert not np.allclose(train_1, eval_1)
  # Inference needs no dropout key at all.
  no_key = jax.jit(lambda: generator.apply(variables, cond, train=False))()
  np.testing.assert_array_equal(eval_1, no_key)


@pytest.mark.parametrize("train", [False, True])
def test_mirror_average_is_mirror_equivariant_with_the_same_params(train):
  """The mirror image gets the mirrored colours (the plain U-Net's do not), in training mode
  too, where batch norm sees both views; the parameters are the plain U-Net's, by name."""
  kwargs = dict(out_channels=2, width=4, max_width=8, dropout=0.0)
  plain, averaged = (models.UNetGenerator(**kwargs, mirror_average=m) for m in (False, True))
  abstract = _abstract_variables(plain, (1, 8, 8, 1), train=False)
  assert (jax.tree.structure(_abstract_variables(averaged, (1, 8, 8, 1), train=False))
          == jax.tree.structure(abstract))
  variables = _numpy_variables(abstract)
  cond = _uniform((2, 8, 8, 1))
  mirrored = cond[:, :, ::-1]

  def apply(module, x):
    out, _ = module.apply(variables, x, train=train, mutable=["batch_stats"])
    return np.asarray(out)

  out = apply(averaged, cond)
  np.testing.assert_allclose(apply(averaged, mirrored), out[:, :, ::-1], atol=1e-6)
  if not train:  # Running averages: each view as the plain U-Net colours it alone.
    expected = (apply(plain, cond) + apply(plain, mirrored)[:, :, ::-1]) / 2
    np.testing.assert_allclose(out, expected, atol=1e-6)
  assert np.abs(apply(plain, mirrored)[:, :, ::-1] - apply(plain, cond)).max() > 0.01


def test_zero_dropout_needs_no_key():
  generator = models.UNetGenerator(out_channels=2, width=4, max_width=8, norm="none",
                                   dropout=0.0)
  variables = _numpy_variables(_abstract_variables(generator, (1, 4, 4, 1), train=False))
  cond = _uniform((2, 4, 4, 1))
  train_out, eval_out = jax.jit(lambda: (generator.apply(variables, cond, train=True),
                                         generator.apply(variables, cond, train=False)))()
  np.testing.assert_array_equal(train_out, eval_out)


def test_projection_critic_adds_a_per_image_class_term():
  # The class moves every patch score of an image by the same amount (the inner product of
  # its embedding with the image's pooled features), and only that image's.
  critic = models.PatchCritic(width=8, num_layers=2, num_classes=3)
  labels = jnp.array([0, 1, 2])
  params = _numpy_variables(_abstract_variables(critic, (1, 16, 16, 1), (1, 16, 16, 2),
                                                labels_B=jnp.zeros((1,), jnp.int32)))
  assert params["params"]["Embed_0"]["embedding"].shape == (3, 16)
  apply = jax.jit(critic.apply)
  cond, ab = _uniform((3, 16, 16, 1), seed=1), _uniform((3, 16, 16, 2), seed=2)
  scores = np.asarray(apply(params, cond, ab, labels))
  relabelled = np.asarray(apply(params, cond, ab, labels.at[1].set(0)))
  shift = relabelled[1] - scores[1]
  assert abs(shift.flat[0]) > 1e-3
  np.testing.assert_allclose(shift, np.full_like(shift, shift.flat[0]), atol=1e-5)
  np.testing.assert_array_equal(relabelled[[0, 2]], scores[[0, 2]])
  with pytest.raises(ValueError, match="pass their labels"):
    critic.apply(params, cond, ab)


def test_critic_is_per_sample():
  # WGAN-GP penalises each sample's own input gradient; that is only meaningful if a sample's
  # score does not depend on the other samples of the batch (no batch norm in the critic).
  critic = models.PatchCritic(width=8, num_layers=2)
  params = _numpy_variables(_abstract_variables(critic, (1, 16, 16, 1), (1, 16, 16, 2)))
  apply = jax.jit(critic.apply)
  cond, ab = _uniform((3, 16, 16, 1), seed=1), _uniform((3, 16, 16, 2), seed=2)
  scores = np.asarray(apply(params, cond, ab))
  assert scores.shape == (3, 3, 3, 1)
  new_scores = np.asarray(apply(params, cond.at[1].set(-cond[1]),
                                ab.at[1].set(_uniform((16, 16, 2), seed=3))))
  assert not np.allclose(new_scores[1], scores[1])
  np.testing.assert_allclose(new_scores[0], scores[0], rtol=1e-6, atol=1e-6)
  np.testing.assert_allclose(new_scores[2], scores[2], rtol=1e-6, atol=1e-6)
  # A sample scored in a batch of its own copies gets the score it gets in the mixed batch.
  alone = np.asarray(apply(params, jnp.repeat(cond[:1], 3, 0), jnp.repeat(ab[:1], 3, 0)))
  np.testing.assert_allclose(alone[0], scores[0], rtol=1e-5, atol=1e-6)


def test_critic_input_gradient_is_per_sample():
  # The gradient of sample 0's scores w.r.t. sample 1's input is exactly zero, which is what
  # `losses.gradient_penalty` relies on when it differentiates the summed per-sample scores.
  critic = models.PatchCritic(width=8, num_layers=2)
  params = _numpy_variables(_abstract_variables(critic, (1, 8, 8, 1), (1, 8, 8, 2)))
  cond, ab = _uniform((2, 8, 8, 1), seed=1), _uniform((2, 8, 8, 2), seed=2)
  grad = jax.jit(jax.grad(lambda x: critic.apply(params, cond, x)[0].sum()))(ab)
  assert np.all(np.asarray(grad[1]) == 0.0)
  assert np.any(np.asarray(grad[0]) != 0.0)


def _dropout_widths(**kwargs) -> list[int]:
  """The channel counts of the layers a generator applies dropout to (32x32, training)."""
  generator = models.UNetGenerator(**{"width": 8, "max_width": 32, "dropout": 0.5, **kwargs})
  variables = _numpy_variables(_abstract_variables(generator, (2, 32, 32, 1), train=False))
  widths = []

  def record(next_fun, args, kwargs, context):
    if isinstance(context.module, nn.Dropout) and context.method_name == "__call__":
      widths.append(args[0].shape[-1])
    return next_fun(*args, **kwargs)

  with nn.intercept_methods(record):
    generator.apply(variables, _uniform((2, 32, 32, 1)), train=True,
                    rngs={"dropout": jax.random.key(0)}, mutable=["batch_stats"])
  return widths


def test_dropout_layers():
  # Decoder widths at 32x32 with width 8, max 32: 32, 32, 16, 8 (innermost first).
  assert _dropout_widths() == [32, 32, 16]  # The seed: the three innermost.
  assert _dropout_widths(dropout_layers="full_width") == [32, 32]  # pix2pix: the widest.
  assert _dropout_widths(dropout_layers="full_width", dropout=0.0) == []


@pytest.mark.parametrize("module, shapes", [
    (models.UNetGenerator(width=8, max_width=32, init_std=0.02), [(1, 32, 32, 1)]),
    (models.PatchCritic(width=8, init_std=0.02), [(1, 32, 32, 1), (1, 32, 32, 2)]),
])
def test_init_std_draws_kernels_from_the_tutorials_normal(module, shapes):
  inputs = [jnp.zeros(s) for s in shapes]
  kwargs = {"train": False} if isinstance(module, models.UNetGenerator) else {}
  params = module.init(jax.random.key(0), *inputs, **kwargs)["params"]
  kernels = np.concatenate([np.ravel(leaf) for path, leaf in
                            jax.tree_util.tree_leaves_with_path(params)
                            if path[-1].key == "kernel"])
  assert abs(kernels.mean()) < 1e-3 and kernels.std() == pytest.approx(0.02, rel=0.02)
