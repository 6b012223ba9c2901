"""Pure GAN losses: functions of score arrays and of a critic function, nothing else.

Usable from a notebook with only a params pytree and an apply function:

    critic_fn = lambda color: critic.apply(critic_params, cond, color)
    gp = gradient_penalty(critic_fn, real, fake, jax.random.key(0))

Conventions: `*_scores` are the critic's raw outputs (any shape with the batch first, e.g.
PatchGAN's [B, h, w, 1]); a sample's score is the mean over its patches, so the Wasserstein
estimate is mean(real) - mean(fake) and the gradient penalty constrains the gradient of that
per-sample mean.

Losses ("loss" in the config):
  wgan_gp  Gulrajani et al. 2017: critic minimises E[D(fake)] - E[D(real)] + lambda * GP.
  vanilla  Goodfellow et al. 2014 with the non-saturating generator loss (scores are logits).
  lsgan    Mao et al. 2017: least squares towards 1 (real) and 0 (fake).
  l1       no adversarial term: the generator is trained on L1 alone, no critic.

With the classification head (`model.head`), the generator's loss also has `ab_cross_entropy`;
with `swd_weight`, `sliced_wasserstein`; with `feature_matching_weight`, `feature_matching`.
"""
import math
from typing import Callable

import jax
import jax.numpy as jnp
import optax

from colorize import ab_bins

LOSSES = ("wgan_gp", "vanilla", "lsgan", "l1")


def _per_sample(x: jax.Array) -> jax.Array:
  """Means every axis but the first: patch scores [B, ...] -> sample scores [B]."""
  return x.reshape(x.shape[0], -1).mean(axis=1)


def critic_loss(real_scores: jax.Array, fake_scores: jax.Array, loss: str = "wgan_gp"
                ) -> tuple[jax.Array, dict[str, jax.Array]]:
  """The critic's loss without the gradient penalty.

  Args:
    real_scores: critic outputs on real pairs, [B, ...].
    fake_scores: critic outputs on generated pairs, [B, ...].
    loss: "wgan_gp", "vanilla" or "lsgan".

  Returns:
    (scalar loss to minimise, metrics). For wgan_gp the metrics hold `wasserstein`,
    the estimate E[D(real)] - E[D(fake)] (the loss is its negative).
  """
  real, fake = real_scores.mean(), fake_scores.mean()
  if loss == "wgan_gp":
    return fake - real, {"wasserstein": real - fake}
  if loss == "vanilla":
    value = (optax.sigmoid_binary_cross_entropy(real_scores, jnp.ones_like(real_scores)).mean()
             + optax.sigmoid_binary_cross_entropy(fake_scores, jnp.zeros_like(fake_scores)).mean())
    return value, {"critic_real": real, "critic_fake": fake}
  if loss == "lsgan":
    value = 0.5 * (jnp.mean((real_scores - 1.0)**2) + jnp.mean(fake_scores**2))
    return value, {"critic_real": real, "critic_fake": fake}
  raise ValueError(f"loss={loss!r} has no critic; expected one of {LOSSES[:3]}")


