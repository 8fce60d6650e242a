import math

import nibabel as nib
import numpy as np
import pytest
import torch

from hetero_qc.bench.corruption import high_frequency_share
from hetero_qc.corruption import MotionParams, RandomMotion, motion
from hetero_qc.corruption.kspace import magnitude_of_lines
from hetero_qc.corruption.motion import (
    PASSES,
    _chain,
    _shear_matrices,
    euler_matrix,
    resample,
    segment_poses,
    shear_factors,
)
from hetero_qc.paths import DATA_DIR


def params(degrees, translation, times) -> MotionParams:
    return MotionParams(torch.tensor(np.asarray(degrees)[None], dtype=torch.float32),
                        torch.tensor(np.asarray(translation)[None], dtype=torch.float32),
                        torch.tensor(np.asarray(times)[None], dtype=torch.float32))


def pose(degrees, translation) -> tuple[torch.Tensor, torch.Tensor]:
    """One pose of one sample: rotation ``(1, 1, 3, 3)`` and translation ``(1, 1, 3)`` mm."""
    return euler_matrix(torch.tensor([[degrees]])), torch.tensor([[translation]], dtype=torch.float64)


def power(x: torch.Tensor) -> float:
    return float((x.double() ** 2).mean())


def test_zero_motion_returns_input(phantom):
    out = motion(phantom, params(np.zeros((2, 3)), np.zeros((2, 3)), [0.3, 0.7]))
    torch.testing.assert_close(out, phantom, atol=1e-5, rtol=0)


def test_translation_is_the_fourier_shift():
    # Odd sizes with small prime factors: no padding and no Nyquist plane, so the reference is exact.
    x = torch.rand(1, 1, 35, 27, 45, generator=torch.Generator().manual_seed(0))
    shift_mm, spacing = (1.3, -0.7, 2.2), (2.0, 1.0, 1.5)
    rotation, translation = pose([0.0, 0.0, 0.0], shift_mm)
    ours = resample(x, rotation, translation, spacing)[0, 0].double()
    freqs = torch.meshgrid(*[torch.fft.fftfreq(n, dtype=torch.float64) for n in x.shape[2:]], indexing="ij")
    ramp = sum(f * t / s for f, t, s in zip(freqs, shift_mm, spacing))  # sampling at p + t: x(p + t)
    reference = torch.fft.ifftn(torch.fft.fftn(x[0, 0].double()) * torch.exp(2j * math.pi * ramp)).real
    assert float((ours - reference).abs().max()) < 1e-4


def test_rotation_and_translation_resample_a_smooth_blob_where_the_pose_says():
    # A Gaussian blob is band-limited to round-off, so exact resampling must equal it evaluated at
    # T(p) = R p + t (mm about the grid centre): this checks the geometry, not only the spectrum.
    shape, spacing = (48, 40, 45), (2.0, 2.5, 2.0)
    degrees, shift = [6.0, -4.0, 8.0], [3.0, -2.5, 4.0]
    centre = torch.tensor([5.0, -8.0, 6.0], dtype=torch.float64)  # mm, off the grid centre
    coords = torch.stack(torch.meshgrid(
        *[(torch.arange(n, dtype=torch.float64) - (n - 1) / 2) * s for n, s in zip(shape, spacing)],
        indexing="ij"), -1)

    def blob(p: torch.Tensor) -> torch.Tensor:
        return torch.exp(-((p - centre) ** 2).sum(-1) / (2 * 7.0**2))

    rotation, translation = pose(degrees, shift)
    ours = resample(blob(coords)[None, None].float(), rotation, translation, spacing)[0, 0]
    expected = blob(coords @ rotation[0, 0].T + translation[0, 0])
    assert float((ours - expected).abs().max()) < 2e-3


@pytest.mark.parametrize("degrees, translation", [(0.0, 0.5), (2.0, 2.0), (5.0, 5.0)])
def test_white_noise_keeps_its_power_and_spectrum(degrees, translation):
    noise = torch.randn(2, 1, 96, 96, 96, generator=torch.Generator().manual_seed(1))
    drawn = RandomMotion(degrees=degrees, translation=translation).sample(
        noise, generator=torch.Generator().manual_seed(2))
    moved = resample(noise, euler_matrix(drawn.degrees), drawn.translation, (2.0, 2.0, 2.0))
    assert power(moved) / power(noise) >= 0.98
    for after, before in zip(high_frequency_share(moved), high_frequency_share(noise)):
        assert abs(after - before) <= 0.02
    # The whole artefact: lines from orthogonal resamplings, assembled over signed frequencies and
    # reconstructed as a magnitude, keep the power (Parseval). The magnitude of zero-mean noise moves
    # power to DC, so its spectrum is checked on the resampling above, not here.
    corrupted = motion(noise, drawn, (2.0, 2.0, 2.0))
    assert power(corrupted) / power(noise) >= 0.98


@pytest.mark.parametrize("degrees, translation, tolerance", [
    ([5.0, -4.0, 3.0], [0.0, 0.0, 0.0], 1e-3),
    ([0.0, 0.0, 0.0], [4.0, -3.0, 5.0], 1e-5),  # phase ramps invert exactly
])
def test_a_real_scan_moved_and_moved_back_returns(degrees, translation, tolerance):
    # Rotations and translations separately: this scan's neck touches the field of view, and with
    # both at once part of it wraps across the edge between passes (see the module's periodic-FOV note).
    path = sorted((DATA_DIR / "ixi-hh-t1-2mm" / "t1").glob("*_T1w.nii.gz"))[0]
    scan = torch.from_numpy(np.asarray(nib.load(path).dataobj, dtype=np.float32))[None, None]
    scan = scan / scan.amax()
    rotation, shift = pose(degrees, translation)
    moved = resample(scan, rotation, shift, (2.0, 2.0, 2.0))
    back_rotation = rotation.transpose(-1, -2)
    back = resample(moved, back_rotation, -(back_rotation @ shift[..., None])[..., 0], (2.0, 2.0, 2.0))
    assert float((back - scan).norm() / scan.norm()) < tolerance
    assert float((moved - scan).norm() / scan.norm()) > 0.1  # it did move


