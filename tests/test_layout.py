"""Imports flow one way: data and corruption -> models -> losses -> lit -> evaluation and the QC tool."""

import ast

import pytest

from hetero_qc.paths import REPO_ROOT

PACKAGE = REPO_ROOT / "src" / "hetero_qc"
FORBIDDEN = {  # package -> what it must not import
    "data": ("corruption", "models", "losses", "lit", "inference", "evaluation", "qc", "train"),
    "corruption": ("data", "models", "losses", "lit", "inference", "evaluation", "qc", "train"),
    "models": ("lit", "inference", "evaluation", "qc", "train"),
    "lit": ("evaluation", "qc"),
    "qc": ("evaluation", "lit", "train"),
}


def imported(path) -> set[str]:
    """The ``hetero_qc`` subpackages or modules a file imports (first component after ``hetero_qc.``)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        modules = [a.name for a in node.names] if isinstance(node, ast.Import) else (
            [node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
        names |= {m.split(".")[1] for m in modules if m.startswith("hetero_qc.")}
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_flow_one_way(package):
    offending = {str(p.relative_to(PACKAGE)): sorted(imported(p) & set(FORBIDDEN[package]))
                 for p in (PACKAGE / package).rglob("*.py")}
    assert not {k: v for k, v in offending.items() if v}
