import math

import pytest
import torch

from hetero_qc.losses import consistency_kl, heteroscedastic_nll, uncertainty_weighted_ce


def test_nll_closed_form():
    mean, target = torch.zeros(1, 1, 2, 2, 2), torch.full((1, 1, 2, 2, 2), 2.0)
    log_var = torch.full_like(mean, math.log(4.0))
    # 1/2 * (4 / 4) + 1/2 * log 4
    assert heteroscedastic_nll(mean, log_var, target).item() == pytest.approx(0.5 + 0.5 * math.log(4.0))


def test_nll_matches_torch_gaussian_nll():
    g = torch.Generator().manual_seed(0)
    mean, target = torch.randn(2, 1, 4, 4, 4, generator=g), torch.randn(2, 1, 4, 4, 4, generator=g)
    log_var = torch.randn(2, 1, 4, 4, 4, generator=g)
    reference = torch.nn.GaussianNLLLoss(eps=0.0)(mean, target, log_var.exp())
    assert heteroscedastic_nll(mean, log_var, target).item() == pytest.approx(reference.item(), rel=1e-5)


def test_nll_is_minimised_at_sigma2_equal_residual2():
    residual = 0.3
    s = torch.linspace(-8, 2, 2001)
    losses = torch.stack([heteroscedastic_nll(torch.zeros(1, 1, 1, 1, 1), v.reshape(1, 1, 1, 1, 1),
                                              torch.full((1, 1, 1, 1, 1), residual)) for v in s])
    assert s[losses.argmin()].exp().item() == pytest.approx(residual**2, rel=0.02)


def test_nll_mask_and_beta():
    mean, log_var = torch.zeros(1, 1, 2, 1, 1), torch.zeros(1, 1, 2, 1, 1)
    target = torch.tensor([1.0, 100.0]).reshape(1, 1, 2, 1, 1)
    mask = torch.tensor([True, False]).reshape(1, 1, 2, 1, 1)
    assert heteroscedastic_nll(mean, log_var, target, mask).item() == pytest.approx(0.5)
    with pytest.raises(ValueError, match="beta"):
        heteroscedastic_nll(mean, log_var, target, beta=2)


def test_beta_weights_each_voxel_by_a_stop_gradient_sigma_to_the_2_beta():
    # Two voxels, s = log sigma^2 of 2 and -2, residual 1: beta = 0.5 weights them by sigma = e and 1/e.
    mean = torch.zeros(1, 1, 2, 1, 1, requires_grad=True)
    log_var = torch.tensor([2.0, -2.0]).reshape(1, 1, 2, 1, 1).requires_grad_()
    target = torch.ones(1, 1, 2, 1, 1)
    loss = heteroscedastic_nll(mean, log_var, target, beta=0.5)
    nll = 0.5 * torch.exp(-log_var.detach()) + 0.5 * log_var.detach()  # per voxel, residual 1
    weights = torch.exp(0.5 * log_var.detach())
    assert loss.item() == pytest.approx(float((weights * nll).mean()), rel=1e-6)
    loss.backward()
    # d/df of w/2 exp(-s) (y - f)^2 = -w exp(-s) (y - f); the weight itself gets no gradient
    expected_mean_grad = -(weights * torch.exp(-log_var.detach())) / 2
    torch.testing.assert_close(mean.grad, expected_mean_grad)
    expected_s_grad = weights * (-0.5 * torch.exp(-log_var.detach()) + 0.5) / 2
    torch.testing.assert_close(log_var.grad, expected_s_grad)


def test_consistency_is_the_kl_from_the_clean_views_segmentation_and_moves_only_the_corrupted_one():
    reference = torch.tensor([0.0, 2.0]).view(1, 2, 1, 1, 1).repeat(1, 1, 2, 1, 1)
    logits = torch.zeros(1, 2, 2, 1, 1, requires_grad=True)  # p = (1/2, 1/2) in both voxels
    q = torch.tensor([1.0, math.exp(2.0)]) / (1 + math.exp(2.0))
    expected = float((q * (q / 0.5).log()).sum())
    assert consistency_kl(logits, reference).item() == pytest.approx(expected, rel=1e-5)
    assert consistency_kl(reference, reference).item() == pytest.approx(0.0, abs=1e-7)
    mask = torch.tensor([True, False]).view(1, 1, 2, 1, 1)
    mixed = torch.stack([reference[:, :, 0], torch.zeros(1, 2, 1, 1)], dim=2)  # equal where masked out
    assert consistency_kl(mixed, reference, ~mask).item() == pytest.approx(expected, rel=1e-5)
    assert consistency_kl(mixed, reference, mask).item() == pytest.approx(0.0, abs=1e-7)
    reference.requires_grad_(True)
    consistency_kl(logits, reference).backward()
    assert reference.grad is None and logits.grad.abs().sum() > 0
    # the gradient pulls the corrupted view's probabilities towards the clean view's: d/dz = p - q
    torch.testing.assert_close(logits.grad[0, :, 0, 0, 0], (torch.tensor([0.5, 0.5]) - q) / 2)


