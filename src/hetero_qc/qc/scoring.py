"""Score one scan: the training preprocessing, inference over the whole volume (in the model's
windows, :func:`~hetero_qc.inference.inference_window`), maps on the scan's own grid, scan scores and
a verdict."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torchio as tio
from torch import Tensor

from hetero_qc.data import Scan, ScanRecord, preprocess
from hetero_qc.data.nifti import load_volume, save_volume
from hetero_qc.inference import TrainedModel, sigma
from hetero_qc.metrics import scan_sigma_r, scan_sigma_s
from hetero_qc.models.networks import NetOutput
from hetero_qc.qc.verdict import BLURRED, EXCLUDE, Cutoffs, ScanScores

MAX_ANISOTROPY = 4.0  # largest / smallest voxel side
MAX_FOV_MM = 400.0  # a head needs ~250 mm; beyond this it is a body scan or a broken header
MAPS = ("recon", "sigma", "cgm", "sigma_seg")
# A skull-stripped scan: a head the size of a brain, in a background set to zero. On the 2 mm grid
# (stop 43, throwaway counts in results/sites/throwaway_stop43/): whole heads 3.2-5.8 L (all 164 IXI and
# 23 NiChart scans), 3.0-3.7 L (the three whole-head single scans of other scanners), brains 1.1 L (AFNI's
# stripped scan) and 1.9 L (the MNI152 template); outside the head, 0.1-1.5% of the voxels are above zero
# in the stripped scans and in the two whole-head scans whose background the scanner zeroed, 14-73% in the
# others sampled (9 IXI, 6 NiChart, SPM's).
STRIPPED_MAX_LITRES = 2.4
STRIPPED_MAX_BACKGROUND = 0.02  # share of the voxels outside the head above zero
# Slices thicker than the model's grid by more than a quarter (2.5 mm on the 2 mm grid): the 1 x 1 x 3 and
# 2 x 2 x 3 mm scans of other scanners, blur 0.38-0.43 against clean IXI's 0.01-0.08 (results/sites/).
THICK_SLICE_RATIO = 1.25


@dataclass(frozen=True)
class ScoredScan:
    """A scored scan: its scores, the map files written, and the mid-slices for the report."""

    name: str
    scores: ScanScores
    verdict: str
    files: dict[str, Path]
    slices: dict[str, np.ndarray] | None = None  # None: read back from a BIDS sidecar (group level)
    skull_stripped: bool = False  # judged with the cut-offs for skull-stripped scans (Cutoffs.for_scan)
    slice_mm: float = float("nan")  # the input's thickest voxel side, from its header (NaN: not recorded)
    thick_slices: bool = False  # thicker than the model's grid resolves (thick_slices())

    @property
    def note(self) -> str:
        """What the scan's acquisition says about its verdict: empty unless its slices are thick. Their
        blur is the acquisition's, which the blur score cannot tell from motion but the header can."""
        if not self.thick_slices:
            return ""
        slices = f"{self.slice_mm:g} mm slices (its header)"
        if self.verdict == BLURRED:
            return f"{slices}: blurred by its acquisition, not necessarily by motion; cortex along them is partial-volumed"
        if self.verdict == EXCLUDE:
            return f"{slices}: thicker than the model's grid, which may be why the segmentation is uncertain"
        return f"{slices}: thicker than the model's grid; cortex along them is partial-volumed"

    def row(self) -> dict:
        """The scan's line in qc.csv, a BIDS sidecar and the group table."""
        return {"scan": self.name, "verdict": self.verdict, **asdict(self.scores), "skull_stripped": self.skull_stripped,
                "slice_mm": self.slice_mm, "thick_slices": self.thick_slices, "note": self.note}