def gradient_penalty(critic_fn: Callable[[jax.Array], jax.Array], real: jax.Array,
                     fake: jax.Array, rng: jax.Array | None = None,
                     eps: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
  """WGAN-GP's penalty, mean over samples of (||grad_x D(x_hat)||_2 - 1)^2.

  x_hat = eps * real + (1 - eps) * fake with eps ~ U[0, 1] per sample. The gradient is taken
  with `jax.grad` of the summed per-sample scores: samples are independent (no batch norm in
  the critic), so each sample's slice of that gradient is its own gradient.

  Args:
    critic_fn: maps colour images [B, ...] to scores [B, ...] (condition already bound).
    real: real colour channels [B, H, W, C].
    fake: generated colour channels, same shape (treated as a constant).
    rng: key for the interpolation weights (used when `eps` is None).
    eps: the interpolation weights [B] in [0, 1], when the caller draws them (e.g. one
      slice of a global batch's weights per device under pmap).

  Returns:
    (penalty, per-sample gradient norms [B]).
  """
  if eps is None:
    eps = jax.random.uniform(rng, (real.shape[0],), real.dtype)
  eps = eps.reshape((real.shape[0],) + (1,) * (real.ndim - 1))
  x_hat = eps * real + (1.0 - eps) * jax.lax.stop_gradient(fake)
  grads = jax.grad(lambda x: _per_sample(critic_fn(x)).sum())(x_hat)
  # The epsilon keeps the gradient of the norm finite where grads are exactly zero.
  norms = jnp.sqrt(jnp.sum(grads.reshape(grads.shape[0], -1)**2, axis=1) + 1e-12)
  return jnp.mean((norms - 1.0)**2), norms


def generator_loss(fake_scores: jax.Array | None, fake: jax.Array, real: jax.Array,
                   l1_weight: float, loss: str = "wgan_gp",
                   pixel_weights: jax.Array | None = None
                   ) -> tuple[jax.Array, dict[str, jax.Array]]:
  """Adversarial term + l1_weight * L1(fake, real).

  Args:
    fake_scores: critic outputs on generated pairs [B, ...]; None for loss="l1".
    fake: generated colour channels [B, H, W, C].
    real: real colour channels, same shape.
    l1_weight: weight of the L1 term.
    loss: one of LOSSES.
    pixel_weights: [B, H, W, 1] weights of each pixel's L1 distance (class rebalancing,
      `rebalance.pixel_weights`), or None for the plain mean.

  Returns:
    (scalar loss, metrics with `adversarial`, `l1` (the plain mean, comparable between runs),
    `generator_loss`, and `l1_rebalanced` (the weighted term) when weighted).
  """
  distance = jnp.abs(fake - real)
  l1 = jnp.mean(distance)
  l1_term = l1 if pixel_weights is None else jnp.mean(pixel_weights * distance)
  if loss == "wgan_gp":
    adversarial = -fake_scores.mean()
  elif loss == "vanilla":  # Non-saturating: maximise log D(fake).
    adversarial = optax.sigmoid_binary_cross_entropy(
        fake_scores, jnp.ones_like(fake_scores)).mean()
  elif loss == "lsgan":
    adversarial = 0.5 * jnp.mean((fake_scores - 1.0)**2)
  elif loss == "l1":
    adversarial = jnp.zeros((), l1.dtype)
  else:
    raise ValueError(f"loss={loss!r}; expected one of {LOSSES}")
  total = adversarial + l1_weight * l1_term
  metrics = {"adversarial": adversarial, "l1": l1, "generator_loss": total}
  if pixel_weights is not None:
    metrics["l1_rebalanced"] = l1_term
  return total, metrics


def sliced_wasserstein(fake: jax.Array, real: jax.Array, num_directions: int = 8) -> jax.Array:
  """Each image's sliced Wasserstein-1 distance between its generated and true colours.

  The pixels of an image are a cloud of points in the ab plane. Both clouds are projected on
  `num_directions` evenly spaced directions of the half circle and each projection is sorted:
  the mean absolute difference of the sorted values, rank by rank, is the 1-D Wasserstein-1
  distance of the projected colours. Unlike the L1, which an unsure pixel minimises with a
  median colour, it asks only that each image's colours be distributed as the true ones,
  wherever they sit in the image, so it pays for colours that the image has and the prediction
  lacks (Rabin et al. 2011 match colour distributions this way).

  With a third channel first, the points are (lightness, a, b) and the directions those of
  the half circle tilted towards the lightness axis by 0, 30 and 60 degrees: the joint
  distribution of lightness and colour is matched (the N-dimensional colour transfer of Pitié
  et al. 2005), so a colour is asked for at the lightness where the truth has it, not only
  somewhere. The lightness must be the same in both sets (the condition), in ab's units.

  Args:
    fake: generated ab [B, H, W, 2], or (lightness, a, b) [B, H, W, 3].
    real: true colours, the same shape.
    num_directions: projections per tilt of the half circle.

  Returns:
    The mean over images and directions, in the units of ab.
  """
  if fake.shape[-1] not in (2, 3):
    raise ValueError("sliced_wasserstein compares ab colours [..., 2] or (lightness, a, b) "
                     f"[..., 3], got {fake.shape}")
  angles = jnp.pi * jnp.arange(num_directions) / num_directions
  directions = jnp.stack([jnp.cos(angles), jnp.sin(angles)])  # [2, D], the ab plane.
  if fake.shape[-1] == 3:  # [3, 3 D]: each tilted towards the lightness axis.
    directions = jnp.concatenate(
        [jnp.stack([jnp.full(num_directions, math.sin(t)), *(math.cos(t) * directions)])
         for t in map(math.radians, (0.0, 30.0, 60.0))], axis=1)

  def sorted_projections(x):
    return jnp.sort(x.reshape(x.shape[0], -1, x.shape[-1]) @ directions.astype(x.dtype), axis=1)
  return jnp.mean(jnp.abs(sorted_projections(fake) - sorted_projections(real)))


def feature_matching(fake_features, real_features) -> jax.Array:
  """The critic's hidden features of generated and of real pairs, matched image by image.

  pix2pixHD's feature-matching loss (Wang et al. 2018, after Salimans et al. 2016): the mean
  absolute difference between the critic's activations on (condition, generated colour) and
  on (condition, true colour), per layer, averaged over the layers. A paired loss like the
  L1, but measured where the critic looks: colour regions and edges rather than each pixel's
  value. The real features are constants: only the generator learns from it.

  Args:
    fake_features: the critic's hidden activations on the generated pairs, a sequence of
      [B, ...] arrays (`models.PatchCritic`'s sown "features").
    real_features: the same on the true pairs, the same shapes.

  Returns:
    The mean over layers of each layer's mean absolute difference.
  """
  if len(fake_features) != len(real_features) or not fake_features:
    raise ValueError(f"feature_matching needs one real array per fake one, got "
                     f"{len(fake_features)} and {len(real_features)}")
  distances = [jnp.mean(jnp.abs(fake.astype(jnp.float32)
                                - jax.lax.stop_gradient(real).astype(jnp.float32)))
               for fake, real in zip(fake_features, real_features)]
  return jnp.mean(jnp.stack(distances))


def ab_cross_entropy(logits: jax.Array, target_ab: jax.Array,
                     pixel_weights: jax.Array | None = None
                     ) -> tuple[jax.Array, dict[str, jax.Array]]:
  """Zhang et al. 2016's loss: cross-entropy of the ab-bin logits against the true colours.

  Args:
    logits: [B, H, W, ab_bins.BINS**2] over the bins (`models.UNetGenerator`'s sown logits).
    target_ab: true ab in the model's units (`color.encode`), [B, H, W, 2]; each is
      soft-encoded over the bins (`ab_bins.soft_encode`).
    pixel_weights: [B, H, W, 1] weights of each pixel's term (class rebalancing, as Zhang et
      al.: `rebalance.pixel_weights`), or None for the plain mean.

  Returns:
    (the mean over pixels of -sum_q p_q log softmax(logits)_q in nats, weighted when
    `pixel_weights` is given; metrics with `cross_entropy`, the plain mean, and
    `cross_entropy_rebalanced`, the weighted one, when weighted).
  """
  log_p = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
  per_pixel = -jnp.sum(ab_bins.soft_encode(target_ab) * log_p, axis=-1)
  plain = jnp.mean(per_pixel)
  if pixel_weights is None:
    return plain, {"cross_entropy": plain}
  weighted = jnp.mean(pixel_weights[..., 0] * per_pixel)
  return weighted, {"cross_entropy": plain, "cross_entropy_rebalanced": weighted}
