"""Where scans come from: a folder of NIfTI files (the embedded IXI set is one), a BIDS dataset, or
nilearn's MNI152 template for smoke runs. A source lists :class:`ScanRecord` s; nothing is read yet."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import torch

NIFTI_SUFFIXES = (".nii", ".nii.gz")
MNI_SUBJECT = "MNI152"


@dataclass(frozen=True)
class ScanRecord:
    """One scan on disk: subject id, the T1w image, and an optional label map on the same grid.

    ``label_kind`` says how to read the labels: ``"dlmuse"`` (CGM = labels 100-207), ``"gm_prob"``
    (grey-matter probability, CGM = p > 0.5), or ``None`` when there are none.
    """

    subject: str
    image: Path | None
    label: Path | None = None
    label_kind: str | None = None


def strip_nifti(name: str) -> str:
    """File name without its ``.nii`` or ``.nii.gz`` suffix."""
    for suffix in (".nii.gz", ".nii"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


class FolderSource:
    """Every NIfTI image under ``root`` matching ``image_glob``, with labels matched by a template.

    Args:
        root: dataset folder.
        image_glob: glob of the images, relative to ``root``.
        subject_pattern: regular expression with a ``subject`` group, matched against the file name
            without its NIfTI suffix; the whole name when it does not match.
        label_template: label path relative to ``root`` with ``{subject}``, or ``None``.
        label_kind: how to read the labels (see :class:`ScanRecord`).

    Raises:
        ValueError: if ``root`` is not a folder or holds no matching image.
    """

    def __init__(
        self,
        root: str | Path,
        image_glob: str = "*.nii*",
        subject_pattern: str = r"(?P<subject>.+)",
        label_template: str | None = None,
        label_kind: str | None = "dlmuse",
    ) -> None:
        self.root = Path(root)
        self.image_glob = image_glob
        self.subject_pattern = re.compile(subject_pattern)
        self.label_template = label_template
        self.label_kind = label_kind

    def records(self) -> list[ScanRecord]:
        """The scans, sorted by subject; labels that do not exist are left out."""
        if not self.root.is_dir():
            raise ValueError(f"data folder {self.root} does not exist or is not a folder")
        images = sorted(p for p in self.root.glob(self.image_glob) if p.name.endswith(NIFTI_SUFFIXES))
        if not images:
            raise ValueError(f"no NIfTI image matches {self.image_glob!r} under {self.root}")
        records = []
        for path in images:
            stem = strip_nifti(path.name)
            match = self.subject_pattern.fullmatch(stem)
            subject = match.group("subject") if match else stem
            label = None
            if self.label_template is not None:
                candidate = self.root / self.label_template.format(subject=subject)
                label = candidate if candidate.exists() else None
            records.append(ScanRecord(subject, path, label, self.label_kind if label else None))
        return records


class BidsSource:
    """T1w scans of a BIDS dataset: ``sub-*/[ses-*/]anat/*_T1w.nii[.gz]``; the subject id is ``sub-X``
    (sessions of one subject share it, so the split never separates them)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def records(self) -> list[ScanRecord]:
        if not self.root.is_dir():
            raise ValueError(f"BIDS folder {self.root} does not exist or is not a folder")
        images = sorted(
            p for pattern in ("sub-*/anat/*_T1w.nii*", "sub-*/ses-*/anat/*_T1w.nii*")
            for p in self.root.glob(pattern) if p.name.endswith(NIFTI_SUFFIXES)
        )
        if not images:
            raise ValueError(f"no sub-*/[ses-*/]anat/*_T1w.nii[.gz] under {self.root}")
        return [ScanRecord(p.relative_to(self.root).parts[0], p) for p in images]


class MniSource:
    """nilearn's MNI152 T1 template with its grey-matter probability map (no files needed)."""

    def records(self) -> list[ScanRecord]:
        return [ScanRecord(MNI_SUBJECT, None, None, "gm_prob")]


def mni_images() -> tuple[nib.Nifti1Image, nib.Nifti1Image]:
    """The MNI152 1 mm T1 template and grey-matter probability map, as shipped in nilearn's wheel."""
    from nilearn import datasets  # imported late: nilearn is slow to import

    return datasets.load_mni152_template(resolution=1), datasets.load_mni152_gm_template(resolution=1)


def mni_volume() -> torch.Tensor:
    """The MNI152 1 mm T1 template as a float tensor ``(197, 233, 189)``."""
    return torch.from_numpy(np.asarray(mni_images()[0].get_fdata(), dtype=np.float32))