def check_geometry(path: Path, shape: tuple[int, ...], spacing: tuple[float, ...]) -> None:
    """Raise ``ValueError`` naming ``path`` for a voxel grid the tool cannot score reliably."""
    if min(spacing) <= 0:
        raise ValueError(f"{path}: voxel size {spacing} is not positive")
    if max(spacing) / min(spacing) > MAX_ANISOTROPY:
        sides = "x".join(f"{s:g}" for s in spacing)
        raise ValueError(f"{path}: voxels of {sides} mm are too anisotropic (max/min > {MAX_ANISOTROPY:g}) "
                         "to resample into a 3D volume reliably")
    fov = [n * s for n, s in zip(shape, spacing)]
    if max(fov) > MAX_FOV_MM:
        raise ValueError(f"{path}: field of view {max(fov):.0f} mm exceeds {MAX_FOV_MM:.0f} mm; is this a head T1?")
    if min(shape) < 8:
        raise ValueError(f"{path}: {shape} is not a 3D volume (a side under 8 voxels)")


def thick_slices(spacing: Sequence[float], grid: Sequence[float]) -> bool:
    """Whether voxel sides ``spacing`` (mm, a scan's header) include slices thicker than the model's
    ``grid`` resolves: the thickest over :data:`THICK_SLICE_RATIO` times the grid's. Blur along such slices
    is the acquisition's, and no network undoes it."""
    return max(spacing) > THICK_SLICE_RATIO * max(grid)


def looks_skull_stripped(scan: Scan) -> bool:
    """Whether ``scan`` (preprocessed) is skull-stripped: its head no bigger than a brain
    (:data:`STRIPPED_MAX_LITRES`) and nothing but zeros around it (:data:`STRIPPED_MAX_BACKGROUND`)."""
    litres = float(scan.head.sum()) * float(np.prod(scan.spacing)) / 1e6
    outside = ~scan.head
    background = float((scan.image[outside] > 0).float().mean()) if bool(outside.any()) else 0.0
    return litres <= STRIPPED_MAX_LITRES and background <= STRIPPED_MAX_BACKGROUND


def axis_sharpness(image: Tensor, head: Tensor) -> tuple[float, float, float]:
    """Log mean squared difference of neighbouring head voxels along each axis, less its mean over the
    three axes: how much sharper the scan is along each axis than on average.

    Args:
        image: ``(D, H, W)`` preprocessed intensities (canonical orientation); head: ``(D, H, W)`` bool.
    """
    energies = []
    for axis in range(3):
        n = image.shape[axis]
        pairs = head.narrow(axis, 0, n - 1) & head.narrow(axis, 1, n - 1)
        energies.append((image.float().diff(dim=axis)[pairs] ** 2).mean().clamp_min(1e-12).log())
    logs = torch.stack(energies)
    return tuple(float(v) for v in logs - logs.mean())


def axis_blur(image: Tensor, head: Tensor, profile: tuple[float, float, float]) -> float:
    """How far the sharpness of the blurriest axis falls below that of clean scans (``profile``, their
    mean :func:`axis_sharpness`): ``max_a (profile_a - sharpness_a)``, natural log.

    Rigid motion replaces the outer k-space lines along the phase-encode axis with those of moved
    copies, which blurs that axis only. On the 32 IXI validation and test scans (2 mm, canonical axes,
    clean profile (0.03, -0.07, 0.03); a throwaway script): 0.01-0.08 clean, 0.22-0.49 after 5 degrees /
    5 mm of motion along any one of the three axes, 0.17-0.45 after 2 degrees / 2 mm; white noise
    sharpens every axis alike and only flattens the profile (0.03 at 0 dB). Whatever else blurs one
    axis scores too: 3 mm slices 0.04-0.38 by their axis, a 2 mm scan interpolated to 1 mm and back
    0.04-0.19. Against the clean profile rather than the other axes' mean, because the head is not
    equally sharp along all three: blur along the sharpest axis would otherwise be half hidden.
    """
    return float(max(p - s for p, s in zip(profile, axis_sharpness(image, head))))


