"""The 3D U-Net backbone (MONAI ``DynUNet``, nnU-Net defaults) with its settings checked up front."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from monai.networks.nets import DynUNet
from torch import Tensor, nn


class LayoutInstanceNorm3d(nn.InstanceNorm3d):
    """``InstanceNorm3d`` that keeps a ``channels_last_3d`` input in that layout.

    PyTorch's instance norm views its input as one sample of ``B * C`` channels, which needs a
    contiguous tensor: on ``channels_last_3d`` features it copies them to ``NCDHW`` and returns that
    layout, and the next convolution copies them back, forward and backward, at every one of the
    U-Net's norms (``aten::copy_``, 31% of a CPU training step in ``results/bench/train.json``). Per
    sample, an instance norm is a training-mode batch norm of a batch of one, whose CPU kernel
    normalises ``NDHWC`` in place of layout: the same statistics (biased variance, ``eps``) and the
    same gradients, without the copies. Other inputs, and running statistics, take the parent's path.
    """

    def forward(self, x: Tensor) -> Tensor:
        if self.track_running_stats or x.dim() != 5 or not x.is_contiguous(memory_format=torch.channels_last_3d):
            return super().forward(x)
        return instance_normalise(x, self.weight, self.bias, self.eps)


def instance_normalise(x: Tensor, weight: Tensor | None, bias: Tensor | None, eps: float) -> Tensor:
    """Each sample of ``x`` ``(B, C, D, H, W)`` normalised by its own per-channel statistics, as a
    training-mode batch norm of a batch of one (keeps a ``channels_last_3d`` layout; :class:`LayoutInstanceNorm3d`)."""
    samples = [F.batch_norm(sample, None, None, weight, bias, True, 0.0, eps) for sample in x.split(1)]
    return samples[0] if len(samples) == 1 else torch.cat(samples)


class FixedNorm3d(nn.BatchNorm3d):
    """Per-channel normalisation by fixed statistics, in training as in evaluation: a batch norm that
    never leaves evaluation mode, its statistics estimated once (:func:`estimate_norm_statistics`) and
    its affine weights trained.

    An instance norm takes its statistics from the whole window, so noise outside the brain moves
    every channel's mean and variance and, with them, every feature inside the brain. On the shipped
    model, the clean scan predicted with the statistics of its noisy copy's windows lost as much CGM
    Dice as the noisy copy itself under noise from 10 mm beyond the brain (TRAINING_LOG.md, "Noise outside the
    brain reaches the cortex through the instance norms"). With fixed statistics a voxel's features
    depend on its receptive field only.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, affine: bool = True) -> None:
        super().__init__(num_features, eps=eps, momentum=None, affine=affine, track_running_stats=True)
        self.estimating = False

    def forward(self, x: Tensor) -> Tensor:
        if not self.estimating:
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)
        out = []  # each sample by its own statistics, as the instance norm it replaces; their running mean kept
        for sample in x.split(1):
            self.num_batches_tracked += 1
            out.append(F.batch_norm(sample, self.running_mean, self.running_var, self.weight, self.bias, True,
                                    1.0 / float(self.num_batches_tracked), self.eps))
        return torch.cat(out)