def test_weighted_ce_closed_form():
    logits = torch.zeros(1, 2, 1, 1, 1)  # CE = log 2
    target = torch.ones(1, 1, 1, 1, 1, dtype=torch.long)
    s = torch.full((1, 1, 1, 1, 1), 1.0)
    expected = math.exp(-1.0) * math.log(2) + 0.5
    assert uncertainty_weighted_ce(logits, s, target).item() == pytest.approx(expected)
    assert uncertainty_weighted_ce(logits, torch.zeros_like(s), target).item() == pytest.approx(math.log(2))


def test_decoupled_variance_gets_the_plain_nll_gradient_and_the_mean_keeps_beta_nlls():
    mean = torch.tensor([0.2, -0.1]).reshape(1, 1, 2, 1, 1)
    log_var = torch.tensor([2.0, -2.0]).reshape(1, 1, 2, 1, 1)
    target = torch.ones(1, 1, 2, 1, 1)
    grads = {}
    for name, kwargs in (("beta", {"beta": 0.5}), ("plain", {"beta": 0.0}), ("decoupled", {"beta": 0.5, "decoupled": True})):
        m, s = mean.clone().requires_grad_(), log_var.clone().requires_grad_()
        heteroscedastic_nll(m, s, target, **kwargs).backward()
        grads[name] = (m.grad, s.grad)
    torch.testing.assert_close(grads["decoupled"][0], grads["beta"][0])  # the mean: beta-NLL's
    torch.testing.assert_close(grads["decoupled"][1], grads["plain"][1])  # the variance: Eq. 1's
    assert not torch.allclose(grads["beta"][1], grads["plain"][1])  # which beta-NLL scales by sigma


def test_weighted_ce_beta_one_keeps_the_plain_ce_gradient_and_the_optimum():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(1, 2, 4, 4, 4, generator=g, requires_grad=True)
    target = torch.randint(0, 2, (1, 1, 4, 4, 4), generator=g)
    log_var = torch.full((1, 1, 4, 4, 4), 3.0)  # a large sigma_s: Eq. 2 scales CE by exp(-3)
    uncertainty_weighted_ce(logits, log_var, target, beta=1.0).backward()
    ours = logits.grad.clone()
    logits.grad = None
    torch.nn.functional.cross_entropy(logits, target[:, 0]).backward()
    torch.testing.assert_close(ours, logits.grad)
    # d/ds vanishes where exp(s) = 2 CE, with or without beta
    ce = torch.nn.functional.cross_entropy(logits.detach(), target[:, 0], reduction="none").unsqueeze(1)
    s = torch.log(2 * ce).requires_grad_(True)
    uncertainty_weighted_ce(logits.detach(), s, target, beta=1.0).backward()
    assert s.grad.abs().max().item() < 1e-6
    with pytest.raises(ValueError, match="beta"):
        uncertainty_weighted_ce(logits, log_var, target, beta=-1)


def test_worst_voxel_error_flags_a_network_that_gives_up():
    from hetero_qc.metrics import worst_voxel_errors

    g = torch.Generator().manual_seed(0)
    clean = torch.rand(1, 1, 8, 8, 8, generator=g)
    corrupted = clean + 0.2 * torch.randn(clean.shape, generator=g)
    head = torch.ones_like(clean, dtype=torch.bool)
    healthy = clean + 0.05 * torch.randn(clean.shape, generator=g)
    gave_up = healthy.clone()
    gave_up[0, 0, 4, 4, 4] = 84.0  # the measured pathology: an error of 84 under sigma ~ 9
    recon, worst_input = worst_voxel_errors(healthy, corrupted, clean, head)
    assert recon < worst_input
    recon, worst_input = worst_voxel_errors(gave_up, corrupted, clean, head)
    assert recon > 10 * worst_input
