"""Whole-volume prediction with MONAI sliding windows, and safe checkpoint loading."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from hydra.utils import instantiate
from monai.inferers import sliding_window_inference
from torch import Tensor, nn

import hetero_qc
from hetero_qc.data import Preprocessing
from hetero_qc.models.networks import (
    MultiTaskNet,
    NetOutput,
    output_channels,
    split_channels,
)
from hetero_qc.precision import autocast_dtype

CHECKPOINT_FORMAT = 1


@torch.no_grad()
def predict(
    net: nn.Module,
    image: Tensor,
    roi_size: tuple[int, int, int] | None = None,
    overlap: float = 0.25,
    autocast: bool = True,
    mirror: bool = False,
) -> NetOutput:
    """Predict a whole volume ``(B, 1, D, H, W)`` window by window, blending with Gaussian weights.

    Args:
        roi_size: window size; ``None`` takes the whole volume as one window (the network is fully
            convolutional: about 2.8x faster than 64^3 windows overlapping by 25% on a 2 mm IXI
            volume).
        overlap: window overlap.
        autocast: bf16 on a CPU with native bf16, fp16 on CUDA (as in training; see
            :mod:`hetero_qc.precision`); outputs are float32.
        mirror: also predict each window mirrored left-right (axis 0 of the canonical RAS+ grid) and
            average the segmentation fields (logits and task log-variance) with the mirrored
            prediction's, mirrored back; the reconstruction and its log-variance stay the single
            pass's (:func:`mirrored_segmentation`). Twice the time.

    Returns:
        :class:`NetOutput` on the input grid (mean and log-variance, and for the multi-task network the
        segmentation logits and task log-variance). ``sigma = exp(log_var / 2)``.
    """
    net.eval()
    shape = image.shape[2:]
    roi = tuple(shape) if roi_size is None else tuple(min(r, s) for r, s in zip(roi_size, shape))
    dtype = autocast_dtype(image.device.type)
    multitask = isinstance(net, MultiTaskNet)
    if mirror and not multitask:
        raise ValueError("mirror averages the segmentation: a reconstruction-only network has none")

    def window(x: Tensor) -> Tensor:
        out = net(x)
        if mirror:  # averaged in float32, whatever the autocast dtype
            out = mirrored_segmentation(NetOutput(*(t.float() for t in out)),
                                        NetOutput(*(t.float().flip(2) for t in net(x.flip(2)))))
        return output_channels(out).float()

    with torch.autocast(image.device.type, dtype=dtype or torch.bfloat16, enabled=autocast and dtype is not None):
        stacked = sliding_window_inference(image, roi, sw_batch_size=1, overlap=overlap, mode="gaussian",
                                           predictor=window)
    return split_channels(stacked.float(), multitask)


def mirrored_segmentation(out: NetOutput, mirrored: NetOutput) -> NetOutput:
    """``out`` with its segmentation fields (logits, task log-variance) averaged with those of
    ``mirrored``, the prediction on the left-right mirrored input, mirrored back.

    The head is close to symmetric left-right, so the mirrored input is another plausible view of
    the same cortex and the average is a two-member ensemble (nnU-Net's mirroring, on one axis). On
    the shipped model it raised the clean CGM Dice of 8 IXI test scans from 0.874 to 0.878 and of 20
    NiChart scans of another site from 0.817 to 0.829 (``results/sites/multitask_any_margin_step2500_v5``
    against ``_v6``), and by about 0.005 under every artefact of the damage evaluation. The
    reconstruction channels are left as predicted: sigma_r, its calibration (Fig 3) and its damage
    figures are unchanged.
    """
    return out._replace(seg_logits=(out.seg_logits + mirrored.seg_logits) / 2,
                        seg_log_var=(out.seg_log_var + mirrored.seg_log_var) / 2)


def inference_window(net: nn.Module, roi_size: tuple[int, int, int]) -> tuple[int, int, int] | None:
    """The window a trained network predicts in: the multi-task network's validation window
    (``roi_size``, 80^3 in ``multitask_cpu``), else ``None`` (the whole volume as one window).

    The segmentation decoder of an earlier shipped model, trained on 64^3 patches, scored a CGM Dice
    of 0.69-0.75 in 64^3 windows overlapping by 25% against 0.49-0.62 on the whole volume as one
    window (4 validation scans, a throwaway script; Fig 8's clean test scans: 0.71 against 0.58), for
    about 2.8x the time; windows without overlap were as poor as the whole volume. The
    reconstruction network's sigma follows the error on whole volumes (Fig 3), so it keeps the
    cheaper path.
    """
    return tuple(roi_size) if isinstance(net, MultiTaskNet) else None


@dataclass(frozen=True)
class TrainedModel:
    """A trained network and what its checkpoint says about it, instantiated once, here."""

    net: nn.Module  # in eval mode
    path: Path
    global_step: int
    roi_size: tuple[int, int, int] | None  # the window it predicts in (inference_window)
    preprocessing: Preprocessing | None  # how its scans were prepared; None in checkpoints that lack it
    corruption: Callable  # its training corruption (a CorruptionPipeline)
    val_corruption: Callable  # its validation corruption
    mirror: bool = False  # whether its segmentation averages the left-right mirrored prediction (predict)

    @property
    def multitask(self) -> bool:
        """Whether it also segments the cortex (and gives sigma_s)."""
        return isinstance(self.net, MultiTaskNet)

    def predict(self, image: Tensor) -> NetOutput:
        """The network's output on ``image`` ``(B, 1, D, H, W)`` as every evaluation and the QC tool
        score it: in its window, mirrored where it segments (:func:`predict`)."""
        return predict(self.net, image, self.roi_size, mirror=self.mirror)


def load_model(path: str | Path, map_location: str | torch.device = "cpu") -> TrainedModel:
    """Load a trained model from a Lightning checkpoint without unpickling arbitrary objects.

    Raises:
        ValueError: if the file is not a hetero_qc checkpoint, is of another format version, or its
            weights do not fit the network it describes.
    """
    path = Path(path)
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # torch raises many types for a corrupt or foreign file
        raise ValueError(f"{path}: not a loadable checkpoint ({type(error).__name__}: {str(error)[:120]})") from None
    meta = checkpoint.get("hetero_qc") if isinstance(checkpoint, dict) else None
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: not a hetero_qc checkpoint")
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: checkpoint format {meta.get('format')} (hetero_qc {meta.get('version')}); "
                         f"this is hetero_qc {hetero_qc.__version__}, format {CHECKPOINT_FORMAT}")
    hparams = checkpoint["hyper_parameters"]
    net = instantiate(hparams["net"])
    state = {k.removeprefix("net."): v for k, v in checkpoint["state_dict"].items() if k.startswith("net.")}
    try:
        net.load_state_dict(state)
    except RuntimeError as error:
        raise ValueError(f"{path}: weights do not fit the network it describes ({str(error)[:160]})") from None
    preprocessing = hparams.get("preprocessing")
    return TrainedModel(net.eval(), path, int(checkpoint.get("global_step", 0)), inference_window(net, hparams["roi_size"]),
                        None if preprocessing is None else instantiate(preprocessing),
                        instantiate(hparams["corruption"]), instantiate(hparams["val_corruption"]),
                        mirror=isinstance(net, MultiTaskNet))


def sigma(log_var: Tensor) -> Tensor:
    """Standard deviation from a log-variance."""
    return torch.exp(0.5 * log_var)
