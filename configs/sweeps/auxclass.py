r"""An auxiliary classification of the image's class (Iizuka et al. 2016) on the chosen recipe.

    python scripts/sweep.py --sweep=configs/sweeps/auxclass.py --workdir_root=runs/auxclass
    python scripts/results_table.py --reference=chosen runs/auxclass/* runs/final/chosen,*

`configs/cifar10.py:subset` (the chosen recipe, 10 epochs of the subset's 4,576 training
images) with a linear classifier of the CIFAR-10 class on the generator's 1x1 bottleneck,
trained by its cross-entropy times `class_weight` alongside the recipe's losses: Iizuka et al.
train their colorization network's global features to classify the scene, so that its colours
follow what the image shows. Weights 1 and 5 with seed 0 (a screen), then weight 1 with seeds
1 and 2, against the chosen recipe's seeds 0-2 (`runs/final`); then weight 5 with pix2pix's
learning-rate decay from half way (`optimizer.decay_start=0.5`), seeds 0-2. Chosen on the
validation split (train[90%:]) by the rule of docs/results.md.
"""
from configs.sweeps import Sweep


def get_sweep() -> Sweep:
  """The screen (weights 1 and 5, seed 0), weight 1's other two seeds, weight 5 with decay."""
  points = [{"model.num_classes": 10, "class_weight": w, "seed": s}
            for w, s in ((1.0, 0), (5.0, 0), (1.0, 1), (1.0, 2))]
  points += [{"model.num_classes": 10, "class_weight": 5.0, "optimizer.decay_start": 0.5,
              "seed": s} for s in (0, 1, 2)]
  return Sweep(config="configs/cifar10.py:subset", points=points)
