"""The training state and the pure step functions: critic step, generator step, iteration.

Every function here is pure in (state, batch, key): randomness is the key folded with the
step, so a run is a function of (config, seed). The trainer compiles `train_iteration` with
`jax.jit` over a device mesh; the same functions run under `jax.pmap` when given the pmap
`axis_name`, in which case gradients, batch statistics and metrics are averaged over it.
"""
import dataclasses
import functools
from typing import Any

import flax
import jax
import jax.numpy as jnp
import ml_collections
import optax

from colorize import color
from colorize import diff_augment
from colorize import losses
from colorize import models
from colorize import rebalance

Params = Any
Metrics = dict[str, jax.Array]


@flax.struct.dataclass
class TrainState:
  """Everything that changes during training; models and optimizers are static fields."""
  step: jax.Array
  gen_params: Params
  gen_batch_stats: Params  # {} unless model.norm == "batch".
  gen_opt_state: optax.OptState
  critic_params: Params
  critic_opt_state: optax.OptState
  ema_params: Params | None  # None unless ema_decay > 0.
  # Batch statistics that match ema_params (`ema_batch_stats`); like gen_batch_stats, {}
  # without batch norm, and None unless ema_decay > 0.
  ema_batch_stats: Params | None
  generator: models.UNetGenerator = flax.struct.field(pytree_node=False)
  critic: models.PatchCritic = flax.struct.field(pytree_node=False)
  gen_tx: optax.GradientTransformation = flax.struct.field(pytree_node=False)
  critic_tx: optax.GradientTransformation = flax.struct.field(pytree_node=False)


@dataclasses.dataclass(frozen=True)
class StepConfig:
  """The hyperparameters the steps read (hashable, so it can be bound before jit).

  `ce_weight` weighs the cross-entropy of a classification head (unused by a regression one);
  `class_weight` that of the auxiliary classification of the image's label (model.num_classes);
  `swd_weight` that of the sliced Wasserstein distance between the generated and true colours
  (`losses.sliced_wasserstein`) of each image or, with `swd_scope="batch"`, of the batch;
  over ab, or with `swd_space="lab"` over lightness and ab jointly;
  `feature_matching_weight` that of the distance between the critic's hidden features of the
  generated and the true pairs (`losses.feature_matching`);
  `critic_augment` names the DiffAugment policies (`diff_augment.parse`) applied to every pair
  the critic sees, "" for none;
  `decay_start` and `num_steps` set the learning-rate schedule (`lr_factor`);
  `l1_class_weights`, the [BINS, BINS] table of `rebalance.class_weights` as nested tuples (or
  None), weighs the L1 term by each pixel's true colour.
  """
  loss: str = "wgan_gp"
  lambda_gp: float = 10.0
  l1_weight: float = 100.0
  ce_weight: float = 1.0
  class_weight: float = 0.0
  swd_weight: float = 0.0
  swd_scope: str = "image"
  swd_space: str = "ab"
  feature_matching_weight: float = 0.0
  critic_augment: str = ""
  n_critic: int = 1
  color_space: str = "lab"
  ema_decay: float = 0.0
  ema_debias: bool = False
  decay_start: float = 1.0
  num_steps: int = 0
  l1_class_weights: tuple[tuple[float, ...], ...] | None = None

  @classmethod
  def from_config(cls, config: ml_collections.ConfigDict, num_steps: int = 0,
                  ab_counts=None) -> "StepConfig":
    """The step hyperparameters of `config`, for a run of `num_steps` iterations.

    Args:
      config: the run config.
      num_steps: the run's length (`train.num_train_steps`); needed only when the learning
        rates decay (optimizer.decay_start < 1).
      ab_counts: the training split's ab histogram (`rebalance.ab_histogram`); needed only
        when config.l1_rebalance > 0.

    Returns:
      The StepConfig.

    Raises:
      ValueError: the learning rates decay but `num_steps` is not positive, or the L1 is
        rebalanced but `ab_counts` is None.
    """
    names = [f.name for f in dataclasses.fields(cls)
             if f.name not in ("decay_start", "num_steps", "l1_class_weights")]
    weights = None
    if config.l1_rebalance > 0:
      if ab_counts is None:
        raise ValueError("config.l1_rebalance > 0 weighs the L1 by the training split's "
                         "colours: pass ab_counts (rebalance.ab_histogram)")
      table = rebalance.class_weights(ab_counts, config.l1_rebalance)
      weights = tuple(map(tuple, table.tolist()))
    hp = cls(**{name: config[name] for name in names},
             decay_start=config.optimizer.decay_start, num_steps=num_steps,
             l1_class_weights=weights)
    if hp.decay_start < 1 and num_steps <= 0:
      raise ValueError("optimizer.decay_start < 1 decays the learning rates to 0 at the "
                       "run's last step: pass num_steps")
    return hp

  @property
  def critic_steps(self) -> int:
    """Critic updates per iteration (none for the L1-only ablation)."""
    return 0 if self.loss == "l1" else self.n_critic


