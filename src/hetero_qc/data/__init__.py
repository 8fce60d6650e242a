"""Scans in, preprocessed tensors out: sources, TorchIO preprocessing, split and cache."""

from hetero_qc.data.cache import ScanCache
from hetero_qc.data.preprocess import Preprocessing, Scan, preprocess
from hetero_qc.data.sources import BidsSource, FolderSource, MniSource, ScanRecord
from hetero_qc.data.split import split_subjects, write_split

__all__ = ["BidsSource", "FolderSource", "MniSource", "Preprocessing", "Scan", "ScanCache", "ScanRecord",
           "preprocess", "split_subjects", "write_split"]
