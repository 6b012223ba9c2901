r"""One results table over seeds: mean ± standard deviation per group of runs.

    python scripts/results_table.py runs/recipe/*                        # validation split
    python scripts/results_table.py --split=test --reference=seed runs/final/*
    python scripts/results_table.py --chroma_gains=1,1.2 --reference=chosen runs/final/chosen,*
    python scripts/results_table.py --temperatures=0.38,0.2 runs/classify/*
    python scripts/results_table.py --flip_average=both runs/tta/*
    python scripts/results_table.py --chroma_gains=0.8 --transports=0,0.5 runs/final/chosen,*
    python scripts/results_table.py --transports=0,0.3 --transport_by_class=both runs/cda/*
    python scripts/results_table.py --bootstrap=1000 --reference=seed runs/final/*

Runs whose workdir names differ only in `seed=<n>` form one group (`ema_decay=0.999,seed=0`
and `ema_decay=0.999,seed=1` are the group `ema_decay=0.999`; a name that is only a seed is
the group `base`). Each run is scored by `python -m colorize.evaluate` on the split (its
latest checkpoint; the eval/ files it wrote are reused when present; a run still training is
refused, since its latest checkpoint is not its result), and each cell is the
mean ± sample standard deviation over the group's seeds. With `--reference`, the columns
`ΔPSNR` and `ΔΔE00` are paired differences from that group, seed by seed (mean ± std over
the seeds both groups have), which cancel the part of the noise two runs of one seed share.
With `--chroma_gains`, each run is also scored with its predicted chroma scaled (evaluate's
`--chroma_gain`), each gain a group of its own; with `--temperatures`, runs with a
classification head are scored decoded at each temperature (evaluate's `--temperature`), each
a group of its own, and the other runs as they are; with `--flip_average=both`, each run is
scored as it is and with evaluate's `--flip_average` (the group '<group> flip avg'), and with
`yes` only so; with `--transports`, each run is also scored with its colours moved along its
colour transport (evaluate's `--transport`), each strength (after each chroma gain) a group of
its own, and with `--transport_by_class`, runs whose generator predicts the image's class
(model.num_classes > 0) by the transport by that class (evaluate's `--transport_by_class`;
`both`: each nonzero strength both ways), the other runs as they are. With `--bootstrap=R`,
the table adds 95% intervals over R resamples of the images (`image_intervals`): how far the
figures could move on another draw of as many images. The gray and mean-colour baselines come
from the first run's evaluation (they depend on the images only). Prints a Markdown table;
with `--plot=FILE.png`, also draws every group as a point of pooled PSNR against the
colourfulness ratio and against the ab-histogram intersection (`plots.plot_tradeoff`), with
the colour targets of docs/results.md.
"""
import argparse
import collections
import contextlib
import itertools
import json
import os
import re
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from colorize import evaluate  # pylint: disable=g-import-not-at-top
from colorize import eval_files
from colorize import plots
from colorize import restore
from colorize import scoring
from colorize import shared_flags
from colorize import workdir as workdir_lib
from colorize.errors import UserError

# metric key -> (column heading, format); the headline first.
COLUMNS = {
    "psnr": ("PSNR dB ↑", "{:.2f}"),
    "psnr_per_image": ("PSNR/img dB ↑", "{:.2f}"),
    "delta_e2000": ("ΔE00 ↓", "{:.2f}"),
    "ssim": ("SSIM ↑", "{:.4f}"),
    "ab_auc": ("AuC ab ↑", "{:.4f}"),
    "lab_acc_2pct": ("acc 2% ↑", "{:.3f}"),
    "colorfulness_ratio": ("colourful. ratio", "{:.3f}"),
    "ab_hist_intersection": ("ab hist. ∩ ↑", "{:.3f}"),
}
# --flip_average and --transport_by_class -> whether each run is scored without and with
# evaluate's flag of that name.
WAYS = {"no": (False,), "yes": (True,), "both": (False, True)}
_SEED = re.compile(r"(^|,)seed=(\d+)(?=,|$)")


def group_and_seed(workdir: str) -> tuple[str, int]:
  """("ema_decay=0.999", 1) for .../ema_decay=0.999,seed=1; ("base", n) for .../seed=n."""
  name = os.path.basename(os.path.normpath(workdir))
  match = _SEED.search(name)
  if not match:
    return name, int(restore.read_config(workdir).get("seed", 0))
  return _SEED.sub("", name).strip(",") or "base", int(match.group(2))


