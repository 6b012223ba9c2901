"""The training split on the devices (config.data_on_device): batches gathered there from plans.

The host sends only each step's crop plans (`input_pipeline.train_plans`, a few int32 per
image); `gather` cuts the crops out of the device-resident split inside the compiled training
call, so no pixels cross from the host during training, and the batches equal
`input_pipeline.train_batches`'s exactly.

The split is replicated on every device when it fits in a quarter of a device's memory (and
where the backend does not say, as on CPU); otherwise it is sharded over the devices along the
examples, and each device contributes the crops of the images it holds (the others add zeros),
summed over the devices.
"""

import jax
import jax.numpy as jnp
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
import numpy as np

AXIS = "data"  # The trainer's data-parallel mesh axis.


def put(images: np.ndarray, mesh: Mesh, shard: bool | None = None) -> jax.Array:
  """Puts the split on every device of `mesh`, once.

  Works across processes: each process passes the whole split (every process decodes it) and
  places the parts its own devices hold.

  Args:
    images: uint8 [N, H, W, 3], `input_pipeline.train_array(config)`.
    mesh: the trainer's mesh (one axis, "data").
    shard: split the examples over the devices; None: only when a replica would take more
      than a quarter of a device's memory (never where the backend does not say, as on CPU).

  Returns:
    The split on the devices, uint8 [N', H, W, 3] (N' >= N when sharded: zero padding).
  """
  if shard is None:
    limit = (mesh.devices.flat[0].memory_stats() or {}).get("bytes_limit")
    shard = limit is not None and images.nbytes > limit // 4
  if shard:  # Zero images pad it to a multiple of the device count; plans never point there.
    padding = -len(images) % mesh.size
    images = np.concatenate([images, np.zeros((padding,) + images.shape[1:], images.dtype)])
  sharding = NamedSharding(mesh, P(AXIS) if shard else P())
  return jax.make_array_from_callback(images.shape, sharding, lambda index: images[index])


def _crops(images: jax.Array, plans: jax.Array, size: int) -> jax.Array:
  """The planned crops of `images` [N, H, W, 3] for `plans` [..., 4] -> [..., size, size, 3]."""
  def one(plan):
    index, top, left, flip = plan[0], plan[1], plan[2], plan[3]
    crop = jax.lax.dynamic_slice(images, (index, top, left, 0), (1, size, size, 3))[0]
    return jnp.where(flip > 0, crop[:, ::-1], crop)
  flat = plans.reshape(-1, 4)
  return jax.vmap(one)(flat).reshape(plans.shape[:-1] + (size, size, 3))


def gather(split: jax.Array, plans: jax.Array, size: int, mesh: Mesh,
           sharded: bool) -> jax.Array:
  """The batch that `plans` describe, sharded over the mesh like a host batch (under jit).

  Args:
    split: the training split on the devices (`put`).
    plans: int32 [batches_per_step, batch_size, 4], one step of `input_pipeline.train_plans`.
    size: config.image_size.
    mesh: the trainer's mesh.
    sharded: whether `put` sharded the split (`not split.sharding.is_fully_replicated`).

  Returns:
    uint8 [batches_per_step, batch_size, size, size, 3], the batch dimension on the mesh.
  """
  if sharded:
    def local_crops(images, plans):
      # The crops of the images this device holds; zeros where another device holds them.
      offset = jax.lax.axis_index(AXIS) * images.shape[0]
      local = plans[..., 0] - offset
      mine = (local >= 0) & (local < images.shape[0])
      plans = plans.at[..., 0].set(jnp.where(mine, local, 0))
      crops = jnp.where(mine[..., None, None, None], _crops(images, plans, size), 0)
      return jax.lax.psum(crops, AXIS)  # Exactly one device holds each image.
    batch = jax.shard_map(local_crops, mesh=mesh, in_specs=(P(AXIS), P()), out_specs=P())(
        split, plans)
  else:
    batch = _crops(split, plans, size)
  return jax.lax.with_sharding_constraint(batch, NamedSharding(mesh, P(None, AXIS)))
