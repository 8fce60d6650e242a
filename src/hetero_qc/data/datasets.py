"""Torch datasets over preprocessed scans: whole volumes with a random patch to train on, whole
volumes for evaluation, and the collation of both."""

from __future__ import annotations

from collections.abc import Callable, Sequence
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
    # Host tuples, not tensors, so that a step reads them without synchronising with a GPU; in a
    # dataset item one value, in a collated batch a tuple of one value per sample:
    spacing: tuple  # (3 floats) voxel size in mm
    # ((3 ints), (3 ints)): start and size of the training patch in the volume; None: the volumes
    # themselves are the samples.
    patch: tuple | None = None


def _item(scan: Scan, patch: tuple | None = None) -> Batch:
    return Batch(scan.image, scan.head, scan.brain, scan.cgm, tuple(float(s) for s in scan.spacing), patch)


def collate(items: Sequence[Batch]) -> Batch:
    """Stack samples into a :class:`Batch`; volumes of different shapes are padded with zeros (air)
    at their far ends to the largest, which keeps every patch's start valid."""
    shape = [max(item.image.shape[1 + axis] for item in items) for axis in range(3)]

    def stack(volumes: list[Tensor]) -> Tensor:
        # one allocation and one copy per volume: F.pad copies even where it pads nothing, and its
        # output was then copied again by torch.stack (155 of the 157 ms of drawing a batch of two
        # 96x128x128 IXI volumes, cProfile of the recon_cpu loader)
        out = volumes[0].new_zeros((len(volumes), volumes[0].shape[0], *shape))
        for sample, volume in zip(out, volumes):
            sample[:, : volume.shape[1], : volume.shape[2], : volume.shape[3]] = volume
        return out

    image, head, brain, cgm = (stack([getattr(item, name) for item in items]) for name in ("image", "head", "brain", "cgm"))
    patch = None if items[0].patch is None else tuple(item.patch for item in items)
    return Batch(image, head, brain, cgm, tuple(item.spacing for item in items), patch)


def cut_patches(volumes: Tensor, patch: Sequence[Sequence[Sequence[int]]]) -> Tensor:
    """Each sample's patch of ``volumes`` ``(B, C, D, H, W)``: ``(B, C, d, h, w)``.

    Args:
        patch: per sample, the patch's start and size (:attr:`Batch.patch`).
    """
    return torch.stack([volumes[b, :, s0 : s0 + n0, s1 : s1 + n1, s2 : s2 + n2]
                        for b, ((s0, s1, s2), (n0, n1, n2)) in enumerate(patch)])


class PatchDataset(Dataset):
    """``length`` samples, each a random scan with a random patch of ``patch_size`` in it.

    The sample holds the whole volume and where its patch lies (:attr:`Batch.patch`): k-space
    artefacts act on the whole acquisition, so training corrupts the volume first and then cuts the
    patch (``cut_patches``), as the scans it will score are corrupted. Corrupting the patch itself
    would wrap its cut edges around in k-space and turn motion about the patch's own centre. A
    random crop of an in-memory tensor needs no TorchIO sampler; the draw uses torch's global
    generator, which DataLoader seeds per worker.

    Args:
        scans: the training scans.
        patch_size: patch ``(D, H, W)``.
        length: samples per epoch.
        augmentation: applied to each drawn scan before the sample is built (e.g. an
            :class:`~hetero_qc.data.augmentation.Augmentation`); it must keep the shape and leave
            its input unchanged. ``None``: the scans as they are.

    Raises:
        ValueError: if there are no scans or a patch is larger than a scan.
    """

    def __init__(self, scans: list[Scan], patch_size: tuple[int, int, int], length: int,
                 augmentation: Callable[[Scan], Scan] | None = None) -> None:
        if not scans:
            raise ValueError("no scans to draw training patches from")
        for scan in scans:
            if any(p > s for p, s in zip(patch_size, scan.image.shape[1:])):
                raise ValueError(f"patch_size {tuple(patch_size)} exceeds scan {scan.subject} of shape "
                                 f"{tuple(scan.image.shape[1:])}")
        self.scans, self.patch_size, self.length = scans, tuple(patch_size), int(length)
        self.augmentation = augmentation

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> Batch:
        scan = self.scans[int(torch.randint(len(self.scans), ()))]
        start = [int(torch.randint(s - p + 1, ())) for p, s in zip(self.patch_size, scan.image.shape[1:])]
        if self.augmentation is not None:
            scan = self.augmentation(scan)
        return _item(scan, (tuple(start), self.patch_size))


class VolumeDataset(Dataset):
    """Whole preprocessed volumes, in order."""

    def __init__(self, scans: list[Scan]) -> None:
        self.scans = scans

    def __len__(self) -> int:
        return len(self.scans)

    def __getitem__(self, index: int) -> Batch:
        return _item(self.scans[index])