def run_metrics(workdir: str, split: str | None,
                decoding: evaluate.Decoding = evaluate.Decoding(),
                per_image: bool = False) -> dict:
  """The run's evaluate record on `split` (its own eval split when None), made if missing.

  With `per_image`, the record also holds "per_image", the images' values evaluate kept
  beside it (`eval_files.read_per_image`); a record made before evaluate kept them is made again.
  """
  config = restore.read_config(workdir)
  sub = "" if split in (None, config.get("eval_split")) else f"split-{split}"
  sub = os.path.join(sub, decoding.folder())
  steps = sorted(int(s) for s in os.listdir(os.path.join(workdir, "checkpoints"))
                 if s.isdigit())
  if not steps:
    raise UserError(f"{workdir}: no checkpoint")
  if (training := workdir_lib.holder(workdir)) is not None:
    raise UserError(f"{workdir}: still training ({training}), so checkpoint {steps[-1]} may not "
                    "be its last; score it when the run has ended")
  path = os.path.join(workdir, "eval", str(steps[-1]), sub, "metrics.json")
  values_path = os.path.join(os.path.dirname(path), eval_files.PER_IMAGE_FILE)
  if not os.path.exists(path) or (per_image and not os.path.lexists(values_path)):
    args = [f"--workdir={workdir}"] + ([f"--split={split}"] if split else []) + decoding.flags()
    with contextlib.redirect_stdout(sys.stderr):  # Each run's own table; stdout is ours.
      status = evaluate.run(args)
    if status != 0:
      raise UserError(f"{workdir}: python -m colorize.evaluate {' '.join(args)} failed")
  record = _read_record(path)
  if per_image:
    num_images = record["metrics"].get("num_images")
    if isinstance(num_images, bool) or not isinstance(num_images, int) or num_images < 1:
      raise UserError(f"{path}: metrics.num_images is {num_images!r}, not a count of images: "
                      "delete it and run this command again to score the run afresh")
    record["per_image"] = eval_files.read_per_image(values_path, num_images)
  return record


def _read_record(path: str) -> dict:
  """An evaluate record with every COLUMNS metric a number, for the run and each baseline.

  The record may have been edited or damaged since evaluate wrote it; reading it here, not
  in the table or the plot, turns that into one line that names the file and the fix.
  """
  fix = "delete it and run this command again to score the run afresh"
  try:
    with open(path) as f:
      record = json.load(f)
  except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
    raise UserError(f"{path}: unreadable ({getattr(e, 'strerror', None) or e}): {fix}") from None
  sections = {}
  if isinstance(record, dict) and isinstance(record.get("baselines"), dict):
    sections = {"metrics": record.get("metrics"),
                **{f"baselines.{n}": m for n, m in record["baselines"].items()}}
  if not sections or not isinstance(record.get("source"), str):
    raise UserError(f"{path}: not an evaluation record (metrics, baselines, source): {fix}")
  for where, metrics in sections.items():
    for key in COLUMNS:
      value = metrics.get(key) if isinstance(metrics, dict) else None
      if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UserError(f"{path}: {where}.{key} is {value!r}, not a number: {fix}")
  return record


def _cell(values: list[float | None], fmt: str) -> str:
  values = [v for v in values if v is not None]
  if not values:
    return "n/a"
  if len(values) == 1:
    return fmt.format(values[0])
  spread = fmt.replace("+", "").format(np.std(values, ddof=1))
  return f"{fmt.format(np.mean(values))} ± {spread}"


def _first(records: dict[str, dict[int, dict]]) -> dict:
  """The first run's record: its baselines and source stand for every run's."""
  return next(iter(next(iter(records.values())).values()))


def _interval(values_R: np.ndarray, fmt: str) -> str:
  if np.isnan(values_R).all():  # Undefined on every resample (e.g. only gray truths).
    return "n/a"
  low, high = np.nanpercentile(values_R, [2.5, 97.5])
  return f"[{fmt.format(low)}, {fmt.format(high)}]"