# optax transforms are closures, so two calls to optax.adam are never equal; memoising makes
# the state's static fields (part of its treedef) equal across create_train_state calls, e.g.
# between jax.eval_shape(create_train_state) and the real init or a checkpoint restore.
_adam = functools.cache(optax.adam)


def lr_factor(step: jax.Array, hp: StepConfig) -> jax.Array:
  """The learning rates' multiplier at `step`: 1, then linearly down to 0 at the run's end.

  pix2pix's schedule: constant for the first `decay_start` of the run, then linear decay
  (decay_start = 1 keeps the rates constant). Adam's update is proportional to its learning
  rate, so scaling the update is the schedule, with no state of its own.
  """
  if hp.decay_start >= 1:
    return jnp.ones((), jnp.float32)
  start = hp.decay_start * hp.num_steps
  return jnp.clip((hp.num_steps - step) / (hp.num_steps - start), 0.0, 1.0).astype(jnp.float32)


def _ema_step_size(step: jax.Array, hp: StepConfig) -> float | jax.Array:
  """The EMA's weight on the params of update `step` (counted from 0).

  Plain: 1 - ema_decay. Debiased: (1 - d) / (1 - d ** (step + 1)), which keeps the EMA equal to
  the d ** age weighted mean of the params of updates 0..step (1 at the first update, so the
  initial weights drop out), as optax.ema(debias=True) divides out its zero start.
  """
  if not hp.ema_debias:
    return 1.0 - hp.ema_decay
  decay = jnp.float32(hp.ema_decay)
  return (1.0 - decay) / (1.0 - decay ** (step + 1).astype(jnp.float32))


def _scaled(updates, factor: jax.Array):
  return jax.tree.map(lambda u: u * factor.astype(u.dtype), updates)


