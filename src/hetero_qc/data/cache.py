"""Cache of preprocessed scans, in memory and optionally on disk, keyed by file and settings."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch

from hetero_qc.atomic import write_atomic
from hetero_qc.data.preprocess import Preprocessing, Scan, preprocess
from hetero_qc.data.sources import ScanRecord


class ScanCache:
    """Preprocess each record once: later calls come from memory, or from ``disk_dir`` across runs.

    The disk key holds the preprocessing settings and each input file's path, size and modification
    time, so a changed file or setting is never served stale.
    """

    def __init__(self, settings: Preprocessing, disk_dir: str | Path | None = None) -> None:
        self.settings = settings
        self.disk_dir = Path(disk_dir) / settings.key() if disk_dir is not None else None
        self._memory: dict[str, Scan] = {}

    def _key(self, record: ScanRecord) -> str:
        parts = [record.subject, self.settings.key()]
        for path in (record.image, record.label):
            if path is not None:
                stat = os.stat(path)
                parts += [str(Path(path).resolve()), str(stat.st_size), str(stat.st_mtime_ns)]
        return hashlib.sha1("|".join(parts).encode()).hexdigest()[:16]

    def get(self, record: ScanRecord) -> Scan:
        """The preprocessed scan of ``record``."""
        key = self._key(record)
        if key in self._memory:
            return self._memory[key]
        path = self.disk_dir / f"{key}.pt" if self.disk_dir is not None else None
        if path is not None and path.exists():
            stored = torch.load(path, weights_only=True)
            scan = Scan(stored["subject"], stored["image"], stored["head"], stored["brain"], stored["cgm"],
                        bool(stored["has_labels"]), tuple(stored["spacing"]), stored["affine"].numpy())
        else:
            scan = preprocess(record, self.settings)
            if path is not None:
                stored = {**scan._asdict(), "affine": torch.from_numpy(np.asarray(scan.affine))}
                write_atomic(path, lambda tmp: torch.save(stored, tmp))
        self._memory[key] = scan
        return scan
