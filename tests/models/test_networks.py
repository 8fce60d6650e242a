import math
from dataclasses import replace

import pytest
import torch

from hetero_qc.models import MultiTaskNet, ReconstructionNet, UNetConfig, soft_clamp
from hetero_qc.models.networks import ScaleHead, local_gradient_energy, local_variance
from hetero_qc.models.unet import (
    FixedNorm3d,
    LayoutInstanceNorm3d,
    MixedNorm3d,
    decode,
    encode,
    estimate_norm_statistics,
)

TINY = UNetConfig(filters=(4, 8, 16), kernels=(3, 3, 3), strides=(1, 2, 2))


@pytest.mark.parametrize("shape", [(16, 16, 16), (8, 16, 24)])
@pytest.mark.parametrize("batch", [1, 2])
def test_reconstruction_shapes_and_residual(shape, batch):
    net = ReconstructionNet(TINY)
    x = torch.rand(batch, 1, *shape)
    out = net(x)
    assert out.mean.shape == out.log_var.shape == x.shape and out.seg_logits is None
    torch.nn.init.zeros_(net.net.output_block.conv.conv.weight)
    torch.nn.init.zeros_(net.net.output_block.conv.conv.bias)
    torch.testing.assert_close(net(x).mean, x)  # a zero residual returns the input


def test_multitask_shares_one_encoder_pass():
    net = MultiTaskNet(TINY)
    out = net(torch.rand(2, 1, 16, 16, 16))
    assert out.seg_logits.shape == (2, 2, 16, 16, 16) and out.seg_log_var.shape == (2, 1, 16, 16, 16)
    assert net.seg_decoder.input_block is None  # the second decoder has no encoder of its own
    encoder = {id(p) for p in net.net.input_block.parameters()}
    assert not encoder & {id(p) for p in net.seg_decoder.parameters()}


def test_encode_decode_equals_dynunet_forward():
    net = TINY.build(out_channels=2).eval()
    x = torch.rand(1, 1, 16, 16, 16)
    torch.testing.assert_close(decode(net, *encode(net, x)), net(x))


def test_log_variance_is_bounded():
    assert soft_clamp(torch.tensor([-1e4, 1e4]), -10, 2).tolist() == pytest.approx([-10, 2], abs=1e-3)
    assert soft_clamp(torch.tensor([-4.0]), -10, 2).item() == pytest.approx(-4.0, abs=0.01)


def test_input_must_divide_by_total_stride():
    with pytest.raises(ValueError, match="total stride 4"):
        ReconstructionNet(TINY)(torch.rand(1, 1, 18, 16, 16))


@pytest.mark.parametrize("kwargs, message", [
    ({"filters": (4, 8), "kernels": (3, 3, 3), "strides": (1, 2, 2)}, "one entry per level"),
    ({"filters": (4, 8), "kernels": (3, 3), "strides": (2, 2)}, "strides"),
    ({"filters": (4, 8), "kernels": (3, 4), "strides": (1, 2)}, "kernels odd"),
])
def test_bad_backbone_settings_raise_before_building(kwargs, message):
    with pytest.raises(ValueError, match=message):
        UNetConfig(**kwargs)


def test_bad_bounds_raise():
    with pytest.raises(ValueError, match="log_var_bounds"):
        ReconstructionNet(TINY, log_var_bounds=(2, -10))


def test_local_scale_heads_follow_the_input_scale():
    # Instance norm makes the U-Net's features blind to the input's scale; with local_scale the mean
    # scales with the input and log sigma^2 shifts by log c^2 (eps aside) when the heads ignore log s^2,
    # so sigma can report noise; the heads' log s^2 input then lets them depart from that.
    torch.manual_seed(0)
    net = ReconstructionNet(TINY, log_var_bounds=(-16, 11), local_scale=True).eval()  # bounds far away
    x = 0.5 + 0.3 * torch.randn(1, 1, 16, 16, 16)
    with torch.no_grad():
        sees_scale = net(4 * x).mean - 4 * net(x).mean
        net.head.mlp[0].weight[:, -1] = 0  # heads blind to log s^2
        small, large = net(x), net(4 * x)
        plain = ReconstructionNet(TINY, log_var_bounds=(-16, 11)).eval()
        plain_small, plain_large = plain(x), plain(4 * x)
    torch.testing.assert_close(large.mean, 4 * small.mean, rtol=1e-2, atol=5e-3)
    eps = ReconstructionNet.SCALE_EPS
    expected = torch.log((local_variance(4 * x) + eps) / (local_variance(x) + eps))  # log 16, eps aside
    torch.testing.assert_close(large.log_var - small.log_var, expected, rtol=0, atol=0.02)
    assert expected.mean().item() > 2.5
    assert abs((plain_large.log_var - plain_small.log_var).mean().item()) < 0.05  # the blindness it fixes
    assert sees_scale.abs().mean().item() > 0.05  # with log s^2 the heads see the absolute level