def create_train_state(config: ml_collections.ConfigDict, rng: jax.Array) -> TrainState:
  """Initialises models and optimizers for `config` (use under jax.eval_shape for shapes).

  Args:
    config: the run config (model.*, optimizer.*, image_size, color_space, ema_decay, and
      compute_dtype when present).
    rng: the init key.

  Returns:
    The state at step 0.
  """
  m, o = config.model, config.optimizer
  # A config that only describes the model (restore.read_config) has no compute_dtype:
  # inference computes in float32 whatever dtype the run trained in.
  dtype = jnp.dtype(config.get("compute_dtype", "float32"))
  generator = models.UNetGenerator(
      out_channels=color.target_channels(config.color_space), width=m.width,
      max_width=m.max_width, norm=m.norm, dropout=m.dropout, dropout_layers=m.dropout_layers,
      init_std=m.init_std, conv_impl=m.conv_impl, depth=models.unet_depth(config.image_size),
      dtype=dtype, head=m.head, temperature=m.temperature, num_classes=m.num_classes,
      mirror_average=m.mirror_average)
  critic = models.PatchCritic(width=m.critic_width, num_layers=m.critic_layers,
                              conv_impl=m.conv_impl, init_std=m.init_std,
                              dtype=dtype, num_classes=m.num_classes if m.critic_projection else 0)
  s = config.image_size
  cond = jnp.zeros((1, s, s, 1), jnp.float32)
  target = jnp.zeros((1, s, s, generator.out_channels), jnp.float32)
  gen_rng, critic_rng = jax.random.split(rng)
  gen_vars = generator.init(gen_rng, cond, train=False)
  critic_params = critic.init(critic_rng, cond, target, jnp.zeros((1,), jnp.int32))["params"]
  gen_tx = _adam(o.generator_lr, b1=o.b1, b2=o.b2)
  critic_tx = _adam(o.critic_lr, b1=o.b1, b2=o.b2)
  with_ema = config.ema_decay > 0
  return TrainState(
      step=jnp.zeros((), jnp.int32),
      gen_params=gen_vars["params"],
      gen_batch_stats=gen_vars.get("batch_stats", {}),
      gen_opt_state=gen_tx.init(gen_vars["params"]),
      critic_params=critic_params,
      critic_opt_state=critic_tx.init(critic_params),
      ema_params=gen_vars["params"] if with_ema else None,
      ema_batch_stats=gen_vars.get("batch_stats", {}) if with_ema else None,
      generator=generator, critic=critic, gen_tx=gen_tx, critic_tx=critic_tx)


def _generator(state: TrainState, axis_name: str | None) -> models.UNetGenerator:
  # Under pmap each device sees a slice of the batch, so batch norm must average its
  # statistics over the pmap axis to match the global-batch statistics of the jit path.
  return state.generator if axis_name is None else state.generator.clone(axis_name=axis_name)


def _generate(state: TrainState, params: Params, cond: jax.Array, rng: jax.Array,
              axis_name: str | None) -> tuple[tuple[jax.Array, ...], Params]:
  """Generator forward in training mode.

  Returns ((colour, the classification head's ab logits or None, the class logits or None),
  updated batch stats).
  """
  if axis_name is not None:
    # Each device holds other samples, so it needs other dropout masks. (The masks differ
    # from the jit path's, which draws them for the global batch: equal in distribution.)
    rng = jax.random.fold_in(rng, jax.lax.axis_index(axis_name))
  variables = {"params": params}
  if state.gen_batch_stats:
    variables["batch_stats"] = state.gen_batch_stats
  fake, mutated = _generator(state, axis_name).apply(
      variables, cond, train=True, rngs={"dropout": rng},
      mutable=["batch_stats", "intermediates"])
  sown = mutated.get("intermediates", {})
  logits = sown.get("ab_logits", (None,))[0]
  class_logits = sown.get("class_logits", (None,))[0]
  return (fake, logits, class_logits), mutated.get("batch_stats", {})


def _per_sample_uniform(rng: jax.Array, local_batch: int, axis_name: str | None,
                        per_sample: tuple[int, ...] = ()) -> jax.Array:
  """U[0, 1) [B, *per_sample] for the global batch; under pmap, this device's slice of it.

  So the gradient penalty's interpolation weights and the critic's augmentations are the
  same numbers under jit and pmap.
  """
  if axis_name is None:
    return jax.random.uniform(rng, (local_batch, *per_sample))
  num_devices = jax.lax.psum(1, axis_name)
  draws = jax.random.uniform(rng, (num_devices * local_batch, *per_sample))
  return jax.lax.dynamic_slice_in_dim(
      draws, jax.lax.axis_index(axis_name) * local_batch, local_batch)


def _augmented(arrays: list[jax.Array], rng: jax.Array, hp: "StepConfig",
               axis_name: str | None) -> list[jax.Array]:
  """`arrays` as the critic sees them: DiffAugment's `hp.critic_augment`, or unchanged."""
  policy = diff_augment.parse(hp.critic_augment)
  if not policy:
    return arrays
  uniforms = _per_sample_uniform(jax.random.fold_in(rng, 1), arrays[0].shape[0], axis_name,
                                 (diff_augment.NUM_UNIFORMS,))
  return diff_augment.augment(arrays, uniforms, policy)


