"""Preprocessing through TorchIO, the same for training, evaluation and QC.

Canonical (RAS+) orientation, resampling to the configured spacing, crop/pad to a shape the network
can take, optionally N4 bias-field correction, robust intensity scaling (percentiles to [0, 1]), a
head mask, a brain mask and the cortical grey-matter (CGM) target.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from typing import NamedTuple

import numpy as np
import SimpleITK as sitk
import torch
import torchio as tio
from scipy import ndimage
from torch import Tensor
from torch.nn import functional as F

from hetero_qc.data.nifti import load_volume
from hetero_qc.data.sources import ScanRecord, mni_images

CGM_LABELS = (100, 207)  # DLMUSE cortical grey-matter label range, both ends included
GM_PROBABILITY = 0.5


class Scan(NamedTuple):
    """A preprocessed scan; every volume is ``(1, D, H, W)`` on the preprocessed grid."""

    subject: str
    image: Tensor  # float32 in [0, 1] (above 1 where the tissue anchor scaled it, Preprocessing.tissue_level)
    head: Tensor  # bool
    brain: Tensor  # bool; all False without labels
    cgm: Tensor  # bool; all False without labels
    has_labels: bool
    spacing: tuple[float, float, float]
    affine: np.ndarray  # (4, 4) voxel to RAS mm of the preprocessed grid


@dataclass(frozen=True)
class Preprocessing:
    """Preprocessing choices (defaults for the embedded 2 mm IXI data).

    Args:
        spacing: target voxel size in mm.
        multiple: every side is padded to a multiple of this (the network's total stride).
        shape: fixed ``(D, H, W)`` to crop/pad to instead (after resampling); must divide by ``multiple``.
        percentiles: intensity percentiles mapped to 0 and 1 (values beyond are clipped).
        head_threshold: intensity (after scaling) above which a voxel may be head.
        head_median: if set, the scale is then corrected so that the head's median intensity is this
            (and the head mask found again): one bright local artefact (a box of noise, a spike) moves
            the upper percentile of the whole volume, and with it every other voxel's intensity, but
            hardly the head's median. 0.5 keeps clean scans as they were: on 60 embedded IXI scans the
            head's median was 0.504 +- 0.015 (mean +- sd) of the 99.5th percentile. None: percentiles only.
            But noise that fills the background (noise outside the brain) or strong ghosts join the head
            mask and move its median too (the brain x0.48 and x1.6: ``experiments/normalisation.py``).
        tissue_level: if set (instead of ``head_median``), the scale is then corrected so that the median
            of the smooth tissue (:func:`smooth_tissue`, white matter on a T1 scan) is this, and the head
            mask found again. Noise and ghosts are never smooth, so neither can move it
            (``experiments/normalisation.py``, ``results/normalisation/``).
        smooth_fraction: with ``tissue_level``, the fraction of the head's bright voxels, the smoothest,
            that is the smooth tissue. On the 2 mm IXI scans a twentieth is about a quarter of the white
            matter; a tenth let noise outside the brain, which fills the head mask, into the selection.
        n4: correct the scan's own bias field with N4 (:func:`n4_correct`) on the resampled grid, before
            the intensity scaling. The IXI scans are not bias-corrected: their own smooth white-matter
            field (sd 0.14 of the log intensity) is as large as the damage evaluation's moderate
            simulated field (0.13), so a network trained towards such targets cannot tell a simulated
            field from the scan (``experiments/natural_bias.py``); after N4 the scans' own field is
            0.02-0.04.

    Raises:
        ValueError: for a non-positive spacing or multiple, a shape not divisible by ``multiple``,
            or percentiles outside [0, 100].
    """

    spacing: float = 2.0
    multiple: int = 16
    shape: tuple[int, int, int] | None = None
    percentiles: tuple[float, float] = (0.5, 99.5)
    head_threshold: float = 0.1
    head_median: float | None = None
    tissue_level: float | None = None
    smooth_fraction: float = 0.05
    n4: bool = False

    def __post_init__(self) -> None:
        if not self.spacing > 0:
            raise ValueError(f"spacing must be positive (mm), got {self.spacing}")
        if not (isinstance(self.multiple, int) and self.multiple >= 1):
            raise ValueError(f"multiple must be a positive integer, got {self.multiple!r}")
        if self.shape is not None:
            object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))
            if len(self.shape) != 3 or any(s % self.multiple for s in self.shape):
                raise ValueError(f"shape must be 3 sides divisible by multiple={self.multiple}, got {self.shape}")
        low, high = self.percentiles
        if not 0 <= low < high <= 100:
            raise ValueError(f"percentiles must satisfy 0 <= low < high <= 100, got {self.percentiles}")
        object.__setattr__(self, "percentiles", (float(low), float(high)))
        if self.head_median is not None and not 0 < self.head_median < 1:
            raise ValueError(f"head_median must be in (0, 1), got {self.head_median}")
        if self.tissue_level is not None and not 0 < self.tissue_level < 1:
            raise ValueError(f"tissue_level must be in (0, 1), got {self.tissue_level}")
        if not 0 < self.smooth_fraction <= 1:
            raise ValueError(f"smooth_fraction must be in (0, 1], got {self.smooth_fraction}")
        if self.head_median is not None and self.tissue_level is not None:
            raise ValueError("set head_median or tissue_level, not both: each sets the scale")
        if not isinstance(self.n4, bool):
            raise ValueError(f"n4 must be true or false, got {self.n4!r}")

    def transform(self) -> tio.Compose:
        """The TorchIO geometry pipeline; the intensities are scaled afterwards (:func:`scale_intensity`)."""
        size = (tio.CropOrPad(self.shape) if self.shape is not None
                else tio.EnsureShapeMultiple(self.multiple, method="pad"))
        return tio.Compose([tio.ToCanonical(), tio.Resample(self.spacing), size])

    def key(self) -> str:
        """A short hash of these settings, for caches (``n4`` and ``tissue_level`` count only when set,
        ``n4`` with its own settings, ``smooth_fraction`` only with ``tissue_level``, so that the caches
        of the settings before them stay valid)."""
        settings = asdict(self)
        if not self.n4:
            del settings["n4"]
        if self.tissue_level is None:
            del settings["tissue_level"], settings["smooth_fraction"]
        else:
            settings["clip_above"] = False  # scale_intensity's rules for tissue_level (35adb15, d133fd5)
            settings["negatives"] = "zero"
        if self.n4:
            settings["n4_shrink"] = N4_SHRINK
        return hashlib.sha1(repr(sorted(settings.items())).encode()).hexdigest()[:12]


N4_SHRINK = 4  # N4 fits the field on a 4x shrunk copy: about 1 s per 2 mm scan against 3-6 s at 2x,
# which left the same residual field on 3 IXI scans (white-matter log field sd 0.023-0.041 against
# 0.016-0.036; a throwaway timing with experiments/natural_bias.py's measure) and 1-3 min unshrunk


def n4_correct(image: Tensor) -> Tensor:
    """``image`` ``(1, D, H, W)`` divided by its N4 bias field (SimpleITK ``N4BiasFieldCorrection``,
    fitted within an Otsu mask of the head on a :data:`N4_SHRINK`-times shrunk copy, the field then
    evaluated on the full grid), as floating point. TorchIO has no N4 of its own; SimpleITK is its
    dependency.

    Raises:
        ValueError: if the head mask is empty on the shrunk grid, or the fitted field is not finite.
    """
    image = image if image.is_floating_point() else image.float()
    volume = sitk.GetImageFromArray(image[0].clamp_min(0).numpy().astype(np.float32))
    mask = sitk.Shrink(sitk.OtsuThreshold(volume, 0, 1, 200), [N4_SHRINK] * 3)
    if not sitk.GetArrayViewFromImage(mask).any():
        raise ValueError(f"N4 found no head to fit a bias field in (an image of shape {tuple(image.shape[1:])})")
    corrector = sitk.N4BiasFieldCorrectionImageFilter()
    corrector.Execute(sitk.Shrink(volume, [N4_SHRINK] * 3), mask)
    log_field = sitk.GetArrayFromImage(corrector.GetLogBiasFieldAsImage(volume))
    if not np.isfinite(log_field).all():
        raise ValueError("N4's bias field is not finite")
    return image / torch.from_numpy(np.exp(log_field)).to(image.dtype)[None]


def smooth_tissue(image: Tensor, head: Tensor, threshold: float, fraction: float) -> Tensor:
    """The smooth tissue: of the head's voxels whose local mean (over 3x3x3 voxels) is above
    ``threshold``, the ``fraction`` with the lowest local coefficient of variation (standard deviation
    over mean, over the same voxels). On a T1 scan that is white matter; Rician noise (coefficient of
    variation 0.52 where there is no signal), ghosts and spikes' stripes are never that smooth.
    ``image`` and ``head`` ``(1, D, H, W)``; returns a bool mask of the same shape.

    An anchor in the spirit of WhiteStripe (Shinohara et al. 2014), which neither TorchIO nor MONAI
    has; a histogram's white-matter peak, WhiteStripe's own anchor, is outnumbered by the voxels of
    noise that fills the background.

    Raises:
        ValueError: if no head voxel's local mean is above ``threshold``.
    """
    x = image[None].float()
    mean = F.avg_pool3d(x, 3, stride=1, padding=1, count_include_pad=False)[0]
    square = F.avg_pool3d(x * x, 3, stride=1, padding=1, count_include_pad=False)[0]
    variation = (square - mean * mean).clamp_min(0).sqrt() / mean.clamp_min(1e-6)
    candidates = head & (mean > threshold)
    if not candidates.any():
        raise ValueError("no head voxel is brighter than the head threshold: nothing to scale the intensities by")
    values = variation[candidates]
    cut = values.kthvalue(max(1, int(fraction * values.numel()))).values  # quantile() stops at 2**24 voxels
    return candidates & (variation <= cut)


def scale_intensity(image: Tensor, settings: Preprocessing) -> tuple[Tensor, Tensor]:
    """The intensity half of :func:`preprocess`, on an image ``(1, D, H, W)`` already on the
    preprocessed grid: N4 (if ``settings.n4``), the percentiles to [0, 1], the head's median (if
    ``settings.head_median``), clipped to [0, 1]; or, with ``settings.tissue_level``, the magnitude
    divided by its smooth tissue's median (:func:`smooth_tissue`, found on the percentiles' scale)
    times the level, with no offset: the lower percentile of a scan whose background holds noise is
    that noise's, and subtracting it darkens the grey matter against the white (x0.89 in the unit
    test's phantom); and not clipped at 1: training adds its corruption to the scaled clean scan
    unclipped, while a clip turns noise outside the brain into a flat bright field, and a scan whose
    ghosts lowered the anchor into a flat white brain (``multitask_tissue``, TRAINING_LOG.md). Returns the
    float32 image and the head mask, both ``(1, D, H, W)``. The damage evaluation runs it on a
    corrupted copy too, as a user's corrupted scan meets it (``conf/damage.yaml``,
    ``preprocess_copies``)."""
    magnitude = image.float()
    if settings.n4:
        magnitude = n4_correct(magnitude)
    if settings.tissue_level is not None:  # a magnitude is never negative; a real-part reconstruction's ghosts
        # are, and their lower percentile lifted the background over the head threshold, where its smooth
        # zeros became the anchor (two ghosting copies of 8 scaled x500,000: multitask_tissue, TRAINING_LOG.md)
        magnitude = magnitude.clamp_min(0)
    image = tio.RescaleIntensity(out_min_max=(0, 1), percentiles=settings.percentiles)(magnitude).float()
    head = torch.from_numpy(head_mask(image[0].clamp(0, 1).numpy(), settings.head_threshold))[None]
    # before clipping: the voxels above 1 count too
    if settings.head_median is not None:
        image = image * (settings.head_median / image[head].median().clamp_min(1e-6))
    elif settings.tissue_level is not None:
        tissue = smooth_tissue(image, head, settings.head_threshold, settings.smooth_fraction)
        image = magnitude * (settings.tissue_level / magnitude[tissue].median().clamp_min(1e-6))
    if settings.head_median is not None or settings.tissue_level is not None:
        head = torch.from_numpy(head_mask(image[0].clamp(0, 1).numpy(), settings.head_threshold))[None]
    if settings.tissue_level is not None:  # no clip at 1 (docstring)
        return image.clamp_min_(0), head
    return image.clamp_(0, 1), head


def head_mask(image: np.ndarray, threshold: float) -> np.ndarray:
    """Largest connected component above ``threshold``, holes filled: the head, ``(D, H, W)`` bool."""
    mask = image > threshold
    labelled, count = ndimage.label(mask)
    if count > 1:
        sizes = ndimage.sum_labels(mask, labelled, index=np.arange(1, count + 1))
        mask = labelled == (1 + int(np.argmax(sizes)))
    mask = ndimage.binary_closing(mask, iterations=2)
    return ndimage.binary_fill_holes(mask)


def _subject(record: ScanRecord) -> tio.Subject:
    """The TorchIO subject of a record; the label map is a label map, or a probability image."""
    if record.image is None:  # the MNI template
        t1, gm = mni_images()
        return tio.Subject(
            t1=tio.ScalarImage(tensor=np.asarray(t1.get_fdata(), np.float32)[None], affine=t1.affine),
            labels=tio.ScalarImage(tensor=np.asarray(gm.get_fdata(), np.float32)[None], affine=gm.affine),
        )
    data, affine, _ = load_volume(record.image)  # checks the file; TorchIO would turn NaN into 0
    images = {"t1": tio.ScalarImage(tensor=data[None], affine=affine)}
    if record.label is not None:
        labels, label_affine, _ = load_volume(record.label)
        if labels.shape != data.shape:
            raise ValueError(f"{record.label}: label shape {labels.shape} differs from image {data.shape}")
        images["labels"] = tio.LabelMap(tensor=np.rint(labels)[None].astype(np.int16), affine=label_affine)
    return tio.Subject(**images)


def preprocess(record: ScanRecord, settings: Preprocessing) -> Scan:
    """Read and preprocess one scan.

    Raises:
        ValueError: naming the file, if the image is not a 3D scan with finite, non-constant values.
    """
    name = record.image if record.image is not None else record.subject
    subject = _subject(record)
    data = subject["t1"].data
    if float(data.max()) == float(data.min()):
        raise ValueError(f"{name}: image is constant ({float(data.min())})")
    out = settings.transform()(subject)
    image, head = scale_intensity(out["t1"].data, settings)
    if "labels" in out:
        labels = out["labels"].data
        if record.label_kind == "gm_prob":
            cgm = labels > GM_PROBABILITY
            brain = head.clone()  # the template is skull-stripped: its head is its brain
        else:
            cgm = (labels >= CGM_LABELS[0]) & (labels <= CGM_LABELS[1])
            brain = labels > 0
    else:
        cgm = brain = torch.zeros_like(head)
    spacing = tuple(float(s) for s in out["t1"].spacing)
    return Scan(record.subject, image, head, brain.bool(), cgm.bool(), "labels" in out, spacing,
                np.asarray(out["t1"].affine))