class MixedNorm3d(FixedNorm3d):
    """Batch-instance normalisation (Nam & Kim, NeurIPS 2018): each channel normalised by a learnt share
    ``instance_share`` (rho, in [0, 1]) of its window's instance statistics and the rest by fixed ones
    (:class:`FixedNorm3d`'s, estimated the same way), then the affine weights.

    The instance norms let noise anywhere in the window reach the cortex's features, and fixed statistics
    stop that but lost the other site (``multitask_fixed_seg_norm``: NiChart CGM Dice 0.557 against 0.829;
    TRAINING_LOG.md): the per-window statistics were what absorbed another site's contrast. A share per
    channel lets training keep the window's statistics where contrast needs them and fix them where
    distant noise hurts. Started at rho = 1, the instance norm it replaces, so a run from an
    instance-norm checkpoint starts from that model exactly. rho is clamped to [0, 1] in the forward
    with a straight-through gradient, so a share pushed past a bound can come back.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, affine: bool = True) -> None:
        super().__init__(num_features, eps=eps, affine=affine)
        self.instance_share = nn.Parameter(torch.ones(num_features))

    def forward(self, x: Tensor) -> Tensor:
        if self.estimating:
            return super().forward(x)
        fixed = F.batch_norm(x, self.running_mean, self.running_var, None, None, False, 0.0, self.eps)
        instance = instance_normalise(x, None, None, self.eps)
        share = self.instance_share + (self.instance_share.clamp(0.0, 1.0) - self.instance_share).detach()
        shape = (1, -1) + (1,) * (x.dim() - 2)
        out = fixed + share.view(shape) * (instance - fixed)
        return out * self.weight.view(shape) + self.bias.view(shape) if self.affine else out


def _replace_norms(net: nn.Module, kind: type[nn.Module], make: Callable[[nn.Module], nn.Module]) -> nn.Module:
    """Replace every norm of exactly type ``kind`` in ``net`` by ``make(norm)``, with the old norm's
    parameters (buffers the old one lacks keep the new one's values); returns ``net``."""
    for parent in list(net.modules()):
        for name, child in parent.named_children():
            if type(child) is kind:
                norm = make(child)
                norm.load_state_dict(child.state_dict(), strict=False)
                setattr(parent, name, norm)
    return net


def keep_layout(net: nn.Module) -> nn.Module:
    """Replace every ``InstanceNorm3d`` in ``net`` by a :class:`LayoutInstanceNorm3d` with the same
    settings and parameters (the state dict is unchanged); returns ``net``."""
    return _replace_norms(net, nn.InstanceNorm3d, lambda n: LayoutInstanceNorm3d(
        n.num_features, n.eps, n.momentum, n.affine, n.track_running_stats))


def fix_norms(net: nn.Module, kind: type[FixedNorm3d] = FixedNorm3d) -> nn.Module:
    """Replace every instance norm in ``net`` by a ``kind`` (:class:`FixedNorm3d` or :class:`MixedNorm3d`)
    with the same affine weights and unit statistics (estimate them with :func:`estimate_norm_statistics`);
    returns ``net``."""
    return _replace_norms(net, LayoutInstanceNorm3d, lambda n: kind(n.num_features, n.eps, n.affine))


def unfix_norms(net: nn.Module) -> nn.Module:
    """Replace every :class:`FixedNorm3d` in ``net`` by an instance norm with the same affine weights
    (the inverse of :func:`fix_norms`); returns ``net``."""
    return _replace_norms(net, FixedNorm3d, lambda n: LayoutInstanceNorm3d(n.num_features, n.eps, affine=n.affine))


@torch.no_grad()
def estimate_norm_statistics(net: nn.Module, images: Iterable[Tensor]) -> int:
    """Set the statistics of every :class:`FixedNorm3d` in ``net`` to the average, over the samples of
    ``images`` (each ``(B, 1, D, H, W)``), of the per-sample statistics an instance norm would use in
    its place; returns the number of samples. ``net`` is left in the mode it was in.

    Raises:
        ValueError: if ``net`` has no fixed norms or ``images`` is empty.
    """
    norms = [m for m in net.modules() if isinstance(m, FixedNorm3d)]
    if not norms:
        raise ValueError("the network has no fixed norms (UNetConfig norm: fixed) to estimate")
    for norm in norms:
        norm.reset_running_stats()
        norm.estimating = True
    training = net.training
    samples = 0
    try:
        for image in images:
            net(image)
            samples += len(image)
    finally:
        net.train(training)
        for norm in norms:
            norm.estimating = False
    if not samples:
        raise ValueError("no images to estimate the norm statistics from")
    return samples


@dataclass(frozen=True)
class UNetConfig:
    """Backbone settings. ``filters[i]``, ``kernels[i]`` and ``strides[i]`` belong to level ``i``;
    level 0 keeps full resolution (stride 1), each further level halves it (stride 2).

    Raises:
        ValueError: if the lists differ in length, have fewer than 2 levels, or hold bad values.
    """

    filters: Sequence[int] = (16, 32, 64, 128, 256)
    kernels: Sequence[int] = (3, 3, 3, 3, 3)
    strides: Sequence[int] = (1, 2, 2, 2, 2)
    # a MONAI norm name; "none"; "fixed": instance norms whose statistics are fixed (FixedNorm3d); or "mixed":
    # a learnt share of instance and fixed statistics per channel (MixedNorm3d)
    norm: str = "instance"
    act: tuple = field(default=("leakyrelu", {"inplace": True, "negative_slope": 0.01}))

    def __post_init__(self) -> None:
        for name in ("filters", "kernels", "strides"):
            object.__setattr__(self, name, tuple(int(v) for v in getattr(self, name)))
        lengths = {len(self.filters), len(self.kernels), len(self.strides)}
        if len(lengths) != 1 or len(self.filters) < 2:
            raise ValueError(f"filters, kernels and strides need one entry per level (>= 2 levels), got "
                             f"{len(self.filters)}, {len(self.kernels)}, {len(self.strides)}")
        if self.strides[0] != 1 or any(s < 1 for s in self.strides):
            raise ValueError(f"strides must start with 1 and be positive, got {self.strides}")
        if any(f < 1 for f in self.filters) or any(k < 1 or k % 2 == 0 for k in self.kernels):
            raise ValueError(f"filters must be positive and kernels odd, got {self.filters}, {self.kernels}")

    @property
    def total_stride(self) -> int:
        """Factor by which the deepest level is smaller than the input; input sides must divide by it."""
        return math.prod(self.strides)

    def check_input(self, shape: Sequence[int]) -> None:
        """Raise ``ValueError`` unless every spatial side in ``shape`` divides by :attr:`total_stride`."""
        if any(s % self.total_stride for s in shape):
            raise ValueError(f"input sides {tuple(shape)} must divide by the network's total stride "
                             f"{self.total_stride}")

    def build(self, out_channels: int) -> DynUNet:
        """A ``DynUNet`` with one input channel and ``out_channels`` outputs (its instance norms keep a
        ``channels_last_3d`` layout: :class:`LayoutInstanceNorm3d`; ``norm: fixed`` makes them
        :class:`FixedNorm3d`, ``norm: mixed`` :class:`MixedNorm3d`)."""
        fixed = {"fixed": FixedNorm3d, "mixed": MixedNorm3d}.get(self.norm)
        net = keep_layout(DynUNet(
            spatial_dims=3, in_channels=1, out_channels=out_channels, kernel_size=list(self.kernels),
            strides=list(self.strides), upsample_kernel_size=list(self.strides[1:]),
            filters=list(self.filters),
            norm_name="instance" if fixed else "" if self.norm == "none" else self.norm,  # "": MONAI's no norm
            act_name=self.act, res_block=False,
        ))
        return fix_norms(net, fixed) if fixed else net


def encode(net: DynUNet, x: Tensor) -> tuple[Tensor, list[Tensor]]:
    """Run ``net``'s encoder: the bottleneck output and the skip features, shallowest first.

    Mirrors ``DynUNet``'s recursive skip layers, so that several decoders can share one encoder pass.
    """
    skips = []
    h = x
    for down in [net.input_block, *net.downsamples]:
        h = down(h)
        skips.append(h)
    return net.bottleneck(h), skips


def decode(net: DynUNet, h: Tensor, skips: list[Tensor]) -> Tensor:
    """Run ``net``'s decoder and output block on the encoder's results."""
    for up, skip in zip(net.upsamples, reversed(skips)):
        h = up(h, skip)
    return net.output_block(h)


def drop_encoder(net: DynUNet) -> nn.Module:
    """Keep only the decoder of ``net`` (its encoder is shared with another network)."""
    net.input_block = net.downsamples = net.bottleneck = net.skip_layers = None
    return net
