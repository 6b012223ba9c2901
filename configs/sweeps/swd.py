r"""Matching the colour distribution (a sliced Wasserstein term) on the chosen recipe.

    python scripts/sweep.py --sweep=configs/sweeps/swd.py --workdir_root=runs/swd
    python scripts/results_table.py --chroma_gains=0.8,0.9,1 --reference=chosen \
        runs/swd/swd_weight=* "runs/chosen,seed=0"
    python scripts/results_table.py --reference=chosen "runs/swd/model.num_classes=10,"* \
        "runs/auxclass/model.num_classes=10,class_weight=5,optimizer.decay_start=0.5,"* \
        runs/chosen,*

`configs/cifar10.py:subset` (the chosen recipe, 10 epochs of the subset's 4,576 training
images) with `swd_weight` times the sliced Wasserstein distance between generated and true ab
(`losses.sliced_wasserstein`) added to the generator's loss: the L1 answers an unsure pixel
with a median colour, this term asks for the true spread of colours, of each image
(`swd_scope="image"`) or of the whole batch (`"batch"`). Weight 100, seed 0 (a screen),
against the chosen recipe's same seed (`runs/chosen,seed=0`: `python -m colorize.main
--config=configs/cifar10.py:subset --workdir=runs/chosen,seed=0`), each also with its chroma
turned down. Then weight 30 over the batch on top of configs/sweeps/auxclass.py's lead (the
auxiliary classifier at weight 5 with the learning-rate decay), seeds 0-2. Scored on the
validation split (train[90%:]) by the rule of docs/results.md.
"""
from configs.sweeps import Sweep


def get_sweep() -> Sweep:
  """The screen (weight 100 over each image and over the batch, seed 0), then the lead."""
  points = [{"swd_weight": 100.0, "seed": 0},
            {"swd_weight": 100.0, "swd_scope": "batch", "seed": 0}]
  points += [{"model.num_classes": 10, "class_weight": 5.0, "optimizer.decay_start": 0.5,
              "swd_weight": 30.0, "swd_scope": "batch", "seed": s} for s in (0, 1, 2)]
  return Sweep(config="configs/cifar10.py:subset", points=points)
