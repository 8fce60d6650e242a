"""Atomic file writes: a uniquely named temporary file beside the target, then a rename.

A reader (or a crash, or Ctrl-C) never sees a half-written file, and concurrent writers (DDP ranks,
parallel sweeps) never share a temporary name.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

_UMASK = os.umask(0)
os.umask(_UMASK)


def write_atomic(path: str | Path, write: Callable[[str], object]) -> None:
    """Create ``path`` by calling ``write(tmp)`` on a temporary file in the same folder, then renaming it.

    The temporary name keeps the target's suffix (``.nii.gz``, ``.png``...), so writers that pick a
    format from it work unchanged; the file gets the usual permissions (``mkstemp`` makes 0600).

    Raises:
        OSError: if the folder cannot be created or written; the temporary file is removed.
    """
    path = Path(path)
    suffix = ".nii.gz" if path.name.endswith(".nii.gz") else path.suffix
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (see :func:`write_atomic`)."""
    write_atomic(path, lambda tmp: Path(tmp).write_text(text))
