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
