"""Rigid-motion k-space artefact after Shaw et al., MIDL 2019, with exact (band-limited) resampling.

The head moves ``S`` times during the acquisition. k-space lines along the phase-encode axis are
acquired in linear order, from the most negative frequency to the most positive, so the lines acquired
between motions ``i - 1`` and ``i`` come from the head in pose ``i``. As in TorchIO, the segment
holding the k-space centre is taken from the reference pose (so the image stays registered to it) and
the pose it would have had moves to the first segment.

What differs from TorchIO's ``Motion``, and why (physics is the reference):

- **Each moved pose is resampled exactly**, with five 1D-FFT shear passes (Unser, Thevenaz &
  Yaroslavsky 1995; Eddy et al. 1996): a rigid transform is a product of shears along the phase-encode
  axis ``z``, the two others ``x``, ``y``, then ``x`` and ``z`` again (:func:`shear_factors`), and a
  shear along one axis is a per-line Fourier phase ramp. A translation is a pure phase ramp, and the
  image's spectrum is re-phased, never low-pass filtered: its noise and fine texture keep their power,
  where trilinear interpolation (TorchIO's) removes much of both.
- **k-space is assembled over signed frequencies and the magnitude is reconstructed**, as a scanner
  does. Lines ``f`` and ``-f`` are acquired at different times, so they may come from different poses;
  TorchIO keeps the real part instead, which averages the two poses there and loses power.
- **The field of view is periodic**: what leaves one side comes back on the other, as aliasing does
  along the phase-encode axes. A rotation by shears is exact for what stays inside the field of view
  through every pass; a head with a background margin of a few voxels does. Where the head touches
  the field of view (a neck cut by the slab), the part that crosses an edge between passes lands
  displaced: rotation and translation together then do not invert exactly (the tests measure both
  separately). Along the readout axis a scanner would drop what leaves instead; the two agree while
  the head stays inside.
- **Even-length axes keep their Nyquist plane in place** in every pass (its shift is ambiguous for a
  real signal, and keeping it makes each pass orthogonal), so white noise keeps its power exactly.

The image's own noise moves with the head (it is baked into the clean scan); the receiver noise is
added afterwards by the noise artefacts and does not move. A pose is the sampling transform
``T(p) = R (p - c) + c + t`` in mm about the grid centre ``c``, ``R = Rz Rx Ry`` from Euler angles in
degrees about array axes 0, 1, 2 (ITK's ``Euler3DTransform``, as TorchIO): the moved image is
``x(T(p))``. What makes it fast: the first pass reuses the input's FFT along ``z`` (shared by all
poses), and the last pass ends in the FFT along ``z`` that the line assembly needs anyway.
"""

from __future__ import annotations

import math
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
from hetero_qc.corruption.kspace import magnitude_of_lines


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


# Shear passes of a rigid transform in local coordinates (x, y, z) = (0, 1, 2), z the phase-encode
# axis: each is (axis it shifts along, the two axes its shift depends on). Applied in this order.
PASSES = ((2, (0, 1)), (0, (1, 2)), (1, (0, 2)), (0, (1, 2)), (2, (0, 1)))


def _shear_matrices(shears: Tensor) -> Tensor:
    """Matrices ``I + e_a w^T`` of the five passes from their weights ``(..., 5, 2)``: ``(..., 5, 3, 3)``."""
    eye = torch.eye(3, dtype=shears.dtype, device=shears.device)
    out = eye.expand(*shears.shape[:-1], 3, 3).clone()
    for k, (axis, others) in enumerate(PASSES):
        out[..., k, axis, others[0]] = shears[..., k, 0]
        out[..., k, axis, others[1]] = shears[..., k, 1]
    return out


def _chain(matrices: Tensor) -> Tensor:
    """Product ``S_1 S_2 ... S_5`` of ``(..., 5, 3, 3)``."""
    out = matrices[..., 0, :, :]
    for k in range(1, matrices.shape[-3]):
        out = out @ matrices[..., k, :, :]
    return out


