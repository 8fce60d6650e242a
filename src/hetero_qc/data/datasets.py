"""Torch datasets over preprocessed scans: random patches for training, whole volumes for evaluation."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor
from torch.utils.data import Dataset

from hetero_qc.data.preprocess import Scan


class Batch(NamedTuple):
    """A (collated) batch; volumes are ``(B, 1, D, H, W)``, clean: corruption happens on the device."""

    image: Tensor  # float32 in [0, 1]
    head: Tensor  # bool
    brain: Tensor  # bool
    cgm: Tensor  # bool
    spacing: Tensor | tuple  # (B, 3) mm; nested tuples of floats once a module has it (read on the host)


def _item(scan: Scan, crop: tuple[slice, ...] = ()) -> Batch:
    index = (slice(None), *crop)
    return Batch(scan.image[index], scan.head[index], scan.brain[index], scan.cgm[index],
                 torch.tensor(scan.spacing, dtype=torch.float32))


class PatchDataset(Dataset):
    """``length`` random patches of ``patch_size`` from random scans.

    A random crop of an in-memory tensor needs no TorchIO sampler (which copies the subject per
    patch); the draw uses torch's global generator, which DataLoader seeds per worker.

    Raises:
        ValueError: if there are no scans or a patch is larger than a scan.
    """

    def __init__(self, scans: list[Scan], patch_size: tuple[int, int, int], length: int) -> None:
        if not scans:
            raise ValueError("no scans to draw training patches from")
        for scan in scans:
            if any(p > s for p, s in zip(patch_size, scan.image.shape[1:])):
                raise ValueError(f"patch_size {tuple(patch_size)} exceeds scan {scan.subject} of shape "
                                 f"{tuple(scan.image.shape[1:])}")
        self.scans, self.patch_size, self.length = scans, tuple(patch_size), int(length)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> Batch:
        scan = self.scans[int(torch.randint(len(self.scans), ()))]
        crop = []
        for p, s in zip(self.patch_size, scan.image.shape[1:]):
            start = int(torch.randint(s - p + 1, ()))
            crop.append(slice(start, start + p))
        return _item(scan, tuple(crop))


class VolumeDataset(Dataset):
    """Whole preprocessed volumes, in order."""

    def __init__(self, scans: list[Scan]) -> None:
        self.scans = scans

    def __len__(self) -> int:
        return len(self.scans)

    def __getitem__(self, index: int) -> Batch:
        return _item(self.scans[index])
