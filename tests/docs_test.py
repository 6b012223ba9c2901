"""The README and docs/ stay navigable: links, images and named files exist; the README short.

Files are renamed and sections moved while the docs stay put; these checks catch the drift.
"""
import concurrent.futures
import importlib
import os
import pathlib
import re
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
README_MAX_LINES = 220

# [text](target) and ![alt](target) in Markdown, <img src="target"> in HTML.
_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)|<img [^>]*src=\"([^\"]+)\"")
# A repository path where a command or the text names one: `scripts/sweep.py`,
# --config=configs/cifar10.py:fast. Not inside another path (runs/x/colorize/..., gs://...).
_REPO_PATH = re.compile(
    r"(?<![\w/.:-])((?:colorize|configs|scripts|tests|notebooks|docs)/[\w./-]+)")
_MODULE = re.compile(r"python -m (colorize(?:\.\w+)*)")


def _id(page: pathlib.Path) -> str:
  return str(page.relative_to(REPO))


def _anchors(page: pathlib.Path) -> set[str]:
  """GitHub's anchors for the headings of a Markdown page."""
  text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)  # '#' in code is no heading.
  headings = re.findall(r"^#+ +(.+?) *$", text, flags=re.M)
  return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


def _links(page: pathlib.Path) -> list[str]:
  return [a or b for a, b in _LINK.findall(page.read_text())]


def test_the_pages_exist():
  assert {p.name for p in PAGES} >= {"README.md", "training.md", "reliability.md",
                                     "evaluation.md", "colorize.md", "scaling.md",
                                     "performance.md"}


def test_readme_is_a_front_door_not_a_manual():
  lines = len((REPO / "README.md").read_text().splitlines())
  assert lines <= README_MAX_LINES, (
      f"README.md has {lines} lines; keep it under {README_MAX_LINES} and move details to docs/")


@pytest.mark.parametrize("page", PAGES, ids=_id)
def test_relative_links_and_images_resolve(page):
  broken = []
  for target in _links(page):
    if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
      continue
    path, _, anchor = target.partition("#")
    linked = (page.parent / path).resolve() if path else page
    if not linked.exists():
      broken.append(f"{target}: no file {linked.relative_to(REPO.parent)}")
    elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked):
      broken.append(f"{target}: no heading #{anchor} in {_id(linked)}")
  assert not broken, f"{_id(page)}: " + "; ".join(broken)


@pytest.mark.parametrize("page", PAGES, ids=_id)
def test_named_repository_files_and_modules_exist(page):
  text = page.read_text()
  missing = []
  for name in _REPO_PATH.findall(text):
    name = name.split(":")[0].rstrip(".")  # configs/cifar10.py:subset; end of a sentence.
    if not (REPO / name).exists():
      missing.append(name)
  for module in _MODULE.findall(text):
    path = REPO / module.replace(".", "/")
    if not (path.with_suffix(".py").exists() or (path / "__init__.py").exists()):
      missing.append(f"python -m {module}")
  assert not missing, f"{_id(page)} names what is not in the repository: {missing}"


def test_link_checker_sees_a_broken_link(tmp_path):
  # The checks above would pass vacuously if the patterns matched nothing.
  page = tmp_path / "page.md"
  page.write_text('![a](missing.png) [b](docs/x.md#y) <img src="gone.png" width="48%">\n# Top\n')
  assert _links(page) == ["missing.png", "docs/x.md#y", "gone.png"]
  assert _anchors(page) == {"top"}
  assert _REPO_PATH.findall("run `scripts/sweep.py` in gs://b/colorize/x") == ["scripts/sweep.py"]


# A documented command: `python -m colorize.x`, `python scripts/x.py` or `colorize`, then its
# arguments up to the end of the line (backslash continuations joined, comments dropped).
_COMMAND = re.compile(
    r"^\s*(?:\$ )?(python -m colorize(?:\.\w+)?|python scripts/\w+\.py|colorize)((?: .*)?)$",
    flags=re.M)


def _documented_commands() -> dict[str, list[str]]:
  """Every command in the pages' code blocks: entry point -> the argument strings given it."""
  commands = {}
  for page in PAGES:
    for language, block in re.findall(r"```(\w*)\n(.*?)```", page.read_text(), flags=re.S):
      if language not in ("", "bash", "sh", "shell"):
        continue
      for entry, args in _COMMAND.findall(block.replace("\\\n", " ")):
        commands.setdefault(entry, []).append(args.split(" #")[0])
  return commands


def _help_text(entry: str) -> str:
  argv = ["python", "-m", "colorize.colorize"] if entry == "colorize" else entry.split()
  absl = entry in ("python -m colorize.main", "python scripts/benchmark.py",
                   "python scripts/profile_step.py", "python scripts/sweep.py")
  # absl's --help lists only the main module's flags, and --helpfull exits with status 1.
  process = subprocess.run([sys.executable, *argv[1:], "--helpfull" if absl else "--help"],
                           capture_output=True, text=True, cwd=REPO, timeout=300,
                           env={**os.environ, "PYTHONPATH": str(REPO)})
  assert process.returncode == (1 if absl else 0), f"{entry}: {process.stderr[-500:]}"
  return process.stdout


def _config_keys_exist(args: str) -> list[str]:
  """--config=configs/x.py:variant must load, and each --config.a.b must be one of its keys."""
  spec = re.search(r"--config=(configs/\w+\.py)(?::([\w,]+))?", args)
  if not spec:
    return []
  module = importlib.import_module(spec.group(1)[:-3].replace("/", "."))
  config = module.get_config(spec.group(2)) if spec.group(2) else module.get_config()
  missing = []
  for key in re.findall(r"--config\.([\w.]+)", args):
    node = config
    for part in key.split("."):
      if part not in node:
        missing.append(f"--config.{key}")
        break
      node = node[part]
  return missing


def test_documented_commands_name_real_flags_and_config_keys():
  """Each flag a page gives a command is one that command defines, so copied commands run."""
  commands = _documented_commands()
  assert {"python -m colorize.main", "python -m colorize.evaluate",
          "python scripts/benchmark.py"} <= set(commands)
  with concurrent.futures.ThreadPoolExecutor(4) as pool:
    helps = dict(zip(commands, pool.map(_help_text, commands)))
  wrong = []
  for entry, arg_strings in commands.items():
    known = set(re.findall(r"--(?:\[no\])?([\w.]+)", helps[entry]))
    for args in arg_strings:
      for flag in re.findall(r"(?<!\S)--([a-z][\w]*)(?![\w.])", args):
        if flag not in known and not (flag.startswith("no") and flag[2:] in known):
          wrong.append(f"{entry} --{flag}")
      wrong += [f"{entry} {key}" for key in _config_keys_exist(args)]
  assert not wrong, f"the docs give flags or config keys that do not exist: {sorted(set(wrong))}"