def image_intervals(records: dict[str, dict[int, dict]], reference: str | None,
                    num_resamples: int) -> dict[str, list[str]]:
  """Each group's 95% intervals over bootstrap resamples of the images, as table cells.

  Every run is scored on the same resamples (the images drawn with replacement,
  `scoring.resample_weights`), its seeds held fixed: the cells are the 2.5th and 97.5th
  percentiles of the seeds' mean colourfulness ratio and ab-histogram intersection and, with
  `reference`, of the seeds' mean paired differences in PSNR and ΔE00 from it, image by image.

  Args:
    records: group -> seed -> evaluate record with "per_image" (`run_metrics`).
    reference: the group of the differences, or None.
    num_resamples: the bootstrap's resamples.

  Returns:
    group -> [ratio, intersection] cells, then [ΔPSNR, ΔΔE00] with `reference`.

  Raises:
    UserError: the runs were not scored on the same images.
  """
  runs = [r for by_seed in records.values() for r in by_seed.values()]
  truth = runs[0]["per_image"]["colorfulness_reference"]
  if any(not np.array_equal(r["per_image"]["colorfulness_reference"], truth) for r in runs):
    raise UserError("--bootstrap pairs the runs image by image, but they were scored on "
                    "different images: give runs of one dataset, scored on one split")
  weights = scoring.resample_weights(len(truth), num_resamples)
  resampled = {group: {seed: scoring.set_metrics(r["per_image"], weights)
                       for seed, r in by_seed.items()} for group, by_seed in records.items()}
  cells = {}
  for group, by_seed in resampled.items():
    row = [_interval(np.mean([v[key] for v in by_seed.values()], axis=0), "{:.3f}")
           for key in ("colorfulness_ratio", "ab_hist_intersection")]
    if reference:
      shared = sorted(set(by_seed) & set(resampled[reference]))
      for key in ("psnr", "delta_e2000"):
        diffs = [by_seed[s][key] - resampled[reference][s][key] for s in shared]
        row.append(_interval(np.mean(diffs, axis=0), "{:+.2f}")
                   if diffs and group != reference else "-")
    cells[group] = row
  return cells


def table(records: dict[str, dict[int, dict]], reference: str | None,
          num_resamples: int = 0) -> str:
  """The Markdown table of every group (seed -> evaluate record), then the baselines.

  With `num_resamples`, also the columns of `image_intervals` (the records need "per_image").
  """
  heads = ["run", "seeds"] + [h for h, _ in COLUMNS.values()]
  if reference:
    heads += [f"ΔPSNR vs {reference}", f"ΔΔE00 vs {reference}"]
  intervals = image_intervals(records, reference, num_resamples) if num_resamples else {}
  if intervals:
    heads += ["ratio 95% (images)", "∩ 95% (images)"]
    heads += ["ΔPSNR 95% (images)", "ΔΔE00 95% (images)"] if reference else []
  lines = ["| " + " | ".join(heads) + " |", "| --- |" + " ---: |" * (len(heads) - 1)]
  for group, by_seed in records.items():
    cells = [group, ",".join(map(str, sorted(by_seed)))]
    cells += [_cell([r["metrics"][k] for r in by_seed.values()], fmt)
              for k, (_, fmt) in COLUMNS.items()]
    if reference:
      shared = sorted(set(by_seed) & set(records[reference]))
      for key in ("psnr", "delta_e2000"):
        diffs = [by_seed[s]["metrics"][key] - records[reference][s]["metrics"][key]
                 for s in shared]
        cells.append(_cell(diffs, "{:+.2f}") if group != reference else "-")
    lines.append("| " + " | ".join(cells + intervals.get(group, [])) + " |")
  first = _first(records)
  for name, metrics in first["baselines"].items():
    cells = [f"{name} (baseline)", "-"] + [_cell([metrics.get(k)], fmt)
                                            for k, (_, fmt) in COLUMNS.items()]
    lines.append("| " + " | ".join(cells + ["-"] * (len(heads) - len(cells))) + " |")
  legend = f"Evaluated on {first['source']}; mean ± std over seeds."
  if intervals:
    legend += (f" [low, high]: 95% interval of the seeds' mean over {num_resamples} bootstrap "
               "resamples of the images, the same for every run (differences paired image by "
               "image), the seeds held fixed.")
  return "\n".join(lines) + f"\n\n{legend}\n"


