"""Reading and atomically writing NIfTI volumes, with errors that name the file."""

from __future__ import annotations

import gzip
import logging
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np

from hetero_qc.atomic import write_atomic
from hetero_qc.data.sources import NIFTI_SUFFIXES


def load_volume(path: str | Path) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float]]:
    """Read a 3D NIfTI image: data ``(D, H, W)`` float32, affine ``(4, 4)``, voxel size in mm.

    Raises:
        ValueError: naming the file if it is missing, not NIfTI, unreadable, not 3D, or not finite.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    if not path.name.endswith(NIFTI_SUFFIXES):
        raise ValueError(f"{path}: not a NIfTI file (.nii or .nii.gz)")
    logger, level = nib.imageglobals.logger, nib.imageglobals.logger.level
    logger.setLevel(logging.ERROR)  # its header fixes are reported below, as one line of ours
    try:
        image = nib.load(path)
        data = np.asarray(image.dataobj, dtype=np.float32)
        with nib.openers.ImageOpener(path) as file:  # the header as written: nibabel turns a 0 mm side into 1
            written = type(image.header).from_fileobj(file, check=False)
    except (OSError, EOFError, zlib.error, gzip.BadGzipFile, nib.filebasedimages.ImageFileError, ValueError) as error:
        raise ValueError(f"{path}: cannot be read as NIfTI ({error})") from None
    finally:
        logger.setLevel(level)
    if not np.all(written["pixdim"][1:4] > 0):
        sides = "x".join(f"{float(v):g}" for v in written["pixdim"][1:4])
        raise ValueError(f"{path}: the header gives voxels of {sides} mm; a voxel side must be positive")
    if data.ndim > 3 and all(n == 1 for n in data.shape[3:]):
        data = data.reshape(data.shape[:3])  # (X, Y, Z, 1) is one volume
    if data.ndim != 3:
        raise ValueError(f"{path}: expected a 3D volume, got shape {tuple(image.shape)}")
    if not np.isfinite(data).all():
        raise ValueError(f"{path}: image has NaN or infinite voxels")
    spacing = tuple(float(z) for z in image.header.get_zooms()[:3])
    return data, image.affine, spacing  # type: ignore[return-value]


def save_volume(data: np.ndarray, affine: np.ndarray, path: str | Path) -> None:
    """Write ``data`` as NIfTI at ``path`` atomically: a temporary file in the same folder, then a rename.

    Raises:
        ValueError: if the folder cannot be written.
    """
    path = Path(path)
    image = nib.Nifti1Image(np.asarray(data, dtype=np.float32), affine)
    try:
        write_atomic(path, lambda tmp: nib.save(image, tmp))
    except OSError as error:
        raise ValueError(f"{path.parent}: cannot write there ({error.strerror})") from None
