import pytest
import torch

from hetero_qc.corruption import RandomPartialNoise, RandomRicianNoise, foreground_mean, grow_mask


def achieved_snr_db(clean: torch.Tensor, noisy: torch.Tensor) -> float:
    """SNR from E|y|^2 = x^2 + 2 sigma^2, over the whole volume: exact for Rician noise at any SNR."""
    sigma2 = float((noisy.double() ** 2 - clean.double() ** 2).mean() / 2)
    return 20 * torch.log10(foreground_mean(clean)[0] / sigma2**0.5).item()


@pytest.mark.parametrize("snr_db", [-10.0, -5.0, 0.0, 2.5, 5.0, 10.0])
def test_snr_matches_target_within_half_a_db(snr_db):
    from tests.conftest import make_phantom

    clean = make_phantom(48)
    noisy, params = RandomRicianNoise(snr_db=snr_db)(clean, generator=torch.Generator().manual_seed(1))
    assert abs(achieved_snr_db(clean, noisy) - snr_db) < 0.5
    assert params.snr_db.item() == pytest.approx(snr_db)


def test_noise_is_rician_not_gaussian(phantom):
    noisy, _ = RandomRicianNoise(snr_db=0.0)(phantom, generator=torch.Generator().manual_seed(0))
    assert float(noisy.min()) >= 0  # magnitude images stay non-negative
    background = noisy[phantom == 0]
    assert float(background.mean()) > 0.05  # Rayleigh background has a positive mean


def test_seeded_noise_reproduces_and_differs_by_seed(phantom):
    a = RandomRicianNoise(5.0)(phantom, generator=torch.Generator().manual_seed(0)).image
    b = RandomRicianNoise(5.0)(phantom, generator=torch.Generator().manual_seed(0)).image
    c = RandomRicianNoise(5.0)(phantom, generator=torch.Generator().manual_seed(1)).image
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, c)


def test_partial_noise_box_leaves_outside_untouched(phantom):
    noisy, params = RandomPartialNoise(snr_db=0.0, box_size=0.4)(phantom, generator=torch.Generator().manual_seed(2))
    changed = (noisy != phantom)[0, 0]
    centres = (torch.arange(32) + 0.5) / 32
    d, h, w = ((centres >= params.box[0, a]) & (centres < params.box[0, a + 3]) for a in range(3))
    inside = d[:, None, None] & h[None, :, None] & w[None, None, :]
    assert 0.02 < inside.float().mean() < 0.3
    assert not changed[~inside].any() and changed[inside].float().mean() > 0.99


def test_partial_noise_fixed_box_is_the_same_box_for_every_sample(phantom):
    batch = phantom.expand(2, -1, -1, -1, -1)
    noisy, params = RandomPartialNoise(snr_db=0.0, box=(0.5, 0.25, 0.0, 1.0, 0.75, 0.5))(batch)
    assert torch.equal(params.box, torch.tensor([[0.5, 0.25, 0.0, 1.0, 0.75, 0.5]] * 2))
    changed = noisy != batch
    assert not changed[:, :, :16].any() and not changed[:, :, :, :8].any() and not changed[..., 16:].any()
    assert changed[:, :, 16:, 8:24, :16].float().mean() > 0.99


def test_partial_noise_outside_mask(phantom):
    mask = phantom > 0.5
    noisy, _ = RandomPartialNoise(snr_db=0.0, region="outside_mask")(phantom, mask=mask)
    assert torch.equal(noisy[mask], phantom[mask])
    assert (noisy[~mask] != phantom[~mask]).float().mean() > 0.99


def test_grow_mask_by_millimetres_along_each_axis():
    mask = torch.zeros(2, 1, 9, 9, 9, dtype=torch.bool)
    mask[:, :, 4, 4, 4] = True
    grown = grow_mask(mask, torch.tensor([0.0, 4.0]), spacing=(2.0, 1.0, 4.0))
    assert torch.equal(grown[0], mask[0])  # no margin: the mask itself
    # 4 mm: 2 voxels of 2 mm, 4 of 1 mm, 1 of 4 mm
    assert grown[1, 0].nonzero().amin(0).tolist() == [2, 0, 3] and grown[1, 0].nonzero().amax(0).tolist() == [6, 8, 5]
    assert grown[1].sum() == 5 * 9 * 3


def test_partial_noise_outside_a_grown_mask_spares_the_margin(phantom):
    mask = phantom > 0.5
    noise = RandomPartialNoise(snr_db=0.0, region="outside_mask", margin_mm=(3.0, 3.0))
    noisy, params = noise(phantom, spacing=(1.0, 1.0, 1.0), mask=mask)
    assert params.margin_mm.tolist() == [3.0] * len(phantom)
    spared = grow_mask(mask, params.margin_mm, (1.0, 1.0, 1.0))
    assert torch.equal(noisy[spared], phantom[spared]) and (spared & ~mask).any()  # the margin stays clean
    assert (noisy[~spared] != phantom[~spared]).float().mean() > 0.99
    with pytest.raises(ValueError, match="margin_mm"):
        RandomPartialNoise(region="outside_mask", margin_mm=-1.0)


def test_a_fixed_margin_leaves_the_generator_as_it_was(phantom):
    mask = phantom > 0.5
    after = []
    for noise in (RandomPartialNoise(snr_db=0.0, box=(0, 0, 0, 1, 1, 1)),  # draws the noise's seed alone
                  RandomPartialNoise(snr_db=0.0, region="outside_mask"),
                  RandomPartialNoise(snr_db=0.0, region="outside_mask", margin_mm=10.0)):
        generator = torch.Generator().manual_seed(3)
        noise(phantom, generator=generator, mask=mask)
        after.append(torch.rand(4, generator=generator))
    torch.testing.assert_close(after[0], after[1])  # a seeded evaluation's later copies are unchanged
    torch.testing.assert_close(after[0], after[2])


def test_partial_noise_draws_the_edge_with_edge_p():
    images = torch.rand(400, 1, 2, 2, 2)
    params = RandomPartialNoise(region="outside_mask", margin_mm=(5.0, 20.0), edge_p=0.25).sample(
        images, torch.Generator().manual_seed(0))
    edge = params.margin_mm == 0
    assert 0.18 < edge.float().mean() < 0.32  # 100 expected of 400 (binomial sd 8.7)
    assert ((params.margin_mm[~edge] >= 5.0) & (params.margin_mm[~edge] <= 20.0)).all()
    with pytest.raises(ValueError, match="edge_p"):
        RandomPartialNoise(region="outside_mask", edge_p=1.5)


def test_outside_mask_needs_a_mask(phantom):
    with pytest.raises(ValueError, match="mask"):
        RandomPartialNoise(region="outside_mask")(phantom)


@pytest.mark.parametrize("kwargs, name", [({"snr_db": (5, 1)}, "snr_db"), ({"region": "left"}, "region"),
                                          ({"box_size": (0.5, 2.0)}, "box_size"),
                                          ({"box": (0.5, 0, 0, 0.4, 1, 1)}, "box"), ({"box": (0, 1)}, "box")])
def test_bad_arguments_name_themselves(kwargs, name):
    with pytest.raises(ValueError, match=name):
        RandomPartialNoise(**kwargs)