def _mean(tree, axis_name: str | None):
  return tree if axis_name is None else jax.lax.pmean(tree, axis_name)


def _generator_forward(state: TrainState, cond: jax.Array, rng: jax.Array,
                       axis_name: str | None):
  """The generator's training-mode forward with its pullback.

  Returns ((fake, ab logits or None, class logits or None), pullback, batch stats).

  Computed once per iteration: the last critic step trains on `fake` and the generator
  update pulls its loss gradient back through the same forward (pix2pix does the same), so
  the generator's forward pass is not run twice.
  """
  def forward(gen_params):
    return _generate(state, gen_params, cond, rng, axis_name)
  return jax.vjp(forward, state.gen_params, has_aux=True)


def _critic_update(state: TrainState, cond: jax.Array, real: jax.Array, fake: jax.Array,
                   gp_rng: jax.Array, hp: StepConfig, axis_name: str | None,
                   labels: jax.Array | None = None) -> tuple[TrainState, Metrics]:
  """One critic update on (real, fake) colour for the condition `cond` (and `labels`)."""
  fake = jax.lax.stop_gradient(fake)
  cond, real, fake = _augmented([cond, real, fake], gp_rng, hp, axis_name)
  both_labels = None if labels is None else jnp.concatenate([labels, labels])

  def loss_fn(critic_params):
    def critic_fn(colour):
      return state.critic.apply({"params": critic_params}, cond, colour, labels)
    # One forward over real and fake together: the critic has no cross-sample layers.
    scores = state.critic.apply({"params": critic_params}, jnp.concatenate([cond, cond]),
                                jnp.concatenate([real, fake]), both_labels)
    real_scores, fake_scores = jnp.split(scores, 2)
    loss, metrics = losses.critic_loss(real_scores, fake_scores, hp.loss)
    if hp.loss == "wgan_gp":
      eps = _per_sample_uniform(gp_rng, real.shape[0], axis_name)
      gp, norms = losses.gradient_penalty(critic_fn, real, fake, eps=eps)
      loss = loss + hp.lambda_gp * gp
      metrics.update(gradient_penalty=gp, critic_grad_norm=norms.mean())
    return loss, {**metrics, "critic_loss": loss}

  grads, metrics = jax.grad(loss_fn, has_aux=True)(state.critic_params)
  grads, metrics = _mean((grads, metrics), axis_name)
  updates, opt_state = state.critic_tx.update(grads, state.critic_opt_state,
                                              state.critic_params)
  updates = _scaled(updates, lr_factor(state.step, hp))
  state = state.replace(critic_params=optax.apply_updates(state.critic_params, updates),
                        critic_opt_state=opt_state)
  return state, metrics


def _colour_sets(cond: jax.Array, fake: jax.Array, real: jax.Array, hp: StepConfig,
                 axis_name: str | None) -> tuple[jax.Array, jax.Array]:
  """The point sets whose distributions `losses.sliced_wasserstein` compares.

  hp.swd_space: "ab", the colours; "lab", (lightness, a, b), the lightness in ab's units.
  hp.swd_scope: "image", each image; "batch", the global batch's pixels as one image
  [1, pixels, 1, C]. Under pmap the batch is gathered from every device, so the distance is the
  global batch's, as under jit: each device differentiates the same loss, the gather's
  transpose sums the devices' cotangents for its slice, and the gradients' pmean divides that
  sum back out.
  """
  if hp.swd_space == "lab":
    # The condition is L / L_SCALE - 1 and the colours ab / AB_SCALE: in ab's units the
    # lightness is (L - L_SCALE) / AB_SCALE, whose offset neither sorting nor distance sees.
    lightness = cond * (color.L_SCALE / color.AB_SCALE)
    fake, real = (jnp.concatenate([lightness, x], axis=-1) for x in (fake, real))
  if hp.swd_scope == "image":
    return fake, real
  if axis_name is not None:
    fake, real = (jax.lax.all_gather(x, axis_name, tiled=True) for x in (fake, real))
  return fake.reshape(1, -1, 1, fake.shape[-1]), real.reshape(1, -1, 1, real.shape[-1])


