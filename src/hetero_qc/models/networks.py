"""Heteroscedastic reconstruction and multi-task networks (plain torch, no Lightning).

Shaw et al. 2020, Fig 2 and Fig 6: a 3D U-Net regresses the clean image through a residual
connection from its input, with a second head for the per-voxel log-variance ``s = log sigma^2``;
the multi-task variant shares the encoder with a second decoder that segments cortical grey matter
and predicts its own per-voxel log-variance.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hetero_qc.models.unet import UNetConfig, decode, drop_encoder, encode, unfix_norms


class NetOutput(NamedTuple):
    """Network outputs, each ``(B, C, D, H, W)``; the segmentation fields are ``None`` without that task."""

    mean: Tensor  # (B, 1, ...) reconstructed image
    log_var: Tensor  # (B, 1, ...) s = log sigma^2 of the reconstruction
    seg_logits: Tensor | None = None  # (B, 2, ...) background / CGM
    seg_log_var: Tensor | None = None  # (B, 1, ...) task log-variance


def soft_clamp(x: Tensor, low: float, high: float) -> Tensor:
    """Smoothly bound ``x`` to ``(low, high)``: about the identity well inside, flat outside.

    ``low + softplus(x - low) - softplus(x - high)``; keeps ``exp(+-s)`` finite in fp16 and stops the
    network "giving up" on voxels with an unbounded variance.
    """
    return low + F.softplus(x - low) - F.softplus(x - high)


def box_mean(x: Tensor, window: int = 5) -> Tensor:
    """Mean of ``x`` ``(B, C, D, H, W)`` over a ``window``-cubed neighbourhood of each voxel (at the
    borders, over the voxels inside).

    The box mean is separable: three 1D ``avg_pool3d`` passes give what one ``window``-cubed pass does
    (to float32 round-off) in a third of the time on the CPU, where the 5^3 pooling had taken 17% of
    the multi-task network's windowed inference of a 2 mm scan.
    """
    for axis in range(3):
        kernel, padding = [1, 1, 1], [0, 0, 0]
        kernel[axis], padding[axis] = window, window // 2
        x = F.avg_pool3d(x, tuple(kernel), stride=1, padding=tuple(padding), count_include_pad=False)
    return x


def local_variance(x: Tensor, window: int = 5) -> Tensor:
    """Variance of ``x`` ``(B, 1, D, H, W)`` in a ``window``-cubed neighbourhood of each voxel, in float32."""
    x = x.float()
    mean = box_mean(x, window)
    return (box_mean(x * x, window) - mean * mean).clamp_min(0)


def local_gradient_energy(x: Tensor, window: int = 5) -> Tensor:
    """Mean squared difference of neighbouring voxels along each axis, over a ``window``-cubed
    neighbourhood: ``(B, 1, D, H, W)`` -> ``(B, 3, D, H, W)``, float32 (the last slice along an axis
    repeats the one before).

    Against the local variance it measures sharpness along each axis: white noise gives
    ``log(d^2 / s^2) = log 2``, a clean 2 mm IXI scan about -0.2, and rigid motion (5 degrees, 5 mm),
    which replaces the outer k-space lines along the phase-encode axis with those of moved copies,
    about -0.8 along that axis (``ReconstructionNet``'s ``sharpness``).
    """
    x = x.float()
    squared = []
    for axis in range(3):
        d = x.diff(dim=2 + axis) ** 2
        squared.append(torch.cat([d, d.narrow(2 + axis, d.shape[2 + axis] - 1, 1)], dim=2 + axis))
    return box_mean(torch.cat(squared, dim=1), window)


def check_bounds(bounds: tuple[float, float], name: str) -> tuple[float, float]:
    low, high = (float(b) for b in bounds)
    if not low < high or high > 11 or low < -16:  # exp(16) is near fp16's limit
        raise ValueError(f"{name} must be (low, high) with -16 <= low < high <= 11, got {bounds}")
    return low, high


class ScaleHead(nn.Module):
    """Per-voxel heads ``(f, g)`` from the decoder's features and the unnormalised ``log s^2``:
    a 1x1x1 two-layer perceptron over ``[features, log s^2]``, ``(B, C + 1, ...) -> (B, 2, ...)``.

    The decoder's features are instance-normalised, hence scale-free: alone they cannot tell a clean
    image's faint background noise from a noisy image's strong one, and the network had learned to
    remove the Rayleigh bias of noisy backgrounds (about 1.9 local standard deviations) from clean
    inputs too. ``log s^2`` tells the heads the absolute level.

    With ``context`` the hidden layer also gets a linear map of the same inputs averaged over the
    whole input, weighted by the input's intensity (so that air counts little, whichever share of a
    patch or volume it fills): k-space artefacts such as motion corrupt the whole acquisition, and
    their evidence adds up over the image while any one voxel's neighbourhood holds little of it.
    ``statistics`` is the number of unnormalised local statistics beside the features (``log s^2``,
    and with ``ReconstructionNet``'s ``sharpness`` three more).
    """

    def __init__(self, channels: int, context: bool = False, statistics: int = 1) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Conv3d(channels + statistics, channels, 1), nn.LeakyReLU(0.01, inplace=True),
                                 nn.Conv3d(channels, 2, 1))
        self.context = nn.Linear(channels + statistics, channels, bias=False) if context else None

    def forward(self, features: Tensor, statistics: Tensor, weights: Tensor) -> Tensor:
        """``features`` ``(B, C, ...)``, ``statistics`` ``(B, S, ...)`` and the pooling ``weights`` ``(B, 1, ...)``;
        returns ``(f, g)`` ``(B, 2, ...)``."""
        with torch.autocast(features.device.type, enabled=False):  # float32 heads (ReconstructionNet)
            inputs = torch.cat([features.float(), statistics.float()], dim=1)
            hidden = self.mlp[0](inputs)
            if self.context is not None:
                weights = weights.float()
                pooled = (inputs * weights).sum((2, 3, 4)) / weights.sum((2, 3, 4)).clamp_min(1e-6)  # (B, C + S)
                hidden = hidden + self.context(pooled)[:, :, None, None, None]
            return self.mlp[2](self.mlp[1](hidden))


class ReconstructionNet(nn.Module):
    """Residual heteroscedastic U-Net: ``mean = x + f(x)``, ``log_var = soft_clamp(g(x))``.

    With ``local_scale`` the two heads speak in units of the input's local scale
    ``s^2 = var_5(x) + eps`` (variance over 5^3 voxels): ``mean = x + s f`` and
    ``log_var = soft_clamp(g + log s^2)``, where ``(f, g)`` come from the decoder's features and
    ``log s^2`` (:class:`ScaleHead`). Instance norm makes the features blind to the absolute
    intensity scale, hence to the noise level that sigma must report; ``s`` restores it from the raw
    input, while the normalised U-Net predicts scale-free quantities. The heads run in float32: under
    bf16 autocast the bounded log-variance came out in steps of 0.06 (3% steps in sigma).

    Args:
        unet: backbone settings.
        log_var_bounds: bounds of ``s = log sigma^2`` (intensities in [0, 1] make ``(-10, 2)`` ample).
        local_scale: express the heads in units of the input's local scale (above).
        context: the heads also see their inputs averaged over the whole image (:class:`ScaleHead`).
        sharpness: the heads also see ``log(d_a^2 / s^2)`` for each axis ``a``, the local energy of
            neighbour differences against the local variance (:func:`local_gradient_energy`), which
            rises with noise and falls with blur. The instance-normalised features and ``log s^2``
            show blur only as a lower scale, that is as a cleaner image.
        anchor_variance: with ``local_scale``, ``log_var = g + log s^2`` (True) or ``log_var = g``
            (False; ``log s^2`` is still an input of the heads). Anchored, sigma is an edge map: in
            the long recipe at step 550, sigma / s was 0.56 on clean and 0.57-0.58 on moderately
            moved validation scans, so sigma fell with the blur (by 9-13%) while the error rose 2.5-3x.

    ``context`` and ``sharpness`` need ``local_scale``; both are off in the CPU recipes (400-step
    probes in REPRODUCTION.md, Fig 4: together they made sigma rise on motion when the training mix
    held no noise, and did not when it did).

    Raises:
        ValueError: for bad backbone settings or bounds; at call time, for input sides that do not
            divide by the total stride.
    """

    SCALE_EPS = 1e-4  # floor of s^2: noise-free background keeps a small, finite scale

    def __init__(self, unet: UNetConfig, log_var_bounds: tuple[float, float] = (-10.0, 2.0),
                 local_scale: bool = False, context: bool = False, sharpness: bool = False,
                 anchor_variance: bool = True) -> None:
        super().__init__()
        if (context or sharpness or not anchor_variance) and not local_scale:
            raise ValueError("context, sharpness and anchor_variance=False need local_scale: "
                             "they are settings of the scaled heads")
        self.anchor_variance = anchor_variance
        self.unet = unet
        self.log_var_bounds = check_bounds(log_var_bounds, "log_var_bounds")
        self.local_scale = local_scale
        # With local_scale the U-Net's output block gives the head's features (as many as level 0 has).
        self.net = unet.build(out_channels=unet.filters[0] if local_scale else 2)
        self.sharpness = sharpness
        self.head = ScaleHead(unet.filters[0], context, 4 if sharpness else 1) if local_scale else None

    def _regression(self, x: Tensor, raw: Tensor) -> tuple[Tensor, Tensor]:
        """``raw``: the regression decoder's output ``(B, C, ...)``; returns mean and log-variance."""
        if self.head is None:
            residual, log_var = raw[:, :1].float(), raw[:, 1:2].float()
        else:
            log_scale2 = (local_variance(x) + self.SCALE_EPS).log()
            statistics = log_scale2
            if self.sharpness:
                log_energy = (local_gradient_energy(x) + self.SCALE_EPS).log()
                statistics = torch.cat([log_scale2, log_energy - log_scale2], dim=1)
            f, g = self.head(raw, statistics, x.clamp(0, 1)).unbind(1)
            residual = f[:, None] * log_scale2.mul(0.5).exp()
            log_var = g[:, None] + log_scale2 if self.anchor_variance else g[:, None]
        return x.float() + residual, soft_clamp(log_var, *self.log_var_bounds)

    def forward(self, x: Tensor) -> NetOutput:
        """``x``: ``(B, 1, D, H, W)``."""
        self.unet.check_input(x.shape[2:])
        return NetOutput(*self._regression(x, self.net(x)))


class MultiTaskNet(ReconstructionNet):
    """One shared encoder, two decoders: heteroscedastic regression, and CGM segmentation with a
    per-voxel task log-variance (Kendall et al. 2018).

    ``instance_norm_modules``: with fixed norms (``unet.norm: fixed``), the modules (names under this
    net, e.g. ``net.bottleneck``) whose norms stay instance norms; ``instance_norm_regression_decoder``
    names the regression decoder (``net.upsamples``). Fixed statistics keep noise away from the cortex
    out of the segmentation's features, but the reconstruction relied on the instance norms to take out
    the noise level (``multitask_fixed_norm``: 2 dB worse, sigma_r lost its ranking of the damage), and
    the segmentation on them to meet another site's brains: instance norms in the bottleneck alone, with
    no training, lifted ``multitask_fixed_seg_norm_contrast``'s NiChart CGM Dice from 0.783 to 0.811 and
    left the cost of noise 10 mm beyond the brain at 0.007 (TRAINING_LOG.md, stop 46).

    Raises:
        ValueError: for instance-norm modules without fixed norms, or a name that is not a module here.
    """

    def __init__(
        self,
        unet: UNetConfig,
        log_var_bounds: tuple[float, float] = (-10.0, 2.0),
        seg_log_var_bounds: tuple[float, float] = (-6.0, 6.0),
        local_scale: bool = False,
        context: bool = False,
        sharpness: bool = False,
        anchor_variance: bool = True,
        instance_norm_regression_decoder: bool = False,
        instance_norm_modules: Sequence[str] = (),
    ) -> None:
        names = [*(["net.upsamples"] if instance_norm_regression_decoder else []), *instance_norm_modules]
        if names and unet.norm != "fixed":
            raise ValueError(f"instance norms in {names} need the backbone's norm 'fixed', got '{unet.norm}'")
        super().__init__(unet, log_var_bounds, local_scale, context, sharpness, anchor_variance)
        self.seg_log_var_bounds = check_bounds(seg_log_var_bounds, "seg_log_var_bounds")
        self.seg_decoder = drop_encoder(unet.build(out_channels=3))
        for name in names:
            try:
                module = self.get_submodule(name)
            except AttributeError:
                raise ValueError(f"instance_norm_modules: no module '{name}' in the multi-task net") from None
            unfix_norms(module)

    def forward(self, x: Tensor) -> NetOutput:
        self.unet.check_input(x.shape[2:])
        h, skips = encode(self.net, x)
        mean, log_var = self._regression(x, decode(self.net, h, skips))
        seg = decode(self.seg_decoder, h, skips)
        return NetOutput(mean, log_var, seg[:, :2], soft_clamp(seg[:, 2:3].float(), *self.seg_log_var_bounds))


def output_channels(out: NetOutput) -> Tensor:
    """Concatenate the present fields along channels (for sliding-window blending)."""
    return torch.cat([t for t in out if t is not None], dim=1)


def split_channels(stacked: Tensor, multitask: bool) -> NetOutput:
    """Inverse of :func:`output_channels`."""
    if multitask:
        return NetOutput(stacked[:, :1], stacked[:, 1:2], stacked[:, 2:4], stacked[:, 4:5])
    return NetOutput(stacked[:, :1], stacked[:, 1:2])