def test_local_variance_is_the_variance_over_each_clipped_neighbourhood():
    torch.manual_seed(1)
    x = torch.rand(2, 1, 6, 7, 8)
    got = local_variance(x, window=5)
    expected = torch.empty_like(x)
    for b in range(2):
        for i in range(6):
            for j in range(7):
                for k in range(8):
                    block = x[b, 0, max(i - 2, 0) : i + 3, max(j - 2, 0) : j + 3, max(k - 2, 0) : k + 3]
                    expected[b, 0, i, j, k] = block.var(unbiased=False)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)


def test_context_heads_pool_the_whole_image_weighted_by_intensity():
    # With context every voxel's output sees an intensity-weighted average over the image: a change
    # far away moves it, unless it lies where the weight (the input's intensity) is zero; without
    # context the 1x1x1 heads see their own voxel only.
    torch.manual_seed(0)
    features, statistics = torch.randn(1, 4, 8, 8, 8), torch.randn(1, 1, 8, 8, 8)
    weights = torch.ones(1, 1, 8, 8, 8)
    weights[..., :2] = 0  # air
    changed, in_air = features.clone(), features.clone()
    changed[..., 0, 0, 7] += 5  # far from voxel (7, 7, 0), where the weight is one
    in_air[..., 0, 0, 0] += 5
    with torch.no_grad():
        for head, moves in ((ScaleHead(4), False), (ScaleHead(4, context=True), True)):
            before = head(features, statistics, weights)[..., 7, 7, 0]
            far = head(changed, statistics, weights)[..., 7, 7, 0]
            assert ((far - before).abs().max().item() > 1e-3) == moves
            torch.testing.assert_close(head(in_air, statistics, weights)[..., 7, 7, 0], before, rtol=0, atol=1e-6)


def test_context_and_sharpness_need_the_scaled_heads():
    for option, value in (("context", True), ("sharpness", True), ("anchor_variance", False)):
        with pytest.raises(ValueError, match="need local_scale"):
            ReconstructionNet(TINY, **{option: value})
    net = MultiTaskNet(TINY, local_scale=True, context=True, sharpness=True)
    assert net(torch.rand(1, 1, 16, 16, 16)).log_var.shape == (1, 1, 16, 16, 16)


@pytest.mark.parametrize("anchor", [True, False])
def test_unanchored_variance_is_the_heads_own(anchor):
    # With the heads' outputs zeroed (f = g = 0), the anchored log-variance is the input's log s^2,
    # the unanchored one is 0 whatever the input.
    net = ReconstructionNet(TINY, local_scale=True, sharpness=True, anchor_variance=anchor)
    with torch.no_grad():
        net.head.mlp[2].weight.zero_()
        net.head.mlp[2].bias.zero_()
    x = torch.rand(1, 1, 16, 16, 16) * 0.5
    for image in (x, 0.1 * x):
        log_var = net(image).log_var
        expected = (local_variance(image) + net.SCALE_EPS).log() if anchor else torch.zeros_like(log_var)
        torch.testing.assert_close(log_var, soft_clamp(expected, *net.log_var_bounds), rtol=0, atol=1e-5)


def test_sharpness_rises_with_noise_and_falls_with_blur():
    # log(d^2 / s^2): white noise gives log 2 (d^2 = 2 var, s^2 = var); smoothing along one axis
    # lowers it along that axis most.
    torch.manual_seed(0)
    noise = torch.randn(1, 1, 24, 24, 24)
    ratio = (local_gradient_energy(noise) / local_variance(noise)).log()[..., 4:-4, 4:-4, 4:-4]
    assert ratio.mean(dim=(2, 3, 4)).flatten().tolist() == pytest.approx([math.log(2)] * 3, abs=0.1)
    blurred = (noise + noise.roll(1, dims=4) + noise.roll(-1, dims=4)) / 3  # smoothed along axis 2
    ratio_blurred = (local_gradient_energy(blurred) / local_variance(blurred)).log()[..., 4:-4, 4:-4, 4:-4]
    per_axis = ratio_blurred.mean(dim=(2, 3, 4)).flatten()
    assert per_axis[2] < per_axis[0] - 1 and per_axis[2] < per_axis[1] - 1