def shear_factors(matrix: Tensor, iterations: int = 12) -> Tensor:
    """Weights of the five shear passes whose product ``S_1 ... S_5`` is ``matrix``.

    ``matrix`` ``(..., 3, 3)`` is a volume-preserving sampling matrix in local voxel coordinates
    (``x``, ``y``, ``z``), near the identity (a rotation, conjugated by the voxel size). The passes of
    :data:`PASSES` have 10 weights for the 8 degrees of freedom of such a matrix: Gauss-Newton with
    minimum-norm steps, from the first-order split (each off-diagonal entry shared by the passes that
    can make it), converges to the nearby solution with the smallest shears: about ``sin`` of the angle,
    as the three-pass 2D rotation. Closed forms exist for fewer passes, but they divide by entries that
    vanish for some small rotations (a pure tilt), which gives huge shears that wrap the head around.

    Returns:
        ``(..., 5, 2)`` float64 weights, pass ``k`` shifting along ``PASSES[k][0]`` by
        ``w[k, 0] * q[PASSES[k][1][0]] + w[k, 1] * q[PASSES[k][1][1]]``.

    Raises:
        ValueError: if the decomposition does not converge (a rotation far beyond a head's motion).
    """
    m = matrix.double()
    half = m / 2
    shears = torch.stack([
        torch.stack([half[..., 2, 0], half[..., 2, 1]], -1),
        torch.stack([half[..., 0, 1], half[..., 0, 2]], -1),
        torch.stack([m[..., 1, 0], m[..., 1, 2]], -1),
        torch.stack([half[..., 0, 1], half[..., 0, 2]], -1),
        torch.stack([half[..., 2, 0], half[..., 2, 1]], -1),
    ], -2)
    for _ in range(iterations):
        matrices = _shear_matrices(shears)
        residual = (_chain(matrices) - m).flatten(-2)  # (..., 9)
        # d(S_1 ... S_5)/dw = S_1..S_{k-1} E S_{k+1}..S_5, with E the unit matrix at the weight's entry.
        columns = []
        for k, (axis, others) in enumerate(PASSES):
            before = _chain(matrices[..., :k, :, :]) if k else torch.eye(3, dtype=m.dtype, device=m.device)
            after = _chain(matrices[..., k + 1 :, :, :]) if k < 4 else torch.eye(3, dtype=m.dtype, device=m.device)
            for other in others:
                unit = torch.zeros(3, 3, dtype=m.dtype, device=m.device)
                unit[axis, other] = 1
                columns.append((before @ unit @ after).flatten(-2))
        jacobian = torch.stack(columns, -1)  # (..., 9, 10)
        step = (torch.linalg.pinv(jacobian) @ residual[..., None])[..., 0]
        shears = shears - step.reshape(shears.shape)
    error = (_chain(_shear_matrices(shears)) - m).abs().amax((-1, -2))
    if bool((error > 1e-9).any()):
        raise ValueError(f"motion: no shear decomposition for a rotation this large (residual {error.max():.1e})")
    return shears


def _local_axes(phase_axis: int) -> tuple[int, int, int]:
    """Array axes playing x, y, z: z is the phase-encode axis, x the later (cheaper) of the others,
    which takes two of the five passes."""
    others = [a for a in range(3) if a != phase_axis]
    return others[1], others[0], phase_axis


