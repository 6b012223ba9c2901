"""colorize.losses on cases with known answers.

The gradient penalty's oracle is the linear critic f(x) = <w, x>: its input gradient is w
everywhere, so every sample's gradient norm is ||w|| whatever the interpolation weights, and
the penalty is exactly (||w|| - 1)^2.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

from colorize import losses

_LOG2 = float(np.log(2.0))


def _softplus(x):
  return np.log1p(np.exp(x))


def _images(shape, seed):
  return jnp.asarray(np.random.default_rng(seed).uniform(-1, 1, shape), jnp.float32)


def _linear_critic(w):
  """f(x)_b = sum(w * x_b): one score per sample, input gradient w."""
  return lambda x: jnp.sum(w * x, axis=(1, 2, 3))


# critic_loss ------------------------------------------------------------------------------


def test_wgan_gp_critic_loss_is_mean_fake_minus_mean_real():
  real = jnp.asarray([[1.0, 2.0], [3.0, 6.0]])  # Mean 3.
  fake = jnp.asarray([[-1.0, 0.0], [0.5, 0.5]])  # Mean 0.
  loss, metrics = losses.critic_loss(real, fake, "wgan_gp")
  assert float(loss) == -3.0
  assert float(metrics["wasserstein"]) == 3.0
  assert set(metrics) == {"wasserstein"}


def test_wgan_gp_critic_loss_on_patch_scores():
  # PatchGAN scores [B, h, w, 1]: every patch of every sample has equal weight.
  real = jnp.arange(2 * 3 * 3, dtype=jnp.float32).reshape(2, 3, 3, 1)
  fake = jnp.full((2, 3, 3, 1), 2.0)
  loss, metrics = losses.critic_loss(real, fake, "wgan_gp")
  np.testing.assert_allclose(float(metrics["wasserstein"]), 8.5 - 2.0, rtol=1e-6)
  np.testing.assert_allclose(float(loss), 2.0 - 8.5, rtol=1e-6)


def test_critic_scoring_real_higher_has_positive_wasserstein():
  critic = lambda x: jnp.mean(x, axis=(1, 2, 3))
  real, fake = jnp.ones((4, 2, 2, 2)), -jnp.ones((4, 2, 2, 2))
  loss, metrics = losses.critic_loss(critic(real), critic(fake), "wgan_gp")
  assert float(metrics["wasserstein"]) == 2.0
  assert float(loss) == -2.0  # Minimising the loss widens the gap.


def test_vanilla_critic_loss_at_zero_logits_is_two_log_two():
  # sigmoid(0) = 1/2: -log(1/2) for the real term and -log(1 - 1/2) for the fake term.
  loss, metrics = losses.critic_loss(jnp.zeros((3, 2)), jnp.zeros((3, 2)), "vanilla")
  np.testing.assert_allclose(float(loss), 2 * _LOG2, rtol=1e-6)
  assert float(metrics["critic_real"]) == float(metrics["critic_fake"]) == 0.0


def test_vanilla_critic_loss_by_hand():
  # -log sigmoid(x) = softplus(-x); -log(1 - sigmoid(x)) = softplus(x).
  real = np.array([[2.0], [-1.0]], np.float32)
  fake = np.array([[0.5], [-3.0]], np.float32)
  want = np.mean(_softplus(-real)) + np.mean(_softplus(fake))
  loss, metrics = losses.critic_loss(jnp.asarray(real), jnp.asarray(fake), "vanilla")
  np.testing.assert_allclose(float(loss), want, rtol=1e-6)
  np.testing.assert_allclose(float(metrics["critic_real"]), 0.5, rtol=1e-6)
  np.testing.assert_allclose(float(metrics["critic_fake"]), -1.25, rtol=1e-6)


def test_lsgan_critic_loss_by_hand():
  # 0.5 * (mean((real - 1)^2) + mean(fake^2)).
  assert float(losses.critic_loss(jnp.zeros((2, 2)), jnp.zeros((2, 2)), "lsgan")[0]) == 0.5
  assert float(losses.critic_loss(jnp.ones((2, 2)), jnp.zeros((2, 2)), "lsgan")[0]) == 0.0
  real = jnp.asarray([[3.0], [1.0]])  # (2^2 + 0) / 2 = 2.
  fake = jnp.asarray([[1.0], [-3.0]])  # (1 + 9) / 2 = 5.
  loss, metrics = losses.critic_loss(real, fake, "lsgan")
  assert float(loss) == 0.5 * (2.0 + 5.0)
  assert float(metrics["critic_real"]) == 2.0
  assert float(metrics["critic_fake"]) == -1.0


@pytest.mark.parametrize("loss", ["l1", "hinge", ""])
def test_critic_loss_unknown_loss_raises(loss):
  # "l1" trains no critic, so asking for a critic loss is a bug in the caller.
  with pytest.raises(ValueError, match="loss="):
    losses.critic_loss(jnp.zeros((2,)), jnp.zeros((2,)), loss)


# generator_loss ---------------------------------------------------------------------------

# fake - real = [[0.5, -1.5], [0.0, 2.0]]: L1 = (0.5 + 1.5 + 0 + 2) / 4 = 1.
_FAKE = jnp.asarray([[0.5, -0.5], [0.0, 1.0]]).reshape(2, 1, 2, 1)
_REAL = jnp.asarray([[0.0, 1.0], [0.0, -1.0]]).reshape(2, 1, 2, 1)


@pytest.mark.parametrize("loss,scores,adversarial", [
    ("wgan_gp", [[1.0, 3.0], [-1.0, 5.0]], -2.0),  # -mean(scores).
    ("vanilla", [[0.0, 0.0], [0.0, 0.0]], _LOG2),  # -log sigmoid(0).
    ("vanilla", [[2.0, -1.0], [0.0, 0.0]],
     float(np.mean(_softplus(-np.array([2.0, -1.0, 0.0, 0.0]))))),
    ("lsgan", [[0.0, 0.0], [0.0, 0.0]], 0.5),  # 0.5 * mean((s - 1)^2).
    ("lsgan", [[1.0, 3.0], [-1.0, 1.0]], 0.5 * (0 + 4 + 4 + 0) / 4),
])
def test_generator_loss_by_hand(loss, scores, adversarial):
  total, metrics = losses.generator_loss(jnp.asarray(scores), _FAKE, _REAL, 100.0, loss)
  np.testing.assert_allclose(float(metrics["adversarial"]), adversarial, rtol=1e-6)
  np.testing.assert_allclose(float(metrics["l1"]), 1.0, rtol=1e-6)
  np.testing.assert_allclose(float(total), adversarial + 100.0, rtol=1e-6)
  assert float(metrics["generator_loss"]) == float(total)


def test_generator_l1_loss_needs_no_scores():
  total, metrics = losses.generator_loss(None, _FAKE, _REAL, 100.0, "l1")
  assert float(metrics["adversarial"]) == 0.0
  np.testing.assert_allclose(float(metrics["l1"]), 1.0, rtol=1e-6)
  np.testing.assert_allclose(float(total), 100.0, rtol=1e-6)


@pytest.mark.parametrize("loss", losses.LOSSES)
def test_generator_loss_l1_weight_scales_only_the_l1_term(loss):
  scores = None if loss == "l1" else jnp.asarray([[0.5, -2.0], [1.0, 3.0]])
  total_0, metrics_0 = losses.generator_loss(scores, _FAKE, _REAL, 0.0, loss)
  total_10, metrics_10 = losses.generator_loss(scores, _FAKE, _REAL, 10.0, loss)
  assert float(metrics_0["adversarial"]) == float(metrics_10["adversarial"])
  np.testing.assert_allclose(float(total_0), float(metrics_0["adversarial"]), rtol=1e-6)
  np.testing.assert_allclose(float(total_10) - float(total_0), 10.0 * 1.0, rtol=1e-5)


def test_generator_loss_unknown_loss_raises():
  with pytest.raises(ValueError, match="loss="):
    losses.generator_loss(jnp.zeros((2, 2)), _FAKE, _REAL, 1.0, "hinge")


# gradient_penalty -------------------------------------------------------------------------

_SHAPE = (4, 3, 3, 2)  # [B, H, W, C]


def _unit_w():
  w = np.random.default_rng(5).normal(size=_SHAPE[1:]).astype(np.float32)
  return jnp.asarray(w / np.linalg.norm(w))


def test_gradient_penalty_of_unit_norm_linear_critic_is_zero():
  real, fake = _images(_SHAPE, 0), _images(_SHAPE, 1)
  gp, norms = losses.gradient_penalty(_linear_critic(_unit_w()), real, fake,
                                      jax.random.key(0))
  np.testing.assert_allclose(np.asarray(norms), np.ones(4), rtol=1e-6)
  assert abs(float(gp)) < 1e-10


@pytest.mark.parametrize("scale", [0.0, 0.25, 3.0])
def test_gradient_penalty_of_linear_critic_is_norm_minus_one_squared(scale):
  # scale 0: a constant critic. The norm is sqrt(||g||^2 + 1e-12), the documented epsilon
  # that keeps it differentiable at 0, so there it is 1e-6 rather than 0.
  w = scale * _unit_w()
  norm = np.sqrt(scale**2 + 1e-12)
  real, fake = _images(_SHAPE, 2), _images(_SHAPE, 3)
  gp, norms = losses.gradient_penalty(_linear_critic(w), real, fake, jax.random.key(1))
  np.testing.assert_allclose(np.asarray(norms), np.full(4, norm), rtol=1e-6)
  np.testing.assert_allclose(float(gp), (norm - 1.0)**2, rtol=1e-6)


def test_gradient_penalty_patch_critic_uses_mean_over_patches():
  # A "critic" whose patch scores are the pixels themselves, [B, H, W, C]: a sample's score is
  # the mean of its N = H * W * C values, whose gradient is 1/N everywhere, so the norm is
  # sqrt(N) / N = 1 / sqrt(N). (Had the patch scores been summed instead, it would be sqrt(N).)
  n = int(np.prod(_SHAPE[1:]))
  real, fake = _images(_SHAPE, 4), _images(_SHAPE, 5)
  gp, norms = losses.gradient_penalty(lambda x: x, real, fake, jax.random.key(2))
  np.testing.assert_allclose(np.asarray(norms), np.full(4, 1 / np.sqrt(n)), rtol=1e-6)
  np.testing.assert_allclose(float(gp), (1 / np.sqrt(n) - 1)**2, rtol=1e-6)


def test_gradient_penalty_patch_linear_critic():
  # Two linear patch scores per sample, [B, 2]: f_p(x) = <w_p, x>. The per-sample score is
  # their mean, with gradient (w_0 + w_1) / 2.
  rng = np.random.default_rng(6)
  w = jnp.asarray(rng.normal(size=(2,) + _SHAPE[1:]), jnp.float32)
  critic = lambda x: jnp.einsum("bhwc,phwc->bp", x, w)
  norm = float(np.linalg.norm((np.asarray(w[0]) + np.asarray(w[1])) / 2))
  gp, norms = losses.gradient_penalty(critic, _images(_SHAPE, 7), _images(_SHAPE, 8),
                                      jax.random.key(3))
  np.testing.assert_allclose(np.asarray(norms), np.full(4, norm), rtol=1e-5)
  np.testing.assert_allclose(float(gp), (norm - 1)**2, rtol=1e-5)


def test_gradient_penalty_quadratic_critic_against_numpy():
  # f(x) = ||x||^2 / 2 has gradient x, so the norm is ||x_hat|| with
  # x_hat = eps * real + (1 - eps) * fake: it depends on eps, drawn as documented.
  real, fake = _images(_SHAPE, 9), 2.0 * _images(_SHAPE, 10)
  rng = jax.random.key(4)
  gp, norms = losses.gradient_penalty(lambda x: 0.5 * jnp.sum(x**2, axis=(1, 2, 3)),
                                      real, fake, rng)
  eps = np.asarray(jax.random.uniform(rng, (_SHAPE[0], 1, 1, 1)), np.float64)
  x_hat = eps * np.asarray(real, np.float64) + (1 - eps) * np.asarray(fake, np.float64)
  want_norms = np.linalg.norm(x_hat.reshape(_SHAPE[0], -1), axis=1)
  np.testing.assert_allclose(np.asarray(norms), want_norms, rtol=1e-5)
  np.testing.assert_allclose(float(gp), np.mean((want_norms - 1)**2), rtol=1e-5)
  # The draw really is per sample and different keys give different penalties.
  assert len(set(np.round(eps.ravel(), 6))) == _SHAPE[0]
  gp_other, _ = losses.gradient_penalty(lambda x: 0.5 * jnp.sum(x**2, axis=(1, 2, 3)),
                                        real, fake, jax.random.key(5))
  assert float(gp_other) != float(gp)


def test_gradient_penalty_is_differentiable_in_critic_params():
  # d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w|| for the linear critic.
  w = 3.0 * _unit_w()
  real, fake = _images(_SHAPE, 11), _images(_SHAPE, 12)
  grad = jax.grad(lambda w: losses.gradient_penalty(_linear_critic(w), real, fake,
                                                    jax.random.key(6))[0])(w)
  np.testing.assert_allclose(np.asarray(grad), 2 * (3.0 - 1.0) * np.asarray(_unit_w()),
                             rtol=1e-5, atol=1e-6)


def test_gradient_penalty_is_differentiable_through_a_nonlinear_critic():
  def critic(params, x):
    hidden = jnp.tanh(jnp.einsum("bhwc,hwck->bk", x, params["w1"]))
    return hidden @ params["w2"]

  rng = np.random.default_rng(13)
  params = {"w1": jnp.asarray(rng.normal(size=_SHAPE[1:] + (5,)), jnp.float32),
            "w2": jnp.asarray(rng.normal(size=(5,)), jnp.float32)}
  real, fake = _images(_SHAPE, 14), _images(_SHAPE, 15)
  grads = jax.grad(lambda p: losses.gradient_penalty(lambda x: critic(p, x), real, fake,
                                                     jax.random.key(7))[0])(params)
  for g in jax.tree.leaves(grads):
    assert np.all(np.isfinite(np.asarray(g)))
    assert np.any(np.asarray(g) != 0.0)


def test_gradient_penalty_of_constant_critic_has_finite_gradient():
  # All input gradients are exactly zero here; without the epsilon under the square root,
  # d sqrt(s) / ds at s = 0 is infinite and the parameter gradient would be NaN.
  real, fake = _images(_SHAPE, 16), _images(_SHAPE, 17)
  grad = jax.grad(lambda w: losses.gradient_penalty(_linear_critic(w), real, fake,
                                                    jax.random.key(8))[0])(
                                                        jnp.zeros(_SHAPE[1:]))
  assert np.all(np.isfinite(np.asarray(grad)))


def test_gradient_penalty_treats_fake_as_constant():
  # With the quadratic critic the penalty depends on both real and fake, but only real (the
  # data) may receive a gradient: the generator is not trained through the critic's penalty.
  critic = lambda x: 0.5 * jnp.sum(x**2, axis=(1, 2, 3))
  real, fake = _images(_SHAPE, 18), 2.0 * _images(_SHAPE, 19)
  grad_real, grad_fake = jax.grad(
      lambda r, f: losses.gradient_penalty(critic, r, f, jax.random.key(9))[0],
      argnums=(0, 1))(real, fake)
  assert np.all(np.asarray(grad_fake) == 0.0)
  assert np.any(np.asarray(grad_real) != 0.0)


def test_sliced_wasserstein_against_scipy():
  # Each image and direction is scipy's 1-D Wasserstein distance of the projected colours.
  rng = np.random.default_rng(0)
  fake, real = rng.normal(size=(2, 3, 4, 5, 2)).astype(np.float32)
  expected = np.mean([
      scipy.stats.wasserstein_distance(f.reshape(-1, 2) @ d, r.reshape(-1, 2) @ d)
      for f, r in zip(fake, real)
      for d in (np.array([np.cos(a), np.sin(a)]) for a in np.pi * np.arange(4) / 4)])
  got = losses.sliced_wasserstein(jnp.asarray(fake), jnp.asarray(real), num_directions=4)
  np.testing.assert_allclose(float(got), expected, rtol=1e-5)


def test_sliced_wasserstein_ignores_where_the_colours_are():
  # The same colours rearranged within each image cost nothing; between images they do.
  rng = np.random.default_rng(1)
  real = jnp.asarray(rng.uniform(-1, 1, size=(2, 4, 4, 2)), jnp.float32)
  shuffled = jnp.stack([x.reshape(-1, 2)[rng.permutation(16)].reshape(4, 4, 2) for x in real])
  assert float(losses.sliced_wasserstein(shuffled, real)) < 1e-6
  assert float(losses.sliced_wasserstein(real[::-1], real)) > 0.1
  assert float(losses.sliced_wasserstein(real, real)) == 0.0


def test_sliced_wasserstein_pulls_a_gray_prediction_apart_by_rank_not_by_place():
  # A near-gray prediction of an image whose top half is (0.5, 0.5) and bottom half
  # (-0.5, -0.5), its slightly higher guesses in the bottom half: the L1 pulls each pixel to
  # the colour at its place; the distribution loss sends the higher half up, wherever it is.
  real = jnp.concatenate([jnp.full((1, 2, 4, 2), 0.5), jnp.full((1, 2, 4, 2), -0.5)], axis=1)
  t = jnp.linspace(-1e-3, 1e-3, 16).reshape(1, 4, 4, 1)
  fake = jnp.concatenate([t, t], axis=-1)
  step = -jax.grad(losses.sliced_wasserstein)(fake, real).sum(axis=-1)
  np.testing.assert_array_equal(step > 0, t[..., 0] > 0)
  l1_step = -jax.grad(lambda f: jnp.abs(f - real).mean())(fake).sum(axis=-1)
  np.testing.assert_array_equal(l1_step > 0, real[..., 0] > 0)


def test_sliced_wasserstein_with_lightness_against_scipy():
  # (L, a, b): each direction of the half circle tilted towards L by 0, 30 and 60 degrees.
  rng = np.random.default_rng(2)
  fake, real = rng.normal(size=(2, 3, 4, 5, 3)).astype(np.float32)
  directions = [np.array([np.sin(t), np.cos(t) * np.cos(a), np.cos(t) * np.sin(a)])
                for t in np.deg2rad([0, 30, 60]) for a in np.pi * np.arange(4) / 4]
  expected = np.mean([
      scipy.stats.wasserstein_distance(f.reshape(-1, 3) @ d, r.reshape(-1, 3) @ d)
      for f, r in zip(fake, real) for d in directions])
  got = losses.sliced_wasserstein(jnp.asarray(fake), jnp.asarray(real), num_directions=4)
  np.testing.assert_allclose(float(got), expected, rtol=1e-5)


def test_sliced_wasserstein_with_lightness_asks_for_each_colour_at_its_lightness():
  # Light pixels red, dark ones blue; the prediction swaps them. Over ab alone the colours are
  # all there, at no cost; with the lightness they are at the wrong ones.
  lightness = jnp.concatenate([jnp.full((1, 2, 4, 1), 0.5), jnp.full((1, 2, 4, 1), -0.5)],
                              axis=1)
  red, blue = jnp.array([0.5, 0.2]), jnp.array([-0.1, -0.5])
  real = jnp.where(lightness > 0, red, blue)
  swapped = jnp.where(lightness > 0, blue, red)
  assert float(losses.sliced_wasserstein(swapped, real)) < 1e-6
  joint = losses.sliced_wasserstein(*(jnp.concatenate([lightness, x], axis=-1)
                                      for x in (swapped, real)))
  assert float(joint) > 0.1


def test_sliced_wasserstein_refuses_other_channels():
  with pytest.raises(ValueError, match=r"ab colours \[..., 2\] or \(lightness, a, b\)"):
    losses.sliced_wasserstein(jnp.zeros((1, 2, 2, 4)), jnp.zeros((1, 2, 2, 4)))


def test_feature_matching_averages_each_layers_mean_absolute_difference():
  # Layers of different sizes weigh the same: the mean of the per-layer means.
  fake = [jnp.zeros((2, 4, 4, 3)), jnp.full((2, 2, 2, 5), 1.0)]
  real = [jnp.full((2, 4, 4, 3), -2.0), jnp.full((2, 2, 2, 5), 1.5)]
  np.testing.assert_allclose(float(losses.feature_matching(fake, real)), (2.0 + 0.5) / 2)
  assert float(losses.feature_matching(real, real)) == 0.0


def test_feature_matching_trains_the_fake_side_only():
  fake, real = [_images((2, 3, 3, 4), 20)], [_images((2, 3, 3, 4), 21)]
  grad_fake, grad_real = jax.grad(losses.feature_matching, argnums=(0, 1))(fake, real)
  assert np.all(np.asarray(grad_real[0]) == 0.0)
  # d/dfake mean|fake - real| = sign(fake - real) / n.
  np.testing.assert_allclose(np.asarray(grad_fake[0]),
                             np.sign(np.asarray(fake[0] - real[0])) / fake[0].size)


def test_feature_matching_refuses_unpaired_layers():
  with pytest.raises(ValueError, match="one real array per fake one"):
    losses.feature_matching([jnp.zeros(2)], [])