def _generator_update(state: TrainState, cond: jax.Array, real: jax.Array, forward,
                      hp: StepConfig, axis_name: str | None,
                      labels: jax.Array | None = None,
                      augment_rng: jax.Array | None = None) -> tuple[TrainState, Metrics]:
  """One generator update through `forward`, a `_generator_forward` of the current params.

  `labels` (int [B]) are the images' classes, for the class logits' cross-entropy and a
  projection critic; `augment_rng` draws the critic's augmentation (hp.critic_augment).
  """
  outputs, pullback, batch_stats = forward
  weights = None
  if hp.l1_class_weights is not None:
    weights = rebalance.pixel_weights(real, jnp.asarray(hp.l1_class_weights))

  def loss_fn(outputs):
    fake, logits, class_logits = outputs
    scores = features = None
    if hp.loss != "l1":
      seen_cond, seen_real, seen_fake = _augmented([cond, real, fake], augment_rng, hp,
                                                   axis_name)
      if hp.feature_matching_weight:
        # The true pairs' features too, in one forward: the critic has no cross-sample layers.
        both_labels = None if labels is None else jnp.concatenate([labels, labels])
        both, sown = state.critic.apply(
            {"params": state.critic_params}, jnp.concatenate([seen_cond, seen_cond]),
            jnp.concatenate([seen_real, seen_fake]), both_labels, mutable=["intermediates"])
        scores = jnp.split(both, 2)[1]
        features = [jnp.split(f, 2) for f in sown["intermediates"]["features"]]
      else:
        scores = state.critic.apply({"params": state.critic_params}, seen_cond, seen_fake,
                                    labels)
    total, metrics = losses.generator_loss(scores, fake, real, hp.l1_weight, hp.loss, weights)
    if features is not None:
      matching = losses.feature_matching([f for _, f in features], [r for r, _ in features])
      total = total + hp.feature_matching_weight * matching
      metrics.update(feature_matching=matching, generator_loss=total)
    if logits is not None:
      cross_entropy, ce_metrics = losses.ab_cross_entropy(logits, real, weights)
      total = total + hp.ce_weight * cross_entropy
      metrics.update(ce_metrics, generator_loss=total)
    if hp.swd_weight:
      swd = losses.sliced_wasserstein(*_colour_sets(cond, fake, real, hp, axis_name))
      total = total + hp.swd_weight * swd
      metrics.update(sliced_wasserstein=swd, generator_loss=total)
    if class_logits is not None:
      if labels is None:
        raise ValueError("the generator classifies its images (model.num_classes > 0): pass "
                         "their labels")
      class_ce = optax.softmax_cross_entropy_with_integer_labels(class_logits, labels).mean()
      total = total + hp.class_weight * class_ce
      metrics.update(class_ce=class_ce, generator_loss=total, class_accuracy=jnp.mean(
          (jnp.argmax(class_logits, axis=-1) == labels).astype(jnp.float32)))
    return total, metrics

  outputs_grad, metrics = jax.grad(loss_fn, has_aux=True)(outputs)
  grads, = pullback(outputs_grad)
  grads, metrics = _mean((grads, metrics), axis_name)
  updates, opt_state = state.gen_tx.update(grads, state.gen_opt_state, state.gen_params)
  params = optax.apply_updates(state.gen_params, _scaled(updates, lr_factor(state.step, hp)))
  ema = state.ema_params
  if ema is not None:
    ema = optax.incremental_update(params, ema, step_size=_ema_step_size(state.step, hp))
  state = state.replace(step=state.step + 1, gen_params=params, gen_batch_stats=batch_stats,
                        gen_opt_state=opt_state, ema_params=ema)
  return state, metrics