def _ramp(weight: Tensor, offset: Tensor | None, n: int, dim: int, other: int, size: int) -> Tensor:
    """Complex phase factor of a pass along tensor ``dim`` (``n`` voxels) for the part of the shift
    that depends on tensor dim ``other`` (``size`` voxels): ``exp(2 pi i k (w q + t) / n)`` over the
    ``n // 2 + 1`` rfft frequencies ``k`` and centred coordinates ``q``, with the Nyquist plane of an
    even ``n`` left in place. ``weight`` and ``offset`` are ``(B, S)``; returns a 5D broadcastable factor.
    """
    k = torch.arange(n // 2 + 1, device=weight.device, dtype=torch.float64)
    if n % 2 == 0:
        k[-1] = 0
    q = torch.arange(size, device=weight.device, dtype=torch.float64) - (size - 1) / 2
    shape_k, shape_q = [1] * 5, [1] * 5
    shape_k[dim], shape_q[other] = k.numel(), size
    shift = weight[..., None, None, None] * q.reshape(shape_q)[0, 0]
    if offset is not None:
        shift = shift + offset[..., None, None, None]
    angle = (2 * math.pi / n) * k.reshape(shape_k)[0, 0] * shift
    return torch.polar(torch.ones_like(angle), angle).to(torch.complex64)


def _shift(spectrum: Tensor, n: int, dim: int, others: tuple[int, int], shears: Tensor,
           offset: Tensor) -> Tensor:
    """Multiply an rfft ``spectrum`` along ``dim`` by the phase ramps of one pass (weights ``(B, S, 2)``
    on tensor dims ``others``, constant shift ``offset`` ``(B, S)``); broadcasts a ``(B, 1, ...)``
    spectrum over the ``S`` poses."""
    sizes = spectrum.shape
    first = _ramp(shears[..., 0], offset, n, dim, others[0], sizes[others[0]])
    out = spectrum * first
    return out.mul_(_ramp(shears[..., 1], None, n, dim, others[1], sizes[others[1]]))


def moved_spectra(images: Tensor, rotation: Tensor, translation: Tensor, spacing: Spacing,
                  phase_axis: int, spectrum: Tensor | None = None) -> Tensor:
    """rfft along ``phase_axis`` of ``images`` ``(B, 1, D, H, W)`` resampled exactly at each pose.

    Args:
        rotation: ``(B, S, 3, 3)`` in mm space about the grid centre.
        translation: ``(B, S, 3)`` mm.
        spectrum: ``torch.fft.rfft(images, dim=2 + phase_axis)`` when the caller has it already.

    Returns:
        ``(B, S, ...)`` complex, the shape of ``spectrum`` with ``S`` poses.
    """
    axes = _local_axes(phase_axis)
    dims = tuple(2 + a for a in axes)
    sizes = [images.shape[d] for d in dims]
    voxel = torch.tensor(spacing, dtype=torch.float64, device=images.device)
    matrix = rotation.double() * voxel[None, :] / voxel[:, None]  # voxel-space: diag(1/s) R diag(s)
    order = torch.tensor(axes, device=images.device)
    local = matrix[..., order, :][..., :, order]
    shift = (translation.double() / voxel)[..., order]  # (B, S, 3) voxels in local order
    w = shear_factors(local)  # (B, S, 5, 2)
    # Translations ride on the first three passes (z, x, y): constant = t1 e_z + S1 (t2 e_x + S2 t3 e_y).
    t_y = shift[..., 1]
    t_x = shift[..., 0] - w[..., 1, 0] * t_y
    t_z = shift[..., 2] - w[..., 0, 0] * shift[..., 0] - w[..., 0, 1] * t_y
    zero = torch.zeros_like(t_y)
    offsets = (t_z, t_x, t_y, zero, zero)
    if spectrum is None:
        spectrum = torch.fft.rfft(images.float(), dim=dims[2])
    volumes = images
    for k, (axis, others) in enumerate(PASSES):
        dim, n = dims[axis], sizes[axis]
        if k > 0:
            spectrum = _rfft(volumes, dim)
        spectrum = _shift(spectrum, n, dim, (dims[others[0]], dims[others[1]]), w[..., k, :], offsets[k])
        if k < len(PASSES) - 1:
            volumes = torch.fft.irfft(spectrum, n=n, dim=dim)
    return spectrum


def _rfft(volumes: Tensor, dim: int) -> Tensor:
    """``torch.fft.rfft`` along ``dim``, through a transposed copy when ``dim`` is not the innermost
    axis in memory: the CPU's real FFT along a strided axis copies element by element, and took
    several times longer than one transposing copy plus the FFT along contiguous lines (a one-off
    profile of a batch of four 128^3 volumes: 330 against 90-110 ms per volume for all of motion)."""
    if volumes.stride(dim) == 1:
        return torch.fft.rfft(volumes, dim=dim)
    return torch.fft.rfft(volumes.movedim(dim, -1).contiguous(), dim=-1).movedim(-1, dim)


def resample(images: Tensor, rotation: Tensor, translation: Tensor, spacing: Spacing = (1.0, 1.0, 1.0),
             phase_axis: int = 2) -> Tensor:
    """``images`` ``(B, 1, D, H, W)`` resampled exactly at each pose ``R p + t``: ``(B, S, D, H, W)``.

    The band-limited rigid resampling that :func:`motion` uses for each pose (periodic field of view).
    """
    dim = 2 + check_axis(phase_axis, "phase_axis")
    padded, crop = _pad_for_fft(images.float())
    spectra = moved_spectra(padded, rotation.to(images.device), translation.to(images.device), spacing,
                            phase_axis)
    return torch.fft.irfft(spectra, n=padded.shape[dim], dim=dim)[crop].to(images.dtype)


def _fft_size(n: int) -> int:
    """Smallest size >= ``n`` with no prime factor above 7: FFTs along prime lengths (IXI's 109, a
    1 mm scan's 197 and 233) run several times slower."""
    size = n
    while True:
        rest = size
        for p in (2, 3, 5, 7):
            while rest % p == 0:
                rest //= p
        if rest == 1:
            return size
        size += 1


def _pad_for_fft(images: Tensor) -> tuple[Tensor, tuple[slice, ...]]:
    """Zero-pad ``(B, C, D, H, W)`` at the far end of each axis to FFT-friendly sizes; returns the
    padded batch and the index that crops it back. The field of view grows by a few background voxels,
    so the periodic field of view of the shear passes is that much larger."""
    sizes = [_fft_size(n) for n in images.shape[2:]]
    pad = [p for n, size in zip(reversed(images.shape[2:]), reversed(sizes)) for p in (0, size - n)]
    crop = (slice(None), slice(None), *(slice(0, n) for n in images.shape[2:]))
    return (F.pad(images, pad) if any(pad) else images), crop


def motion(
    images: Tensor,
    params: MotionParams,
    spacing: Spacing = (1.0, 1.0, 1.0),
    phase_axis: int = 2,
) -> Tensor:
    """Corrupt ``images`` ``(B, 1, D, H, W)`` with the rigid motion of ``params``.

    Args:
        images: magnitude images (non-negative), ``(B, 1, D, H, W)``.
        params: poses and times (see :class:`MotionParams`).
        spacing: voxel size in mm along axes 0, 1, 2.
        phase_axis: spatial axis along which k-space lines are acquired in time (TorchIO: 2).

    Returns:
        The corrupted magnitude image, same shape and dtype.
    """
    phase = check_axis(phase_axis, "phase_axis")
    device = images.device
    padded, crop = _pad_for_fft(images.float())
    dim, n = 2 + phase, padded.shape[2 + phase]
    spectrum = torch.fft.rfft(padded, dim=dim)
    rotation = euler_matrix(params.degrees.to(device))  # (B, S, 3, 3), float64
    moved = moved_spectra(padded, rotation, params.translation.to(device), spacing, phase, spectrum)
    pose = torch.fft.ifftshift(segment_poses(params.times.to(device), n), dim=-1)
    weights = F.one_hot(pose, params.times.shape[1] + 1).transpose(1, 2)  # (B, S + 1, n)
    return magnitude_of_lines([spectrum, moved], weights, dim, n)[crop].to(images.dtype)


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
