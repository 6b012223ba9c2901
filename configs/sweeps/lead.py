r"""A debiased EMA, and three changes on the lead (classifier, decay, the batch's colours).

    python scripts/sweep.py --sweep=configs/sweeps/lead.py --workdir_root=runs/lead
    python scripts/results_table.py --reference=chosen runs/lead/* runs/chosen,* \
        "runs/swd/model.num_classes=10,"*

The lead is configs/sweeps/swd.py's last three points: `configs/cifar10.py:subset` (the chosen
recipe, 10 epochs of the subset's 4,576 training images) with the auxiliary classifier at
weight 5, pix2pix's learning-rate decay from half way and the batch's sliced Wasserstein term
at weight 30. Seed 0 each (a screen), against the lead's and the chosen recipe's same seed:
  * the EMA debiased (`ema_debias`), on the chosen recipe and on the lead: the plain EMA keeps
    0.999**2860 = 5.7% of the random initial weights at the end of these runs;
  * on the lead with the debiased EMA: the classifier's weight 20 instead of 5; a projection
    critic (`model.critic_projection`), told each image's class; the batch's term at 60;
  * the debiased EMA's horizon, on the chosen recipe: ema_decay 0.9995 (0.999's horizon,
    1,000 steps, is a third of these runs).
Then the batch's term at 60 with seeds 1 and 2: the first point at both colour targets, or all
but (an intersection of 0.848 of 0.85 over the three seeds); then at 70, seeds 0-2, a step
further along its line.
Scored on the validation split (train[90%:]) by the rule of docs/results.md.
"""
from configs.sweeps import Sweep

_LEAD = {"model.num_classes": 10, "class_weight": 5.0, "optimizer.decay_start": 0.5,
         "swd_weight": 30.0, "swd_scope": "batch"}


def get_sweep() -> Sweep:
  """The points of the module docstring, in its order."""
  points = [{"ema_debias": True, "seed": 0},
            {**_LEAD, "ema_debias": True, "seed": 0},
            {**_LEAD, "class_weight": 20.0, "ema_debias": True, "seed": 0},
            {**_LEAD, "ema_debias": True, "model.critic_projection": True, "seed": 0},
            {**_LEAD, "swd_weight": 60.0, "ema_debias": True, "seed": 0}]
  points.append({"ema_debias": True, "ema_decay": 0.9995, "seed": 0})
  points += [{**_LEAD, "swd_weight": 60.0, "ema_debias": True, "seed": s} for s in (1, 2)]
  points += [{**_LEAD, "swd_weight": 70.0, "ema_debias": True, "seed": s} for s in (0, 1, 2)]
  return Sweep(config="configs/cifar10.py:subset", points=points)
