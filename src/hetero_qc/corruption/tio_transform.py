"""The batched artefacts as TorchIO transforms, so they compose with TorchIO's own in ``tio.Compose``."""

from __future__ import annotations

import torch
import torchio as tio

from hetero_qc.corruption.base import RandomArtefact


class ArtefactTransform(tio.IntensityTransform):
    """Apply a batched artefact to each scalar image of a subject; its channels form the batch.

    Example::

        tio.Compose([tio.RescaleIntensity((0, 1)), ArtefactTransform(RandomMotion(degrees=5))])

    Args:
        artefact: any :class:`~hetero_qc.corruption.base.RandomArtefact`.
        mask_name: name of a label map in the subject passed as the artefact's region mask (used by
            partial noise with ``region="outside_mask"``).
        **kwargs: TorchIO's transform arguments (``p``, ``include``, ``exclude``...).
    """

    def __init__(self, artefact: RandomArtefact, mask_name: str | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        if not isinstance(artefact, RandomArtefact):
            raise ValueError(f"artefact must be a RandomArtefact, got {artefact!r}")
        self.artefact = artefact
        self.mask_name = mask_name
        self.args_names = ["artefact", "mask_name"]

    def apply_transform(self, subject: tio.Subject) -> tio.Subject:
        mask = None
        if self.mask_name is not None:
            if self.mask_name not in subject:
                raise ValueError(f"mask_name {self.mask_name!r} is not an image of the subject")
            mask = subject[self.mask_name].data.bool().unsqueeze(1)
        for image in self.get_images_dict(subject).values():
            batch = image.data.float().unsqueeze(1)  # (C, 1, D, H, W)
            channel_mask = None if mask is None else mask.expand_as(batch)
            corrupted = self.artefact(batch, tuple(image.spacing), mask=channel_mask).image
            image.set_data(corrupted.squeeze(1).to(torch.float32))
        return subject