def critic_step(state: TrainState, images: jax.Array, rng: jax.Array, *, hp: StepConfig,
                axis_name: str | None = None,
                labels: jax.Array | None = None) -> tuple[TrainState, Metrics]:
  """One critic update on a batch of real images.

  Args:
    state: the training state.
    images: uint8 RGB [B, H, W, 3].
    rng: key, split into (generator dropout, the penalty's interpolation weights and the
      critic's augmentation).
    hp: loss hyperparameters.
    axis_name: the pmap axis to average over, or None under jit.
    labels: int [B], the images' classes; needed when the critic is told them
      (model.critic_projection).

  Returns:
    (state with new critic params and optimizer state, metrics).
  """
  cond, real = color.encode(images, hp.color_space)
  gen_rng, gp_rng = jax.random.split(rng)
  (fake, *_), _ = _generate(state, state.gen_params, cond, gen_rng, axis_name)
  return _critic_update(state, cond, real, fake, gp_rng, hp, axis_name, labels)


def generator_step(state: TrainState, images: jax.Array, rng: jax.Array, *, hp: StepConfig,
                   axis_name: str | None = None,
                   labels: jax.Array | None = None) -> tuple[TrainState, Metrics]:
  """One generator update: adversarial loss against the current critic + l1_weight * L1.

  Args:
    state: the training state.
    images: uint8 RGB [B, H, W, 3].
    rng: key for dropout and for the critic's augmentation (hp.critic_augment).
    hp: loss hyperparameters.
    axis_name: the pmap axis to average over, or None under jit.
    labels: int [B], the images' classes; needed when the generator classifies them
      (model.num_classes > 0) or the critic is told them (model.critic_projection).

  Returns:
    (state with new generator params, batch stats, EMA and optimizer state; step + 1, metrics).
  """
  cond, real = color.encode(images, hp.color_space)
  forward = _generator_forward(state, cond, rng, axis_name)
  return _generator_update(state, cond, real, forward, hp, axis_name, labels, augment_rng=rng)


def train_iteration(state: TrainState, images: jax.Array, key: jax.Array, *, hp: StepConfig,
                    axis_name: str | None = None,
                    labels: jax.Array | None = None) -> tuple[TrainState, Metrics]:
  """`hp.critic_steps` critic steps, each on its own batch, then one generator step.

  The generator step trains on the last critic batch and reuses that critic step's generator
  forward (same fake images, same dropout masks), so the result equals
  `generator_step(critic_step(state, x, r), x, jax.random.split(r)[0])` for the last batch x
  and its key r, with one generator forward pass fewer.

  Args:
    state: the training state.
    images: uint8 RGB [K, B, H, W, 3], K = input_pipeline.batches_per_step(config): one
      batch per critic step; the generator step uses the last.
    key: the run's base key; folded with the step here, so iterations never share randomness.
    hp: loss hyperparameters.
    axis_name: the pmap axis to average over, or None under jit.
    labels: int [K, B], the images' classes; needed when the generator classifies them
      (model.num_classes > 0) or the critic is told them (model.critic_projection).

  Returns:
    (new state, metrics of the generator step and of the last critic step).
  """
  earlier_labels, labels = (None, None) if labels is None else (labels[:-1], labels[-1])
  rng = jax.random.fold_in(key, state.step)
  cond, real = color.encode(images[-1], hp.color_space)
  if not hp.critic_steps:
    forward = _generator_forward(state, cond, jax.random.fold_in(rng, 1), axis_name)
    return _generator_update(state, cond, real, forward, hp, axis_name, labels)

  critic_rngs = jax.random.split(jax.random.fold_in(rng, 0), hp.critic_steps)
  if hp.critic_steps > 1:
    def one_critic_step(state, xs):
      batch, rng, batch_labels = xs
      return critic_step(state, batch, rng, hp=hp, axis_name=axis_name, labels=batch_labels)
    state, _ = jax.lax.scan(one_critic_step, state,
                            (images[:-1], critic_rngs[:-1], earlier_labels))
  gen_rng, gp_rng = jax.random.split(critic_rngs[-1])
  forward = _generator_forward(state, cond, gen_rng, axis_name)
  state, critic_metrics = _critic_update(state, cond, real, forward[0][0], gp_rng, hp,
                                         axis_name, labels)
  state, gen_metrics = _generator_update(state, cond, real, forward, hp, axis_name, labels,
                                         augment_rng=gen_rng)
  return state, {**critic_metrics, **gen_metrics}


