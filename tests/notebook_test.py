"""notebooks/losses_and_colorizer.ipynb runs top to bottom on a tiny trained workdir."""
import pathlib

import nbclient
import nbformat

from colorize import train
from tests import helpers

NOTEBOOK = pathlib.Path(__file__).resolve().parents[1] / "notebooks" / "losses_and_colorizer.ipynb"


def _text(notebook) -> str:
  """Everything the notebook's cells printed."""
  return "".join(output.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
                 for output in cell.get("outputs", []))


def test_notebook_is_committed_without_outputs():
  # Outputs hold images and machine-dependent numbers: they would make every diff unreadable.
  notebook = nbformat.read(NOTEBOOK, as_version=4)
  assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")


def test_notebook_runs_and_shows_the_known_answers(tmp_path, monkeypatch):
  workdir = tmp_path / "run"
  train.train_and_evaluate(helpers.config(num_train_steps=2), str(workdir))
  # The kernel inherits the environment: the workdir, and conftest's CPU and compile settings.
  monkeypatch.setenv("COLORIZE_WORKDIR", str(workdir))
  notebook = nbformat.read(NOTEBOOK, as_version=4)
  nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                          resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
  text = _text(notebook)
  # The linear critic's penalty is (||w|| - 1)^2 with ||w|| = 3.
  assert "linear critic: ||w|| = 3.0000" in text and "penalty = 4.0000" in text
  assert "step 0 -> 1" in text
  assert "every generator parameter moved: True" in text
  assert f"step 2 of {workdir}: colorized 8 images (8, 8, 3) uint8" in text
