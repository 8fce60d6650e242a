"""Keep BENCHMARKS.md's tables in step with the runs that made them."""

from __future__ import annotations

import subprocess
from pathlib import Path

from hetero_qc.atomic import write_text


def _code_version() -> str:
    """``HEAD``'s short hash, ``+dirty`` if tracked files changed (the benchmarks' own outputs aside)."""
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                                ":!results/bench", ":!BENCHMARKS.md"],
                               capture_output=True, text=True, check=True).stdout.strip()
        return out.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def update_benchmarks(path: Path, section: str, table: str, command: str) -> None:
    """Replace (or append) the block between ``<!-- section -->`` markers in ``path``."""
    begin, end = f"<!-- {section} -->", f"<!-- /{section} -->"
    block = f"{begin}\nCommand: `{command}` (code {_code_version()})\n\n{table}\n{end}"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    write_text(path, text)
