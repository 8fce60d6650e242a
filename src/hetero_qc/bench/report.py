"""Keep BENCHMARKS.md's tables in step with the runs that made them."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

from hetero_qc.atomic import write_text


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], capture_output=True, text=True, check=True).stdout.strip()


def _code_version(outputs: Sequence[Path] = ()) -> str:
    """``HEAD``'s short hash, ``+dirty`` if a tracked file differs from it, the benchmark's own
    ``outputs`` aside (every run rewrites them); ``unknown`` outside a git checkout."""
    try:
        top = Path(_git("rev-parse", "--show-toplevel")).resolve()
        excludes = [f":(top,exclude){Path(o).resolve().relative_to(top)}" for o in outputs
                    if Path(o).resolve().is_relative_to(top)]
        dirty = _git("status", "--porcelain", "--untracked-files=no", "--", ":/", *excludes)
        return _git("rev-parse", "--short", "HEAD") + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def update_benchmarks(path: Path, section: str, table: str, command: str, outputs: Sequence[Path] = ()) -> None:
    """Replace (or append) the block between ``<!-- section -->`` markers in ``path``, naming the code
    version (``outputs``: the run's other result files, which do not make the checkout dirty)."""
    begin, end = f"<!-- {section} -->", f"<!-- /{section} -->"
    block = f"{begin}\nCommand: `{command}` (code {_code_version((path, *outputs))})\n\n{table}\n{end}"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    write_text(path, text)