def main(argv: list[str] | None = None) -> int:
  p = argparse.ArgumentParser(prog="python scripts/results_table.py", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("workdirs", nargs="+", help="Training workdirs, e.g. runs/recipe/*.")
  p.add_argument("--split", help="Dataset split (default: each run's eval split, i.e. "
                 "validation); --split=test only for final tables.")
  p.add_argument("--reference", help="Group to report paired differences against.")
  p.add_argument("--chroma_gains", default="1", help="Comma-separated gains: each run is "
                 "also scored with its predicted chroma scaled by each (evaluate's "
                 "--chroma_gain), as the group '<group> chroma x<gain>'.")
  p.add_argument("--transports", default="0", help="Comma-separated strengths: each run is "
                 "also scored with its colours moved that far along its colour transport "
                 "(evaluate's --transport; after each chroma gain), as the group "
                 "'<group> transport <strength>'.")
  p.add_argument("--transport_by_class", choices=WAYS, default="no", help="yes: each "
                 "transport by the run's predicted class (evaluate's --transport_by_class; the "
                 "group '<group> transport <strength> by class'); both: as it is and so.")
  p.add_argument("--temperatures", help="Comma-separated annealed-mean temperatures: each run "
                 "with a classification head is scored decoded at each (evaluate's "
                 "--temperature), as the group '<group> T<temperature>'.")
  p.add_argument("--flip_average", choices=WAYS, default="no", help="yes: score "
                 "each run with evaluate's --flip_average (the group '<group> flip avg'); "
                 "both: as it is and so.")
  p.add_argument("--plot", help="Also write this PNG: PSNR against colour, one point per "
                 "group.")
  p.add_argument("--bootstrap", type=int, default=0, help="Resamples of the images for 95%% "
                 "intervals of the colourfulness ratio, the histogram intersection and the "
                 "differences from --reference (0: none; e.g. 1000).")
  args = p.parse_args(argv)
  records: dict[str, dict[int, dict]] = collections.defaultdict(dict)
  try:
    if args.bootstrap < 0:
      raise UserError(f"--bootstrap={args.bootstrap}: give a number of resamples >= 0, e.g. "
                      "1000")
    try:
      gains = [shared_flags.check_chroma_gain(g) for g in args.chroma_gains.split(",")]
    except ValueError:
      raise UserError(f"--chroma_gains={args.chroma_gains}: give numbers >= 0, e.g. "
                      "1,1.2") from None
    try:
      transports = [shared_flags.check_transport(s) for s in args.transports.split(",")]
    except ValueError:
      raise UserError(f"--transports={args.transports}: give numbers from 0 to 1, e.g. "
                      "0,0.5") from None
    try:
      temperatures = [shared_flags.check_temperature(t)
                      for t in (args.temperatures.split(",") if args.temperatures else [])]
    except ValueError:
      raise UserError(f"--temperatures={args.temperatures}: give numbers > 0, e.g. "
                      "0.38,0.2") from None
    for workdir in args.workdirs:
      group, seed = group_and_seed(workdir)
      model = restore.read_config(workdir).model
      classify = model.head == "classification"
      by_class_choices = WAYS[args.transport_by_class] if model.num_classes else (False,)
      for temperature in (temperatures if classify and temperatures else [None]):
        for flip in WAYS[args.flip_average]:
          for gain, strength in itertools.product(gains, transports):
            for by_class in by_class_choices if strength else (False,):
              decoding = evaluate.Decoding(gain, temperature, flip, strength, by_class)
              name = " ".join(filter(None, [group, decoding.label()]))
              records[name][seed] = run_metrics(workdir, args.split, decoding,
                                                per_image=args.bootstrap > 0)
    if args.reference and args.reference not in records:
      raise UserError(f"--reference={args.reference}: no such group ({', '.join(records)})")
    output = table(dict(records), args.reference, args.bootstrap)
  except UserError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  print(output)
  if args.plot:
    try:
      plots.plot_tradeoff({group: [r["metrics"] for r in by_seed.values()]
                           for group, by_seed in records.items()},
                          _first(records)["baselines"], args.plot, args.reference)
    except (OSError, UserError) as e:  # The table is printed already.
      print(f"error: --plot={args.plot}: {getattr(e, 'strerror', None) or e}",
            file=sys.stderr)
      return 2
  return 0


if __name__ == "__main__":
  sys.exit(main())
