"""Scan scores and the verdict cut-offs, calibrated on the validation split and stored with the model.

Visual quality is sigma_r (reconstruction uncertainty over the head): how much of the image cannot be
recovered. Algorithmic quality is sigma_s (segmentation uncertainty over the cortex): whether the
downstream task (cortical grey-matter segmentation) is affected. A scan can look bad yet segment well
(the paper's point): that is "degraded but usable for CGM segmentation".

Blur is a third, model-free score: the CPU models' sigma does not rise on rigid motion (REPRODUCTION.md,
Fig 4), which blurs the phase-encode axis and lowers the CGM Dice, so the verdict also looks at how far
the scan's blurriest axis falls below the sharpness of clean validation scans.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from hetero_qc.atomic import write_text

OK = "ok"
DEGRADED = "degraded but usable for CGM segmentation"
BLURRED = "blurred along one axis (motion or thick slices)"
EXCLUDE = "exclude"


@dataclass(frozen=True)
class ScanScores:
    sigma_r: float  # median reconstruction sigma over the head (intensity units, [0, 1] scale)
    sigma_s: float  # mean segmentation sigma over the predicted cortex
    predicted_error: float  # mean predicted squared reconstruction error over the head
    blur: float  # how far the blurriest axis falls below clean scans' sharpness (scoring.axis_blur)


@dataclass(frozen=True)
class Cutoffs:
    """Cut-offs on sigma_r (visual), sigma_s (algorithmic) and blur, the clean scans' sharpness profile
    that blur is measured against (:func:`~hetero_qc.qc.scoring.axis_sharpness`), and how they were
    chosen."""

    sigma_r: float
    sigma_s: float
    blur: float
    sharpness: tuple[float, float, float]
    method: str = ""

    def verdict(self, scores: ScanScores) -> str:
        """``exclude`` (sigma_s) before ``blurred`` before ``degraded`` (sigma_r) before ``ok``."""
        if scores.sigma_s > self.sigma_s:
            return EXCLUDE
        if scores.blur > self.blur:
            return BLURRED
        return DEGRADED if scores.sigma_r > self.sigma_r else OK

    def save(self, path: Path) -> None:
        write_text(path, json.dumps(asdict(self), indent=1))

    @classmethod
    def from_dict(cls, values: dict) -> Cutoffs:
        """The cut-offs as :meth:`save` writes them (also each QC sidecar's ``cutoffs``).

        Raises:
            KeyError: for a missing field; ValueError or TypeError: for a malformed one.
        """
        sharpness = tuple(float(v) for v in values["sharpness"])
        if len(sharpness) != 3:
            raise ValueError(f"sharpness has {len(sharpness)} values, not 3")
        return cls(*(float(values[key]) for key in ("sigma_r", "sigma_s", "blur")), sharpness,
                   str(values.get("method", "")))

    @classmethod
    def load(cls, path: Path) -> Cutoffs:
        """Raises ``ValueError`` naming the file if it is missing or malformed."""
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except KeyError as error:
            raise ValueError(f"{path}: the verdict cut-offs lack {error}; written by an older hetero_qc? "
                             "`hetero-qc ship-model` (make model) calibrates them again") from None
        except (OSError, ValueError, TypeError) as error:
            raise ValueError(f"{path}: cannot read the verdict cut-offs ({error})") from None


def youden_threshold(positive: np.ndarray, negative: np.ndarray) -> float:
    """The threshold maximising sensitivity + specificity for ``score > threshold`` meaning positive
    (midpoint between neighbouring scores)."""
    scores = np.unique(np.concatenate([positive, negative]))
    candidates = (scores[:-1] + scores[1:]) / 2 if len(scores) > 1 else scores
    best, best_j = float(candidates[0]), -1.0
    for t in candidates:
        j = np.mean(positive > t) + np.mean(negative <= t) - 1
        if j > best_j:
            best, best_j = float(t), j
    return best
