r"""Zhang et al. 2016's classification head on the chosen recipe (CIFAR-10 subset).

    python scripts/sweep.py --sweep=configs/sweeps/classification.py --workdir_root=runs/classify
    python scripts/results_table.py --reference=chosen runs/classify/* runs/final/chosen,seed=0

`configs/cifar10.py:subset` (the chosen recipe, 10 epochs of the subset's 4,576 training
images), seed 0, with the generator predicting logits over ab bins of 10 and decoding them by
the annealed mean at Zhang et al.'s temperature 0.38 (`model.head="classification"`,
colorize/ab_bins.py). The losses around the head:
  loss=l1, l1_weight=0      the cross-entropy alone: Zhang et al.'s loss without rebalancing
  (the recipe's losses)     WGAN-GP + 100 x L1 of the decoded colours + the cross-entropy
  l1_weight=0               WGAN-GP + the cross-entropy
  loss=l1, l1_weight=0, l1_rebalance=0.5
                            Zhang et al.'s loss with their class rebalancing
Chosen on the validation split (train[90%:]) by the rule of docs/results.md.
"""
from configs.sweeps import Sweep

HEAD = {"model.head": "classification", "seed": 0}


def get_sweep() -> Sweep:
  """The loss mixes above, seed 0: a screen; a winner is confirmed with three seeds."""
  return Sweep(config="configs/cifar10.py:subset",
               points=[{**HEAD, "loss": "l1", "l1_weight": 0.0}, HEAD,
                       {**HEAD, "l1_weight": 0.0},
                       {**HEAD, "loss": "l1", "l1_weight": 0.0, "l1_rebalance": 0.5}])
