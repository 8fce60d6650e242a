"""The results notebook runs top to bottom on the committed results/ and shows their figures."""

import nbformat
from nbclient import NotebookClient

from hetero_qc.paths import REPO_ROOT


def test_results_notebook_executes():
    notebook = nbformat.read(REPO_ROOT / "notebooks" / "results.ipynb", as_version=4)
    NotebookClient(notebook, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(REPO_ROOT / "notebooks")}}).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    figures = [o for o in outputs if "image/png" in o.get("data", {})]
    committed = sorted(p.parent.name for p in (REPO_ROOT / "results").glob("fig*/summary.json"))
    assert committed, "results/ holds no figure summaries: the notebook would show nothing"
    assert len(figures) >= len(committed)  # a figure for each committed result, at least
