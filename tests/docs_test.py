"""The README and docs/ stay navigable: links, images and named files exist; the README short.

Files are renamed and sections moved while the docs stay put; these checks catch the drift.
"""
import pathlib
import re

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
