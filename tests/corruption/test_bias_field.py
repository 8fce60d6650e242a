import numpy as np
import pytest
import torch
import torchio as tio

from hetero_qc.corruption import BiasFieldParams, RandomBiasField, bias_field
from tests.corruption.reference import relative_error, torchio_apply


@pytest.mark.parametrize("shape", [(32, 32, 32), (20, 27, 16)])
def test_matches_torchio_bias_field(centred_affine, shape):
    images = torch.rand((1, 1, *shape), generator=torch.Generator().manual_seed(0)) + 0.5
    coefficients = np.random.default_rng(1).uniform(-0.5, 0.5, 20).tolist()
    ours = bias_field(images, BiasFieldParams(torch.tensor([coefficients])))
    reference = torchio_apply(tio.BiasField(coefficients=coefficients, order=3), images, centred_affine)
    assert relative_error(ours, reference, images) < 1e-4  # same polynomial, float32 round-off


def test_zero_coefficients_are_identity(phantom):
    out, _ = RandomBiasField(coefficients=0.0)(phantom)
    torch.testing.assert_close(out, phantom)


def test_coefficients_fit_an_order():
    with pytest.raises(ValueError, match="coefficients"):
        bias_field(torch.ones(1, 1, 4, 4, 4), BiasFieldParams(torch.zeros(1, 7)))


def test_bad_order_raises():
    with pytest.raises(ValueError, match="order"):
        RandomBiasField(order=-1)
