"""Run a TorchIO transform on a ``(1, 1, D, H, W)`` batch, and compare images relative to an artefact."""

from __future__ import annotations

import numpy as np
import torch
import torchio as tio


def torchio_apply(transform: tio.Transform, images: torch.Tensor, affine: np.ndarray) -> torch.Tensor:
    image = tio.ScalarImage(tensor=images[0].clone(), affine=affine)
    return transform(image).data[None].float()


def relative_error(ours: torch.Tensor, reference: torch.Tensor, clean: torch.Tensor) -> float:
    """``||ours - reference|| / ||reference - clean||``: error relative to the artefact's own size."""
    return float((ours - reference).norm() / (reference - clean).norm())