def test_channels_last_gives_the_same_loss_and_gradients():
    # channels_last_3d only changes the memory layout (HeteroModule's channels_last): the same maths.
    from hetero_qc.losses import heteroscedastic_nll, uncertainty_weighted_ce

    torch.manual_seed(0)
    reference = MultiTaskNet(UNetConfig(filters=(4, 8, 16), kernels=(3, 3, 3), strides=(1, 2, 2)),
                             local_scale=True, context=True, sharpness=True)
    layout = MultiTaskNet(UNetConfig(filters=(4, 8, 16), kernels=(3, 3, 3), strides=(1, 2, 2)),
                          local_scale=True, context=True, sharpness=True)
    layout.load_state_dict(reference.state_dict())
    layout.to(memory_format=torch.channels_last_3d)
    x = torch.rand(2, 1, 16, 24, 16)
    target, cgm = torch.rand_like(x), torch.rand_like(x) > 0.7
    losses = []
    for net, inputs in ((reference, x), (layout, x.contiguous(memory_format=torch.channels_last_3d))):
        out = net(inputs)
        loss = heteroscedastic_nll(out.mean, out.log_var, target, beta=0.5) + \
            uncertainty_weighted_ce(out.seg_logits, out.seg_log_var, cgm, beta=1.0)
        loss.backward()
        losses.append(loss)
    torch.testing.assert_close(losses[0], losses[1], rtol=1e-5, atol=1e-6)
    for (name, a), b in zip(reference.named_parameters(), layout.parameters()):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-4, atol=1e-6, msg=name)


@pytest.mark.parametrize("affine", [False, True])
def test_layout_instance_norm_is_instance_norm_and_keeps_channels_last(affine):
    torch.manual_seed(0)
    plain = torch.nn.InstanceNorm3d(6, affine=affine)
    layout = LayoutInstanceNorm3d(6, affine=affine)
    if affine:
        torch.nn.init.normal_(plain.weight)
        torch.nn.init.normal_(plain.bias)
        layout.load_state_dict(plain.state_dict())
    x = (3 * torch.randn(2, 6, 5, 6, 7) + 1).contiguous(memory_format=torch.channels_last_3d).requires_grad_()
    grad = torch.randn(2, 6, 5, 6, 7)
    expected, got = plain(x), layout(x)
    assert got.is_contiguous(memory_format=torch.channels_last_3d) and not expected.is_contiguous(
        memory_format=torch.channels_last_3d)  # the copy it saves
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(torch.autograd.grad(got, x, grad)[0], torch.autograd.grad(expected, x, grad)[0],
                               rtol=1e-4, atol=1e-5)


def test_unet_with_layout_norms_gives_the_loss_and_gradients_of_plain_instance_norms():
    torch.manual_seed(0)
    net = MultiTaskNet(TINY).to(memory_format=torch.channels_last_3d)
    norms = [m for m in net.modules() if isinstance(m, LayoutInstanceNorm3d)]
    assert len(norms) >= 10  # every norm of the encoder and both decoders
    x = torch.rand(2, 1, 16, 16, 16).contiguous(memory_format=torch.channels_last_3d)

    def loss_and_grads() -> tuple[torch.Tensor, list[torch.Tensor]]:
        out = net(x)
        loss = out.mean.square().mean() + out.log_var.mean() + out.seg_logits.square().mean()
        return loss.detach(), [g.detach() for g in torch.autograd.grad(loss, list(net.parameters()))]

    loss, grads = loss_and_grads()
    for norm in norms:  # the same modules, back to PyTorch's own instance norm
        norm.__class__ = torch.nn.InstanceNorm3d
    plain_loss, plain_grads = loss_and_grads()
    torch.testing.assert_close(loss, plain_loss, rtol=1e-5, atol=1e-6)
    for g, plain_g in zip(grads, plain_grads):
        torch.testing.assert_close(g, plain_g, rtol=1e-3, atol=1e-5)


def test_fixed_norm_keeps_a_voxels_features_to_its_receptive_field():
    # An instance norm's statistics are the window's: noise far from a voxel changes its features.
    # With fixed statistics only the voxels within the receptive field can.
    torch.manual_seed(0)
    nets = {norm: MultiTaskNet(replace(TINY, norm=norm)).eval() for norm in ("instance", "fixed")}
    x = torch.rand(1, 1, 16, 16, 64)
    far = x.clone()
    far[..., 48:] = 5 * torch.rand(1, 1, 16, 16, 16)  # bright noise in the last 16 slices only
    with torch.no_grad():
        for norm, net in nets.items():
            change = (net(far).seg_logits - net(x).seg_logits)[..., :8].abs().max()  # 40+ voxels away
            assert (change > 1e-3) if norm == "instance" else (change == 0), (norm, float(change))


