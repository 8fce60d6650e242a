"""The scan scores and Dice: one definition shared by training logs, experiments and the QC tool."""

import math

import pytest
import torch

from hetero_qc.metrics import dice, predicted_cgm, scan_sigma_r, scan_sigma_s, scan_sigma_s_band, scan_sigma_s_cortex, scan_sigma_s_head


def test_scan_sigma_r_is_the_predicted_rmse_over_the_head():
    log_var = torch.log(torch.tensor([0.01, 0.04, 0.04, 100.0])).reshape(1, 1, 4, 1, 1)  # sigma 0.1, 0.2, 0.2, 10
    head = torch.tensor([True, True, True, False]).reshape(1, 1, 4, 1, 1)
    assert scan_sigma_r(log_var, head).item() == pytest.approx(0.03 ** 0.5)  # sqrt of (0.01 + 0.04 + 0.04) / 3


def test_scan_sigma_r_rises_with_damage_in_a_few_voxels():
    """A local artefact that raises sigma in a tenth of the head must raise the scan's sigma_r (a
    median would not move)."""
    log_var = torch.full((1, 1, 10, 4, 4), torch.log(torch.tensor(0.01)).item())
    head = torch.ones_like(log_var, dtype=torch.bool)
    before = scan_sigma_r(log_var, head).item()
    log_var[:, :, :1] = torch.log(torch.tensor(1.0))
    assert scan_sigma_r(log_var, head).item() == pytest.approx((0.9 * 0.01 + 0.1 * 1.0) ** 0.5)
    assert scan_sigma_r(log_var, head).item() > 3 * before


def test_scan_sigma_s_cortex_averages_the_predicted_cortex_or_else_the_head():
    logits = torch.tensor([[0.0, 0.0, 0.0, 0.0], [1.0, 1.0, -1.0, -1.0]]).reshape(1, 2, 4, 1, 1)  # cortex: 0, 1
    log_var = torch.log(torch.tensor([1.0, 9.0, 100.0, 100.0])).reshape(1, 1, 4, 1, 1)
    head = torch.tensor([True, True, True, False]).reshape(1, 1, 4, 1, 1)
    assert predicted_cgm(logits).flatten().tolist() == [True, True, False, False]
    assert scan_sigma_s_cortex(logits, log_var, head).item() == pytest.approx(2.0)  # (1 + 3) / 2
    nothing = torch.stack([logits[:, 1], logits[:, 0]], 1)  # background wins where it lost
    nothing[:, 1] = -5.0
    assert scan_sigma_s_cortex(nothing, log_var, head).item() == pytest.approx((1 + 3 + 10) / 3)


def test_scan_sigma_s_head_averages_the_head_so_cortex_given_up_counts():
    log_var = torch.log(torch.tensor([1.0, 9.0, 100.0, 400.0])).reshape(1, 1, 4, 1, 1)
    head = torch.tensor([True, True, True, False]).reshape(1, 1, 4, 1, 1)
    assert scan_sigma_s_head(log_var, head).item() == pytest.approx((1 + 3 + 10) / 3)  # not the voxel outside


def test_scan_sigma_s_band_grows_the_cortex_by_millimetres_within_the_head():
    logits = torch.zeros(1, 2, 6, 1, 1)
    logits[0, 1, :2] = 1.0  # predicted cortex: voxels 0 and 1
    log_var = torch.log(torch.tensor([1.0, 1.0, 16.0, 100.0, 100.0, 100.0])).reshape(1, 1, 6, 1, 1)
    head = torch.tensor([True] * 5 + [False]).reshape(1, 1, 6, 1, 1)
    # 2 mm voxels, 4 mm: the band reaches voxel 3; voxel 4 and the voxel outside the head stay out
    assert scan_sigma_s_band(logits, log_var, head, (2.0, 1.0, 1.0)).item() == pytest.approx((1 + 1 + 4 + 10) / 4)
    assert scan_sigma_s_band(logits, log_var, head, (2.0, 1.0, 1.0), margin_mm=0.0).item() == pytest.approx(1.0)
    logits[0, 1] = -1.0  # no cortex predicted: the head
    assert scan_sigma_s_band(logits, log_var, head, (2.0, 1.0, 1.0)).item() == pytest.approx((1 + 1 + 4 + 10 + 10) / 5)


def _logits(p: torch.Tensor) -> torch.Tensor:
    """Background/cortex logits ``(1, 2, N, 1, 1)`` whose softmax gives cortex probability ``p`` ``(N,)``."""
    return torch.stack([torch.zeros_like(p), torch.log(p / (1 - p))]).reshape(1, 2, -1, 1, 1)


def test_scan_sigma_s_weights_the_head_by_the_cortex_probability():
    logits = _logits(torch.tensor([0.75, 0.25, 1e-6, 0.5]))  # the last voxel is outside the head
    log_var = torch.log(torch.tensor([1.0, 9.0, 400.0, 100.0])).reshape(1, 1, 4, 1, 1)
    head = torch.tensor([True, True, True, False]).reshape(1, 1, 4, 1, 1)
    assert scan_sigma_s(logits, log_var, head).item() == pytest.approx((0.75 * 1 + 0.25 * 3 + 1e-6 * 20) / 1.0, rel=1e-4)
    nothing = _logits(torch.full((4,), 1e-12))
    nothing[:, 1] = -torch.inf  # no cortex probability anywhere: the head
    assert scan_sigma_s(nothing, log_var, head).item() == pytest.approx((1 + 3 + 20) / 3)


def test_scan_sigma_s_counts_cortex_given_up_and_not_the_field_of_view():
    """Damage that leaves a voxel's cortex probability at 0.4 drops it from the hard cortex mean, not
    from sigma_s; confident background added to the head (a longer neck, a skull left on) moves the
    head mean and not sigma_s."""
    logits = _logits(torch.tensor([0.9, 0.9, 0.4, 1e-4, 1e-4, 1e-4, 1e-4, 1e-4]))
    log_var = torch.log(torch.tensor([1.0, 9.0, 900.0, 1.0, 0.01, 0.01, 0.01, 0.01])).reshape(1, 1, 8, 1, 1)
    small, large = (torch.tensor([True] * n + [False] * (8 - n)).reshape(1, 1, 8, 1, 1) for n in (4, 8))
    assert scan_sigma_s_cortex(logits, log_var, small).item() == pytest.approx(2.0)  # (1 + 3) / 2: blind to voxel 2
    given_up = scan_sigma_s(logits, log_var, small).item()
    assert given_up == pytest.approx((0.9 * 1 + 0.9 * 3 + 0.4 * 30 + 1e-4) / (2.2 + 1e-4), rel=1e-4)
    assert scan_sigma_s(logits, log_var, large).item() == pytest.approx(given_up, rel=1e-3)
    assert scan_sigma_s_head(log_var, large).item() < 0.6 * scan_sigma_s_head(log_var, small).item()


def test_dice_of_overlaps_and_of_two_empty_masks():
    a = torch.tensor([True, True, False, False])
    b = torch.tensor([True, False, True, False])
    assert dice(a, b).item() == pytest.approx(0.5)
    assert dice(a, a).item() == pytest.approx(1.0)
    assert dice(torch.zeros(4, dtype=torch.bool), torch.zeros(4, dtype=torch.bool)).item() == 1.0
    assert math.isclose(dice(a, ~a).item(), 0.0)
