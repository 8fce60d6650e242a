"""Turn the command line's INPUTs (files, folders, BIDS datasets) into scans to score."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from hetero_qc.data.sources import NIFTI_SUFFIXES, BidsSource, strip_nifti


class Item(NamedTuple):
    """One scan to score, or an input that cannot be one (``problem`` says why)."""

    name: str
    path: Path
    problem: str | None = None


def _is_bids(folder: Path) -> bool:
    """A BIDS dataset has a ``dataset_description.json`` (other folders are searched for NIfTI files)."""
    return (folder / "dataset_description.json").is_file()


def expand_inputs(inputs: list[str]) -> list[Item]:
    """Files as given; folders searched recursively for ``.nii``/``.nii.gz``; BIDS datasets for their T1w
    scans. Names are made unique (``sub-01_ses-a_T1w``, or the file stem)."""
    items: list[Item] = []
    for raw in inputs:
        path = Path(raw)
        if path.is_dir():
            if _is_bids(path):
                files = [r.image for r in BidsSource(path).records()]
            else:
                files = sorted(p for p in path.rglob("*") if p.is_file() and p.name.endswith(NIFTI_SUFFIXES))
            if not files:
                items.append(Item(path.name, path, "folder holds no NIfTI file"))
            items += [Item(strip_nifti(f.name), f) for f in files]
        elif not path.exists():
            items.append(Item(path.name, path, "no such file"))
        elif not path.name.endswith(NIFTI_SUFFIXES):
            items.append(Item(path.name, path, "not a NIfTI file (.nii or .nii.gz)"))
        else:
            items.append(Item(strip_nifti(path.name), path))
    seen: dict[str, int] = {}
    unique = []
    for item in items:
        count = seen.get(item.name, 0)
        seen[item.name] = count + 1
        unique.append(item._replace(name=item.name if count == 0 else f"{item.name}_{count + 1}"))
    return unique