def test_mixed_norm_is_the_instance_norm_at_share_one_and_the_fixed_norm_at_zero():
    torch.manual_seed(0)
    x = torch.randn(2, 4, 6, 6, 6) * 3 + 1
    instance = LayoutInstanceNorm3d(4, affine=True)
    fixed, mixed = FixedNorm3d(4), MixedNorm3d(4)
    for norm in (instance, fixed, mixed):
        norm.weight.data = torch.tensor([1.0, 2.0, 0.5, -1.0])
        norm.bias.data = torch.tensor([0.0, 0.1, -0.2, 0.3])
    for norm in (fixed, mixed):
        norm.running_mean.fill_(0.7)
        norm.running_var.fill_(4.0)
    torch.testing.assert_close(mixed(x), instance(x))  # share 1: the instance norm it replaces
    mixed.instance_share.data.fill_(0.0)
    torch.testing.assert_close(mixed(x), fixed(x))
    mixed.instance_share.data = torch.tensor([0.25, 1.5, -0.5, 0.5])  # beyond [0, 1]: clamped
    expected = torch.stack([0.75 * fixed(x)[:, 0] + 0.25 * instance(x)[:, 0], instance(x)[:, 1], fixed(x)[:, 2],
                            0.5 * (fixed(x)[:, 3] + instance(x)[:, 3])], dim=1)
    torch.testing.assert_close(mixed(x), expected)
    mixed(x).square().sum().backward()
    assert bool((mixed.instance_share.grad != 0).all())  # straight through: a share past a bound can come back
    channels_last = x.contiguous(memory_format=torch.channels_last_3d)
    torch.testing.assert_close(mixed(channels_last), expected)


def test_estimated_norm_statistics_are_the_average_of_the_instance_statistics():
    # One fixed norm after the input: its statistics are the per-sample means and variances, averaged.
    torch.manual_seed(0)
    net = MultiTaskNet(replace(TINY, norm="fixed"))
    first = next(m for m in net.modules() if isinstance(m, FixedNorm3d))
    inputs: list[torch.Tensor] = []
    first.register_forward_pre_hook(lambda module, args: inputs.append(args[0].detach()))
    images = [torch.rand(2, 1, 16, 16, 16), 3 * torch.rand(1, 1, 16, 16, 16)]
    assert estimate_norm_statistics(net, images) == 3
    seen = torch.cat(inputs)  # (3, C, D, H, W)
    torch.testing.assert_close(first.running_mean, seen.mean((2, 3, 4)).mean(0))
    torch.testing.assert_close(first.running_var, seen.var((2, 3, 4)).mean(0), rtol=1e-4, atol=1e-6)
    assert not first.estimating and net.training  # left in the mode it was in
    x = torch.rand(1, 1, 16, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(net(x).mean, net(x).mean)  # evaluation no longer moves them
    with pytest.raises(ValueError, match="no fixed norms"):
        estimate_norm_statistics(MultiTaskNet(TINY), images)
    with pytest.raises(ValueError, match="no images"):
        estimate_norm_statistics(net, [])


def test_instance_norm_regression_decoder_keeps_fixed_statistics_on_the_segmentation_path_only():
    torch.manual_seed(0)
    net = MultiTaskNet(replace(TINY, norm="fixed"), instance_norm_regression_decoder=True).eval()
    assert sum(isinstance(m, LayoutInstanceNorm3d) for m in net.net.upsamples.modules()) >= 2
    assert not any(isinstance(m, LayoutInstanceNorm3d) for m in [*net.net.input_block.modules(),
                                                                 *net.seg_decoder.modules()])
    x = torch.rand(1, 1, 16, 16, 64)
    far = x.clone()
    far[..., 48:] = 5 * torch.rand(1, 1, 16, 16, 16)
    with torch.no_grad():
        out, moved = net(x), net(far)
    assert torch.equal(moved.seg_logits[..., :8], out.seg_logits[..., :8])
    assert (moved.mean - out.mean)[..., :8].abs().max() > 1e-4  # the regression's norms see the whole window
    with pytest.raises(ValueError, match="need the backbone's norm 'fixed'"):
        MultiTaskNet(TINY, instance_norm_regression_decoder=True)
    deep = MultiTaskNet(replace(TINY, norm="fixed"), instance_norm_modules=["net.bottleneck"])
    assert all(isinstance(m, LayoutInstanceNorm3d) for m in deep.net.bottleneck.modules() if "Norm" in type(m).__name__)
    assert not any(isinstance(m, LayoutInstanceNorm3d) for m in [*deep.net.input_block.modules(),
                                                                 *deep.net.upsamples.modules(), *deep.seg_decoder.modules()])
    with pytest.raises(ValueError, match="no module 'net.neck'"):
        MultiTaskNet(replace(TINY, norm="fixed"), instance_norm_modules=["net.neck"])
