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
    """T1w scans of a BIDS dataset, as pybids reads it (``BIDSLayout`` with validation): files whose
    names are not valid BIDS, and ``derivatives/``, ``sourcedata/`` and ``code/``, are skipped;
    sessions, runs and ``acq-`` entities are kept in the file names. The subject id is ``sub-X``
    (sessions of one subject share it, so the split never separates them).

    Args:
        participants: only these participant labels (with or without ``sub-``); None: all.
        sessions: only these session labels (with or without ``ses-``); None: all.
    """

    def __init__(self, root: str | Path, participants: list[str] | None = None,
                 sessions: list[str] | None = None) -> None:
        self.root = Path(root)
        self.participants = None if participants is None else [p.removeprefix("sub-") for p in participants]
        self.sessions = None if sessions is None else [s.removeprefix("ses-") for s in sessions]

    def images(self) -> list[Path]:
        """The T1w images, sorted.

        Raises:
            ValueError: for a folder that is not a BIDS dataset, an unknown participant or session
                label, or no T1w scan among those asked for.
        """
        from bids import BIDSLayout  # imported late: pybids is slow to import
        from bids.exceptions import BIDSValidationError

        if not self.root.is_dir():
            raise ValueError(f"BIDS folder {self.root} does not exist or is not a folder")
        try:
            layout = BIDSLayout(self.root, validate=True)
        except (BIDSValidationError, ValueError) as error:
            raise ValueError(f"{self.root}: not a BIDS dataset ({str(error).splitlines()[0][:160]})") from None
        for asked, known, entity in ((self.participants, layout.get_subjects(), "participant"),
                                     (self.sessions, layout.get_sessions(), "session")):
            unknown = sorted(set(asked or ()) - set(known))
            if unknown:
                raise ValueError(f"{self.root}: no {entity} {', '.join(unknown)} in this dataset "
                                 f"(it has {', '.join(sorted(known)) or 'none'})")
        filters = {"subject": self.participants, "session": self.sessions}
        files = layout.get(suffix="T1w", datatype="anat", extension=list(NIFTI_SUFFIXES), return_type="filename",
                           **{k: v for k, v in filters.items() if v is not None})
        if not files:
            raise ValueError(f"{self.root}: no T1w scan (sub-*/[ses-*/]anat/*_T1w.nii[.gz]) "
                             f"{'among those asked for ' if self.participants or self.sessions else ''}in this dataset")
        return sorted(Path(f) for f in files)

    def records(self) -> list[ScanRecord]:
        return [ScanRecord(p.relative_to(self.root).parts[0], p) for p in self.images()]


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
