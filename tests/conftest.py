"""Small synthetic volumes shared by the tests (fixed seeds, no files needed)."""

from __future__ import annotations

import numpy as np
import pytest
import torch


def make_phantom(n: int = 32, seed: int = 0) -> torch.Tensor:
    """A head-like phantom ``(1, 1, n, n, n)`` in [0, 1]: an ellipsoid with texture and a bright core."""
    generator = torch.Generator().manual_seed(seed)
    z, y, x = torch.meshgrid(*[torch.linspace(-1, 1, n)] * 3, indexing="ij")
    head = (x**2 / 0.6 + y**2 / 0.8 + z**2 / 0.5) < 0.6
    texture = 0.15 * torch.sin(6 * x + 3 * y) + 0.05 * torch.rand((n, n, n), generator=generator)
    image = head * (0.6 + texture) + ((x**2 + y**2 + z**2) < 0.1) * 0.3
    return image.clamp(0, 1)[None, None].float()


def two_tissues(n: int = 48) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, ...]]:
    """A ball ``(n, n, n)`` bool, a checkerboard of 4-voxel cubes in it (as fine as cortex and white
    matter are on the 2 mm grid; True marks the second tissue) and the grid's ``(z, y, x)`` in [-1, 1]."""
    grid = torch.linspace(-1, 1, n)
    z, y, x = torch.meshgrid(grid, grid, grid, indexing="ij")
    ball = (x**2 + y**2 + z**2) < 0.8
    index = torch.arange(n) // 4
    checker = (index[:, None, None] + index[None, :, None] + index[None, None, :]) % 2 == 1
    return ball, checker, (z, y, x)


@pytest.fixture
def phantom() -> torch.Tensor:
    return make_phantom()


@pytest.fixture
def centred_affine() -> np.ndarray:
    """2 mm RAS affine whose world origin is the centre of a 32^3 grid, LPS-aligned with array axes.

    TorchIO 1.2's Motion rotates about the world origin (it drops the centre it sets when converting
    transforms to matrices); ours rotates about the grid centre. With this affine the two coincide.
    """
    affine = np.diag([-2.0, -2.0, 2.0, 1.0])
    affine[:3, 3] = [31.0, 31.0, -31.0]
    return affine