def inference_variables(state: TrainState) -> dict[str, Params]:
  """The generator's variables for inference: the EMA weights and their statistics if kept."""
  if state.ema_params is None:
    params, batch_stats = state.gen_params, state.gen_batch_stats
  else:
    params, batch_stats = state.ema_params, state.ema_batch_stats
  return {"params": params, **({"batch_stats": batch_stats} if batch_stats else {})}


def ema_batch_stats(state: TrainState, images: jax.Array, key: jax.Array, *,
                    hp: StepConfig) -> TrainState:
  """Recomputes the batch-norm statistics for the EMA weights ("precise BN").

  The running averages in gen_batch_stats follow the raw weights: used with the EMA weights
  they would normalise with another network's statistics. These are the mean over `images`'
  batches of the EMA generator's training-mode batch statistics (dropout on, as when the
  running averages are collected). Training never reads them, so recomputing them, at any
  step, changes nothing else.

  Args:
    state: a state with EMA weights (ema_decay > 0).
    images: uint8 RGB [N, B, H, W, 3]: N training batches of the training batch size.
    key: dropout randomness.
    hp: step hyperparameters (the colour space).

  Returns:
    `state` with new `ema_batch_stats` ({} without batch norm).
  """
  if not state.gen_batch_stats:
    return state
  generator = state.generator.clone(bn_momentum=0.0)  # One call stores its batch's stats.

  def batch_stats(xs):
    index, batch = xs
    cond, _ = color.encode(batch, hp.color_space)
    _, mutated = generator.apply(
        {"params": state.ema_params, "batch_stats": state.gen_batch_stats}, cond, train=True,
        rngs={"dropout": jax.random.fold_in(key, index)}, mutable=["batch_stats"])
    return mutated["batch_stats"]

  stats = jax.lax.map(batch_stats, (jnp.arange(images.shape[0]), images))
  return state.replace(ema_batch_stats=jax.tree.map(lambda s: s.mean(axis=0), stats))


def colorize(state: TrainState, images: jax.Array, color_space: str) -> jax.Array:
  """Colorizes uint8 RGB images (only their lightness/gray is used) in inference mode.

  Uses the EMA weights and their batch statistics when the state has them.

  Args:
    state: a training state (e.g. restored from a checkpoint).
    images: uint8 RGB [B, H, W, 3].
    color_space: the run's colour space.

  Returns:
    sRGB float [B, H, W, 3] in [0, 1].
  """
  cond, _ = color.encode(images, color_space)
  prediction = state.generator.apply(inference_variables(state), cond, train=False)
  return color.decode(cond, prediction, color_space)


def donated_state() -> tuple[int, ...]:
  """`donate_argnums` for the step functions: the state (argument 0) except on CPU.

  Donating lets GPU/TPU update the state in place, saving a copy of it in device memory. On
  XLA:CPU (jax 0.10.2) it instead adds copies of Adam's first moments to every step (+10%
  per full-size iteration at batch 64, scripts/benchmark.py), and host memory is plentiful.
  """
  return () if jax.default_backend() == "cpu" else (0,)


def jit_train_iteration(hp: StepConfig):
  """`train_iteration` compiled for the trainer (state donated where `donated_state` says).

  Shardings come from the committed inputs (state replicated on the mesh, batch sharded on
  "data"; jit keeps them for the outputs). They are deliberately not repeated as
  `in_shardings`: on XLA:CPU (jax 0.10.2) any explicit in_shardings made this step 8-15x
  slower (0.33 s -> 2.5-5 s per full-size iteration), while committed inputs compile to the
  same partitioned program on GPU/TPU.
  """
  return jax.jit(functools.partial(train_iteration, hp=hp), donate_argnums=donated_state())
