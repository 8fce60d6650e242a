"""Ghosting and spikes against TorchIO's, and the identities at zero severity."""

import numpy as np
import pytest
import torch
import torchio as tio

from hetero_qc.corruption import (
    GhostingParams,
    RandomGhosting,
    RandomSpike,
    SpikeParams,
    ghosting,
    spike,
)
from tests.corruption.reference import relative_error, torchio_apply

# Same maths as TorchIO's (a 1D real FFT instead of a 3D complex one; the spike as a plane wave), so
# they agree to float32 round-off: 1e-4 of the artefact's size.
TOLERANCE = 1e-4


@pytest.mark.parametrize("axis", [0, 1, 2])
@pytest.mark.parametrize("restore", [0.0, 0.1])
def test_ghosting_matches_torchio(phantom, centred_affine, axis, restore):
    ours = ghosting(phantom, GhostingParams(torch.tensor([5]), torch.tensor([axis]), torch.tensor([0.7]),
                                            torch.tensor([restore])))
    reference = torchio_apply(tio.Ghosting(num_ghosts=5, axis=axis, intensity=0.7,
                                           restore=restore or None), phantom, centred_affine)
    assert relative_error(ours, reference, phantom) < TOLERANCE


def test_ghosting_zero_intensity_is_identity(phantom):
    out = ghosting(phantom, GhostingParams(torch.tensor([4]), torch.tensor([1]), torch.tensor([0.0]),
                                           torch.tensor([0.0])))
    torch.testing.assert_close(out, phantom, atol=1e-6, rtol=0)


def test_spike_matches_torchio(phantom, centred_affine):
    positions = np.array([[0.3, 0.6, 0.45], [0.1, 0.9, 0.5]])
    ours = spike(phantom, SpikeParams(torch.tensor(positions[None], dtype=torch.float32),
                                      torch.tensor([0.5]), torch.ones(1, 2, dtype=torch.bool)))
    reference = torchio_apply(tio.Spike(spikes_positions=positions, intensity=0.5), phantom, centred_affine)
    assert relative_error(ours, reference, phantom) < TOLERANCE


def test_spike_zero_intensity_is_identity(phantom):
    out, _ = RandomSpike(intensity=0.0)(phantom)
    torch.testing.assert_close(out, phantom)


@pytest.mark.parametrize("cls, kwargs, name", [
    (RandomGhosting, {"intensity": 1.5}, "intensity"),
    (RandomGhosting, {"num_ghosts": 0}, "num_ghosts"),
    (RandomGhosting, {"axes": (5,)}, "axes"),
    (RandomSpike, {"num_spikes": -1}, "num_spikes"),
    (RandomSpike, {"intensity": (3, 1)}, "intensity"),
])
def test_bad_arguments_name_themselves(cls, kwargs, name):
    with pytest.raises(ValueError, match=name):
        cls(**kwargs)


def _spectrum(x: torch.Tensor) -> torch.Tensor:
    return torch.fft.fftn(x[0, 0].double()).abs() ** 2


def test_ghosting_changes_white_noise_only_on_the_lines_it_modulates():
    # The white-noise rule for the k-space artefacts: nothing is resampled, so the spectrum is
    # unchanged wherever the artefact does not act (here: planes where neither f nor -f is modulated).
    noise = torch.randn(1, 1, 24, 20, 30, generator=torch.Generator().manual_seed(0))
    out = ghosting(noise, GhostingParams(torch.tensor([5]), torch.tensor([2]), torch.tensor([0.7]),
                                         torch.tensor([0.0])))
    freq = torch.fft.fftfreq(30, 1 / 30).round().long()  # signed frequency of each plane along axis 2
    modulated = ((freq + 15) % 5 == 0) & (freq != 0)  # TorchIO's every-5th centred plane, centre kept
    touched = modulated | modulated[(-torch.arange(30)) % 30]
    before, after = _spectrum(noise), _spectrum(out)
    torch.testing.assert_close(after[..., ~touched], before[..., ~touched], rtol=1e-4, atol=1e-3)
    assert bool(after[..., touched].sum() < 0.9 * before[..., touched].sum())


def test_spike_changes_white_noise_only_at_its_frequencies():
    noise = torch.randn(1, 1, 20, 20, 20, generator=torch.Generator().manual_seed(1))
    positions = torch.tensor([[[0.3, 0.6, 0.45]]])
    out = spike(noise, SpikeParams(positions, torch.tensor([0.5]), torch.ones(1, 1, dtype=torch.bool)))
    changed = (_spectrum(out) - _spectrum(noise)).abs() > 1e-3 * _spectrum(noise).mean()
    assert 1 <= int(changed.sum()) <= 2  # the spike's frequency and its mirror, nothing else