def scan_scores(image: Tensor, scan: Scan, out: NetOutput, profile: tuple[float, float, float]) -> ScanScores:
    """Visual quality (the predicted reconstruction RMSE over the head,
    :func:`~hetero_qc.metrics.scan_sigma_r`), algorithmic quality (mean sigma_s over the head weighted by
    the cortex probability, :func:`~hetero_qc.metrics.scan_sigma_s`) and the blur of ``image`` ``(1, 1, D, H, W)``, the network's input
    (``scan``'s image or a corrupted copy of it), against the clean sharpness ``profile``. Without a
    segmentation head (a reconstruction-only model), sigma_s is NaN."""
    head = scan.head[None]
    segments = out.seg_log_var is not None
    return ScanScores(sigma_r=float(scan_sigma_r(out.log_var, head)),
                      sigma_s=float(scan_sigma_s(out.seg_logits, out.seg_log_var, head)) if segments else float("nan"),
                      blur=axis_blur(image[0, 0], scan.head[0], profile))


def _to_native(volume: Tensor, scan: Scan, reference: tio.ScalarImage, label: bool = False) -> np.ndarray:
    """Resample a map ``(1, 1, D, H, W)`` on the preprocessed grid back onto the scan's own grid."""
    image = (tio.LabelMap if label else tio.ScalarImage)(tensor=volume[0].float(), affine=scan.affine)
    return tio.Resample(reference)(image).data[0].numpy()


def flat_map_paths(out_dir: Path, name: str) -> dict[str, Path]:
    """Where the plain-files mode writes a scan's maps: ``out_dir/{name}_{map}.nii.gz``."""
    return {key: out_dir / f"{name}_{key}.nii.gz" for key in MAPS}


def infer_file(model: TrainedModel, name: str, path: Path, device: torch.device
               ) -> tuple[Scan, NetOutput, tio.ScalarImage]:
    """The preprocessed scan at ``path``, the network's output on it (float32, on the CPU) and the
    scan as read (its own grid, for the maps).

    Raises:
        ValueError: naming the file, for input the tool cannot score.
    """
    data, affine, spacing = load_volume(path)
    check_geometry(path, data.shape, spacing)
    scan = preprocess(ScanRecord(name, path), model.preprocessing)
    out = model.predict(scan.image[None].to(device))
    return scan, NetOutput(*(t.float().cpu() for t in out)), tio.ScalarImage(tensor=data[None], affine=affine)


def score_file(model: TrainedModel, cutoffs: Cutoffs, name: str, path: Path, map_paths: dict[str, Path],
               device: torch.device) -> ScoredScan:
    """Score ``path`` and write its maps (each of :data:`MAPS`) to ``map_paths`` (atomically).

    Raises:
        ValueError: naming the file, for input the tool cannot score or an output it cannot write.
    """
    scan, out, reference = infer_file(model, name, path, device)
    stripped = looks_skull_stripped(scan)
    cutoffs = cutoffs.for_scan(stripped)
    scores = scan_scores(scan.image[None], scan, out, cutoffs.sharpness)
    maps = {"recon": out.mean, "sigma": sigma(out.log_var), "cgm": out.seg_logits.softmax(1)[:, 1:],
            "sigma_seg": sigma(out.seg_log_var)}
    for key, volume in maps.items():
        map_paths[key].parent.mkdir(parents=True, exist_ok=True)
        save_volume(_to_native(volume, scan, reference), reference.affine, map_paths[key])
    middle = scan.image.shape[1] // 2
    slices = {"input": scan.image[0, middle].numpy(), "sigma": maps["sigma"][0, 0, middle].numpy(),
              "cgm": maps["cgm"][0, 0, middle].numpy(), "sigma_seg": maps["sigma_seg"][0, 0, middle].numpy()}
    return ScoredScan(name, scores, cutoffs.verdict(scores), dict(map_paths), slices, stripped,
                      max(reference.spacing), thick_slices(reference.spacing, scan.spacing))
