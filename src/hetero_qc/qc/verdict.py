"""Scan scores and the verdict cut-offs, calibrated on the validation split and stored with the model.

Visual quality is sigma_r (reconstruction uncertainty over the head): how much of the image cannot be
recovered. Algorithmic quality is sigma_s (segmentation uncertainty over the cortex): whether the
downstream task (cortical grey-matter segmentation) is affected. A scan can look bad yet segment well
(the paper's point): that is "degraded but usable for CGM segmentation".
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from hetero_qc.atomic import write_text

OK = "ok"
DEGRADED = "degraded but usable for CGM segmentation"
EXCLUDE = "exclude"


@dataclass(frozen=True)
class ScanScores:
    sigma_r: float  # median reconstruction sigma over the head (intensity units, [0, 1] scale)
    sigma_s: float  # mean segmentation sigma over the predicted cortex
    predicted_error: float  # mean predicted squared reconstruction error over the head


@dataclass(frozen=True)
class Cutoffs:
    """Cut-offs on sigma_r (visual) and sigma_s (algorithmic), with how they were chosen."""

    sigma_r: float
    sigma_s: float
    method: str = ""

    def verdict(self, scores: ScanScores) -> str:
        if scores.sigma_s > self.sigma_s:
            return EXCLUDE
        return DEGRADED if scores.sigma_r > self.sigma_r else OK

    def save(self, path: Path) -> None:
        write_text(path, json.dumps(asdict(self), indent=1))

    @classmethod
    def load(cls, path: Path) -> Cutoffs:
        """Raises ``ValueError`` naming the file if it is missing or malformed."""
        try:
            values = json.loads(Path(path).read_text())
            return cls(float(values["sigma_r"]), float(values["sigma_s"]), str(values.get("method", "")))
        except (OSError, ValueError, KeyError, TypeError) as error:
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