def test_field_of_view_is_periodic():
    # What leaves one side comes back on the other (aliasing along the phase-encode axes). An odd
    # length: along an even one the Nyquist plane stays in place, so a point moves only to 1 - 1/n.
    x = torch.zeros(1, 1, 20, 21, 25)
    x[0, 0, 10, 10, 22] = 1.0
    rotation, translation = pose([0.0, 0.0, 0.0], [0.0, 0.0, 3.0])
    out = resample(x, rotation, translation)  # samples at p + 3: the point moves 3 voxels down
    assert float(out[0, 0, 10, 10, 19]) == pytest.approx(1.0, abs=1e-5)
    x2 = torch.zeros_like(x)
    x2[0, 0, 10, 10, 1] = 1.0
    wrapped = resample(x2, rotation, translation)
    assert float(wrapped[0, 0, 10, 10, 23]) == pytest.approx(1.0, abs=1e-5)  # 1 - 3 wraps to 23


def test_shear_factors_reproduce_the_matrix_with_small_shears():
    degrees = (torch.rand(500, 3, generator=torch.Generator().manual_seed(0)) * 2 - 1) * 10
    degrees[:3] = torch.diag(torch.tensor([10.0, 10.0, 10.0]))  # pure tilts, where closed forms fail
    voxel = torch.tensor([1.2, 1.0, 2.0], dtype=torch.float64)
    matrix = euler_matrix(degrees) * voxel[None, :] / voxel[:, None]
    shears = shear_factors(matrix)
    torch.testing.assert_close(_chain(_shear_matrices(shears)), matrix, atol=1e-12, rtol=0)
    assert float(shears.abs().max()) < 0.4  # about sin(10 deg) times the 2:1 voxel ratio
    assert len(PASSES) == 5


def test_shear_factors_reject_what_is_not_a_rotation():
    with pytest.raises(ValueError, match="shear decomposition"):
        shear_factors(2 * torch.eye(3, dtype=torch.float64))


def test_lines_are_assembled_over_signed_frequencies():
    # Reference: the full complex spectrum written out line by line, then |ifft|.
    generator = torch.Generator().manual_seed(4)
    images = torch.rand(1, 2, 6, 5, 9, generator=generator)
    pose_of_line = torch.tensor([[0, 1, 1, 0, 1, 0, 0, 1, 1]])
    weights = torch.nn.functional.one_hot(pose_of_line, 2).transpose(1, 2)
    full = torch.fft.fft(images.double(), dim=-1)
    mixed = torch.where(pose_of_line[0] == 0, full[:, 0], full[:, 1])
    reference = torch.fft.ifft(mixed, dim=-1).abs()
    ours = magnitude_of_lines([torch.fft.rfft(images, dim=-1)], weights, 4, 9)
    torch.testing.assert_close(ours[:, 0].double(), reference, atol=1e-6, rtol=0)


def test_centre_segment_uses_reference_pose():
    poses = segment_poses(torch.tensor([[0.3, 0.7]]), 10)
    assert poses.tolist() == [[1, 1, 1, 0, 0, 0, 0, 2, 2, 2]]  # TorchIO's sort_spectra rule


def test_batch_samples_are_independent(phantom):
    batch = torch.cat([phantom, phantom.flip(-1)])
    generator = torch.Generator().manual_seed(3)
    out, drawn = RandomMotion()(batch, generator=generator)
    alone = motion(batch[1:], drawn.select(torch.tensor([1])))
    torch.testing.assert_close(out[1:], alone, atol=1e-5, rtol=0)


def test_seeded_generator_reproduces(phantom):
    first = RandomMotion()(phantom, generator=torch.Generator().manual_seed(7))
    second = RandomMotion()(phantom, generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(first.image, second.image)
    assert first.params.as_dict() == second.params.as_dict()


@pytest.mark.parametrize("kwargs, name", [({"num_transforms": 0}, "num_transforms"),
                                          ({"degrees": (5, 1)}, "degrees"),
                                          ({"phase_axis": 3}, "phase_axis"),
                                          ({"translation": -2}, "translation")])
def test_bad_arguments_name_themselves(kwargs, name):
    with pytest.raises(ValueError, match=name):
        RandomMotion(**kwargs)


def test_bad_batch_shape_raises(phantom):
    with pytest.raises(ValueError, match="images"):
        RandomMotion()(phantom[0])


def test_phase_axis_is_any_axis(phantom):
    # Acquiring lines along axis 0 of a volume is acquiring them along axis 2 of its transpose.
    translation = [[3.0, -1.0, 2.0], [-2.0, 2.5, 1.0]]
    none = np.zeros((2, 3))
    along_0 = motion(phantom, params(none, translation, [0.3, 0.7]), phase_axis=0)
    swapped = [[t[2], t[1], t[0]] for t in translation]
    along_2 = motion(phantom.transpose(2, 4), params(none, swapped, [0.3, 0.7]), phase_axis=2)
    torch.testing.assert_close(along_0, along_2.transpose(2, 4), atol=1e-5, rtol=0)
