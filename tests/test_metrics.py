"""The scan scores and Dice: one definition shared by training logs, experiments and the QC tool."""

import math

import pytest
import torch

from hetero_qc.metrics import dice, predicted_cgm, scan_sigma_r, scan_sigma_s, scan_sigma_s_cortex, scan_sigma_s_head, scan_sigma_s_soft


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


def test_scan_sigma_s_grows_the_cortex_by_millimetres_within_the_head():
    logits = torch.zeros(1, 2, 6, 1, 1)
    logits[0, 1, :2] = 1.0  # predicted cortex: voxels 0 and 1
    log_var = torch.log(torch.tensor([1.0, 1.0, 16.0, 100.0, 100.0, 100.0])).reshape(1, 1, 6, 1, 1)
    head = torch.tensor([True] * 5 + [False]).reshape(1, 1, 6, 1, 1)
    # 2 mm voxels, 4 mm: the band reaches voxel 3; voxel 4 and the voxel outside the head stay out
    assert scan_sigma_s(logits, log_var, head, (2.0, 1.0, 1.0)).item() == pytest.approx((1 + 1 + 4 + 10) / 4)
    assert scan_sigma_s(logits, log_var, head, (2.0, 1.0, 1.0), margin_mm=0.0).item() == pytest.approx(1.0)
    logits[0, 1] = -1.0  # no cortex predicted: the head
    assert scan_sigma_s(logits, log_var, head, (2.0, 1.0, 1.0)).item() == pytest.approx((1 + 1 + 4 + 10 + 10) / 5)


def test_scan_sigma_s_counts_cortex_given_up_and_not_the_field_of_view():
    """Damage that shrinks the predicted cortex to its confident voxels leaves the cortex mean where it
    was, but the band still holds the voxels given up; more confident background in the head (a longer
    neck, a skull left on) moves the head mean and not the band."""
    logits = torch.full((1, 2, 8, 1, 1), -1.0)
    logits[0, 0] = 0.0
    logits[0, 1, :2] = 1.0  # predicted cortex: voxels 0 and 1 (voxel 2 was given up)
    log_var = torch.log(torch.tensor([1.0, 9.0, 900.0, 1.0, 0.01, 0.01, 0.01, 0.01])).reshape(1, 1, 8, 1, 1)
    small, large = (torch.tensor([True] * n + [False] * (8 - n)).reshape(1, 1, 8, 1, 1) for n in (4, 8))
    spacing = (2.0, 1.0, 1.0)  # 4 mm: two voxels along the line
    assert scan_sigma_s_cortex(logits, log_var, small).item() == pytest.approx(2.0)  # (1 + 3) / 2: blind to voxel 2
    assert scan_sigma_s(logits, log_var, small, spacing).item() == pytest.approx((1 + 3 + 30 + 1) / 4)
    assert scan_sigma_s(logits, log_var, large, spacing).item() == pytest.approx(scan_sigma_s(logits, log_var, small, spacing).item())
    assert scan_sigma_s_head(log_var, large).item() < 0.6 * scan_sigma_s_head(log_var, small).item()


def test_scan_sigma_s_soft_weights_the_head_by_the_cortex_probability():
    p = torch.tensor([0.75, 0.25, 0.0, 0.5])  # cortex probability per voxel; the last is outside the head
    logits = torch.stack([torch.zeros(4), torch.log(p / (1 - p))]).reshape(1, 2, 4, 1, 1)
    log_var = torch.log(torch.tensor([1.0, 9.0, 400.0, 100.0])).reshape(1, 1, 4, 1, 1)
    head = torch.tensor([True, True, True, False]).reshape(1, 1, 4, 1, 1)
    assert scan_sigma_s_soft(logits, log_var, head).item() == pytest.approx((0.75 * 1 + 0.25 * 3) / 1.0, rel=1e-5)


def test_dice_of_overlaps_and_of_two_empty_masks():
    a = torch.tensor([True, True, False, False])
    b = torch.tensor([True, False, True, False])
    assert dice(a, b).item() == pytest.approx(0.5)
    assert dice(a, a).item() == pytest.approx(1.0)
    assert dice(torch.zeros(4, dtype=torch.bool), torch.zeros(4, dtype=torch.bool)).item() == 1.0
    assert math.isclose(dice(a, ~a).item(), 0.0)
