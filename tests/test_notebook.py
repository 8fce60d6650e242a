"""The results notebook runs top to bottom (on whatever results/ holds)."""

import nbformat
from nbclient import NotebookClient

from hetero_qc.paths import REPO_ROOT


def test_results_notebook_executes():
    notebook = nbformat.read(REPO_ROOT / "notebooks" / "results.ipynb", as_version=4)
    NotebookClient(notebook, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(REPO_ROOT / "notebooks")}}).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any(o.get("output_type") in ("display_data", "stream", "execute_result") for o in outputs)
