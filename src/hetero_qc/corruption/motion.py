"""Rigid-motion k-space artefact after Shaw et al., MIDL 2019 (TorchIO's ``Motion``), batched in torch.

The head moves ``S`` times during the acquisition. k-space lines along the phase-encode axis are
acquired in order, so the lines acquired between motions ``i - 1`` and ``i`` come from the head in
pose ``i``: the spectrum is assembled from segments of the spectra of rigidly moved copies, and the
image is the real part of its inverse FFT. As in TorchIO, the segment holding the k-space centre is
taken from the reference pose (so the image stays registered to it) and the pose it would have had
moves to the first segment.

A pose is the sampling transform ``T(p) = R (p - c) + c + t`` in mm about the grid centre ``c``, with
``R = Rz Rx Ry`` from Euler angles in degrees about array axes 0, 1, 2 (ITK's ``Euler3DTransform``,
which TorchIO uses): the moved image is ``x(T(p))``. What makes this fast:

- all moved copies of the batch are resampled in one batched ``grid_sample`` call, the translation
  folded into the sampling grid at no cost;
- a line's source depends on its phase-encode index only, so the FFTs along the other two axes cancel
  and one real 1D FFT along the phase-encode axis per copy does it all
  (:func:`~hetero_qc.corruption.kspace.mix_lines`): a 3D FFT's work cut to a third, half of it again.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from hetero_qc.corruption.base import (
    Params,
    RandomArtefact,
    Spacing,
    check_axis,
    parse_range,
    uniform,
)
from hetero_qc.corruption.kspace import mix_lines


@dataclass(frozen=True)
class MotionParams(Params):
    """Per-sample poses: rotations (degrees) and translations (mm) about/along array axes 0, 1, 2,
    ``(B, S, 3)`` each, and the times in (0, 1) at which each motion happens, ``(B, S)``, ascending."""

    degrees: Tensor
    translation: Tensor
    times: Tensor


def euler_matrix(degrees: Tensor) -> Tensor:
    """Rotation matrices ``R = Rz Rx Ry`` (ITK's Euler3D order) from angles ``(..., 3)`` in degrees."""
    ax, ay, az = torch.deg2rad(degrees.double()).unbind(-1)
    one, zero = torch.ones_like(ax), torch.zeros_like(ax)

    def matrix(rows: list[list[Tensor]]) -> Tensor:
        return torch.stack([torch.stack(r, dim=-1) for r in rows], dim=-2)

    rx = matrix([[one, zero, zero], [zero, ax.cos(), -ax.sin()], [zero, ax.sin(), ax.cos()]])
    ry = matrix([[ay.cos(), zero, ay.sin()], [zero, one, zero], [-ay.sin(), zero, ay.cos()]])
    rz = matrix([[az.cos(), -az.sin(), zero], [az.sin(), az.cos(), zero], [zero, zero, one]])
    return rz @ rx @ ry


def segment_poses(times: Tensor, n_lines: int) -> Tensor:
    """Pose index (0 = reference, ``i`` = motion ``i``) of each line of the centred spectrum.

    Args:
        times: ``(B, S)`` motion times in (0, 1), ascending.
        n_lines: number of lines along the phase-encode axis.

    Returns:
        ``(B, n_lines)`` long tensor, in centred (``fftshift``-ed) line order.
    """
    n_motions = times.shape[1]
    bounds = torch.floor(times * n_lines).long()  # start of segment i + 1
    line = torch.arange(n_lines, device=times.device)
    segment = (line[None, :, None] >= bounds[:, None, :]).sum(-1)  # (B, n_lines) in 0..S
    # The segment holding the centre is the first one ending after time 0.5 (TorchIO's sort_spectra).
    after = times > 0.5
    centre = torch.where(after.any(-1), after.long().argmax(-1), torch.full_like(bounds[:, 0], n_motions))
    pose = segment.clone()
    pose[segment == centre[:, None]] = 0
    first = (segment == 0) & (centre[:, None] != 0)
    return torch.where(first, centre[:, None].expand_as(segment), pose)


def _pose_grid(
    rotation: Tensor, translation: Tensor, spacing: Spacing, shape: tuple[int, int, int], dtype: torch.dtype
) -> Tensor:
    """``grid_sample`` grid that samples at ``R p + t`` (``p`` in mm about the centre of a ``shape``
    grid), for ``rotation`` ``(B, S, 3, 3)`` and ``translation`` ``(B, S, 3)`` mm.

    Returns ``(B, S * D, H, W, 3)``: the ``S`` poses of a sample are stacked along depth, so one
    ``grid_sample`` call resamples every pose of the batch without copying the input ``S`` times.
    Each coordinate channel is a broadcast sum of per-axis terms written in place:
    ``F.affine_grid`` runs a batched matmul over every voxel, which took longer on the CPU than the
    resampling itself.
    """
    batch, poses = rotation.shape[:2]
    half_extent = torch.tensor([s * n / 2 for s, n in zip(spacing, shape)], dtype=torch.float64,
                               device=rotation.device)
    # Normalised coordinates u = q / half_extent (align_corners=False); the grid's last axis is (W, H, D).
    affine = (rotation / half_extent[:, None] * half_extent[None, :]).flip(-1).flip(-2).to(dtype)
    offset = (translation.double() / half_extent).flip(-1).to(dtype)  # (B, S, 3) in grid order (W, H, D)
    u_d, u_h, u_w = ((2 * torch.arange(n, device=rotation.device, dtype=dtype) + 1) / n - 1 for n in shape)
    grid = torch.empty((batch, poses, *shape, 3), device=rotation.device, dtype=dtype)
    for c in range(3):
        row = affine[:, :, c]  # (B, S, 3): weights of u_w, u_h, u_d
        plane = (row[..., 2, None, None] * u_d[:, None] + row[..., 1, None, None] * u_h[None, :]
                 + offset[..., c, None, None])
        torch.add(plane[..., None], (row[..., 0, None] * u_w)[:, :, None, None, :], out=grid[..., c])
    return grid.reshape(batch, poses * shape[0], *shape[1:], 3)


def _move(images: Tensor, rotation: Tensor, translation: Tensor, spacing: Spacing) -> Tensor:
    """Resample ``images`` ``(B, 1, D, H, W)`` at each pose ``R p + t`` about the grid centre.

    Args:
        rotation: ``(B, S, 3, 3)``.
        translation: ``(B, S, 3)`` mm.

    Returns:
        ``(B, S, D, H, W)``; outside the image the sample's minimum (its background) is used, as in TorchIO.
    """
    batch, poses = rotation.shape[:2]
    shape = tuple(images.shape[-3:])
    grid = _pose_grid(rotation, translation, spacing, shape, images.dtype)
    background = images.amin(dim=(1, 2, 3, 4), keepdim=True)
    zero_background = bool((background == 0).all())  # MRI magnitude: usually, and two passes saved
    source = images if zero_background else images - background
    if batch == 1:
        # The CPU grid_sample splits its work across threads by batch entry only: one volume's poses
        # go along the batch axis of a stride-0 view (no copy), so they resample in parallel.
        source, grid = source.expand(poses, -1, -1, -1, -1), grid.reshape(poses, *shape, 3)
    rotated = F.grid_sample(source, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    if not zero_background:
        rotated = rotated + background
    return rotated.reshape(batch, poses, *shape)


def motion(
    images: Tensor,
    params: MotionParams,
    spacing: Spacing = (1.0, 1.0, 1.0),
    phase_axis: int = 2,
) -> Tensor:
    """Corrupt ``images`` ``(B, 1, D, H, W)`` with the rigid motion of ``params``.

    Args:
        images: magnitude images, ``(B, 1, D, H, W)``.
        params: poses and times (see :class:`MotionParams`).
        spacing: voxel size in mm along axes 0, 1, 2.
        phase_axis: spatial axis along which k-space lines are acquired in time (TorchIO: 2).

    Returns:
        The corrupted batch, same shape and dtype.
    """
    n_motions = params.times.shape[1]
    phase = check_axis(phase_axis, "phase_axis")
    rotation = euler_matrix(params.degrees.to(images.device))  # (B, S, 3, 3), float64
    moved = _move(images, rotation, params.translation.double().to(images.device), spacing)  # (B, S, D, H, W)
    pose = torch.fft.ifftshift(segment_poses(params.times.to(images.device), images.shape[2 + phase]), dim=-1)
    weights = F.one_hot(pose, n_motions + 1).transpose(1, 2).to(images.dtype)  # (B, S + 1, n_lines)
    return mix_lines([images, moved], weights, phase)


class RandomMotion(RandomArtefact):
    """Random rigid motion with TorchIO's defaults: 2 motions, angles in (-10, 10) degrees, translations
    in (-10, 10) mm, times evenly spaced in (0, 1) with a 30% jitter of the spacing.

    Args:
        degrees: rotation range in degrees about each axis; ``d`` means ``(-d, d)``.
        translation: translation range in mm along each axis; ``t`` means ``(-t, t)``.
        num_transforms: number of motions during the acquisition, >= 1.
        phase_axis: axis along which k-space lines are acquired in time.

    Raises:
        ValueError: naming the argument that is out of range.
    """

    name = "motion"

    def __init__(
        self,
        degrees: float | tuple[float, float] = 10.0,
        translation: float | tuple[float, float] = 10.0,
        num_transforms: int = 2,
        phase_axis: int = 2,
    ) -> None:
        self.degrees = parse_range(degrees, "degrees", symmetric=True, min_value=-180, max_value=180)
        self.translation = parse_range(translation, "translation", symmetric=True)
        if not isinstance(num_transforms, int) or num_transforms < 1:
            raise ValueError(f"num_transforms must be a positive integer, got {num_transforms!r}")
        self.num_transforms = num_transforms
        self.phase_axis = check_axis(phase_axis, "phase_axis")

    def sample(self, images: Tensor, generator: torch.Generator | None = None) -> MotionParams:
        batch, n = images.shape[0], self.num_transforms
        step = 1 / (n + 1)
        times = torch.arange(1, n + 1, device=images.device, dtype=torch.float32) * step
        times = times + uniform((-0.3 * step, 0.3 * step), (batch, n), images, generator)
        return MotionParams(
            degrees=uniform(self.degrees, (batch, n, 3), images, generator),
            translation=uniform(self.translation, (batch, n, 3), images, generator),
            times=times,
        )

    def apply(
        self,
        images: Tensor,
        params: MotionParams,
        spacing: Spacing = (1.0, 1.0, 1.0),
        mask: Tensor | None = None,
    ) -> Tensor:
        return motion(images, params, spacing, self.phase_axis)
