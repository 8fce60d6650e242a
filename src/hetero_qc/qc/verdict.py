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
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from statistics import NormalDist

import numpy as np

from hetero_qc.atomic import write_text

OK = "ok"
DEGRADED = "degraded but usable for CGM segmentation"
BLURRED = "blurred along one axis (motion or thick slices)"
EXCLUDE = "exclude"
SCORED = ("sigma_r", "sigma_s", "blur")  # the scores the verdict cuts
MIN_SITE_SCANS = 5  # clean scans of a new site needed to move the cut-offs there (Cutoffs.for_site)
FALSE_ALARMS = 0.05  # at most this share of clean scans may be flagged by a cut-off
# The definitions of the scan scores that cut-offs are calibrated on, numbered: a cut-off is only
# meaningful on the statistic it was calibrated on. Files without the field count as 1.
SCORES_VERSIONS = {
    1: "written before scores_version existed (a71a6fa); until c7e4ced sigma_r was the median sigma",
    2: "sigma_r the predicted reconstruction RMSE over the head, sigma_s the mean over the predicted cortex",
    3: "sigma_r the predicted reconstruction RMSE over the head, sigma_s the mean over the head",
    4: "sigma_r the predicted reconstruction RMSE over the head, sigma_s the mean over the predicted cortex "
       "grown by 4 mm within the head",
    5: "sigma_r the predicted reconstruction RMSE over the head, sigma_s the mean over the head weighted by "
       "the predicted cortex probability",
    6: "as 5, with the segmentation (cortex probability and sigma_s map) averaged with the left-right "
       "mirrored prediction's",
}
SCORES_VERSION = max(SCORES_VERSIONS)


@dataclass(frozen=True)
class ScanScores:
    sigma_r: float  # predicted reconstruction RMSE over the head, sqrt(mean sigma_r^2) ([0, 1] intensities)
    sigma_s: float  # mean segmentation sigma over the head weighted by the cortex probability (metrics.scan_sigma_s)
    blur: float  # how far the blurriest axis falls below clean scans' sharpness (scoring.axis_blur)


@dataclass(frozen=True)
class Cutoffs:
    """Cut-offs on sigma_r (visual), sigma_s (algorithmic) and blur, the clean scans' sharpness profile
    that blur is measured against (:func:`~hetero_qc.qc.scoring.axis_sharpness`), how they were
    chosen, and ``reference``: the median of each of :data:`SCORED` over the clean scans they were
    calibrated on (empty in cut-offs written before it existed), which :meth:`for_site` moves from, and
    ``model_sha256``: the checkpoint that cut-offs moved to a site belong to (empty beside their model),
    and ``scores_version``: the definitions of the scores they cut (:data:`SCORES_VERSION`)."""

    sigma_r: float
    sigma_s: float
    blur: float
    sharpness: tuple[float, float, float]
    method: str = ""
    reference: dict[str, float] = field(default_factory=dict)
    model_sha256: str = ""
    scores_version: int = SCORES_VERSION
    skull_stripped: Cutoffs | None = None

    def for_scan(self, skull_stripped: bool) -> Cutoffs:
        """The cut-offs that judge a scan: :attr:`skull_stripped` for a skull-stripped one where they
        exist, these otherwise. A stripped scan has no skull or scalp to score (sigma_r over the brain
        only: half a whole head's) and cortex against a zero background: on 8 IXI test scans stripped
        as training strips them, the CGM Dice held (0.874 against 0.879) while sigma_s rose by 0.03
        and passed the whole-head cut-off on 3 (the shipped model, stop 43, TRAINING_LOG.md)."""
        return self.skull_stripped if skull_stripped and self.skull_stripped is not None else self

    def verdict(self, scores: ScanScores) -> str:
        """``exclude`` (sigma_s) before ``blurred`` before ``degraded`` (sigma_r) before ``ok``."""
        if scores.sigma_s > self.sigma_s:
            return EXCLUDE
        if scores.blur > self.blur:
            return BLURRED
        return DEGRADED if scores.sigma_r > self.sigma_r else OK

    def for_site(self, sigma_r: Sequence[float], sigma_s: Sequence[float],
                 sharpness: Sequence[tuple[float, float, float]], site: str) -> Cutoffs:
        """The cut-offs moved to a new site, from at least :data:`MIN_SITE_SCANS` clean scans of it
        (their scan sigma_r, sigma_s and :func:`~hetero_qc.qc.scoring.axis_sharpness`).

        A new scanner shifts every clean score (another noise level, contrast and resolution: on the
        NiChart scans, sigma_s's clean median sits above IXI's cut-off, ``results/sites/``), while what
        damage adds to a score is the network's, not the site's. So each cut-off keeps its distance
        from the clean median: it moves by the site's clean median less the calibration's
        (``reference``), and blur is measured against the site's own sharpness profile (each
        reference scan's blur against the other scans' profile: a profile that includes the scan
        itself would pull the site's clean blur, and so its cut-off, down). Each is then raised where
        needed to :func:`site_clean_floor` of the site's clean scores: a site whose clean scans spread
        wider than the calibration's would otherwise have its own clean scans flagged (NiChart under stop
        47's fixed-statistics model: the moved sigma_s cut-off flagged 6 of its 18 other clean scans).

        Raises:
            ValueError: with fewer than :data:`MIN_SITE_SCANS` scans, unequal lists, or cut-offs
                without a ``reference`` (calibrated before it existed).
        """
        if not self.reference:
            raise ValueError("these cut-offs carry no clean reference to move from (calibrated by an older "
                             "hetero_qc); `hetero-qc ship-model` calibrates them again")
        if not len(sigma_r) == len(sigma_s) == len(sharpness):
            raise ValueError(f"{len(sigma_r)} sigma_r, {len(sigma_s)} sigma_s and {len(sharpness)} sharpness values")
        if len(sigma_r) < MIN_SITE_SCANS:
            raise ValueError(f"{len(sigma_r)} clean scans of {site}; moving the cut-offs there needs at least "
                             f"{MIN_SITE_SCANS}")
        axes = np.asarray(sharpness, float)  # (N, 3)
        profile = tuple(float(v) for v in axes.mean(axis=0))
        others = (axes.sum(axis=0) - axes) / (len(axes) - 1)  # each scan against the others' profile, not its own
        blur = (others - axes).max(axis=1)
        clean = dict(zip(SCORED, (sigma_r, sigma_s, blur)))
        medians = {key: float(np.median(values)) for key, values in clean.items()}
        moved = {key: max(getattr(self, key) + medians[key] - self.reference[key], site_clean_floor(values))
                 for key, values in clean.items()}
        return Cutoffs(**moved, sharpness=profile, reference=medians,
                       method=f"{self.method}; then moved to {site} by the medians of {len(sigma_r)} clean scans of it, "
                              f"each raised to flag at most {FALSE_ALARMS:.0%} of a normal fitted to them (median, MAD)")

    def to_dict(self) -> dict:
        """Plain values for JSON, :attr:`skull_stripped` nested as a dict (read back by :meth:`from_dict`)."""
        return asdict(self)

    def save(self, path: Path) -> None:
        write_text(path, json.dumps(self.to_dict(), indent=1))

    @classmethod
    def from_dict(cls, values: dict, check_version: bool = True) -> Cutoffs:
        """The cut-offs as :meth:`save` writes them (also each QC sidecar's ``cutoffs``, read with
        ``check_version=False``: those verdicts are made, and only reported).

        Raises:
            KeyError: for a missing field; ValueError or TypeError: for a malformed one, or, with
                ``check_version``, for cut-offs calibrated on other definitions of the scores.
        """
        version = int(values.get("scores_version", 1))
        if check_version and version != SCORES_VERSION:
            raise ValueError(f"calibrated on version {version} of the scan scores "
                             f"({SCORES_VERSIONS.get(version, 'unknown')}); this hetero_qc computes version "
                             f"{SCORES_VERSION} ({SCORES_VERSIONS[SCORES_VERSION]}): calibrate them again "
                             "(`hetero-qc calibrate-site`, or `make model`)")
        sharpness = tuple(float(v) for v in values["sharpness"])
        if len(sharpness) != 3:
            raise ValueError(f"sharpness has {len(sharpness)} values, not 3")
        reference = {key: float(values["reference"][key]) for key in SCORED} if values.get("reference") else {}
        stripped = values.get("skull_stripped")
        return cls(*(float(values[key]) for key in SCORED), sharpness, str(values.get("method", "")), reference,
                   str(values.get("model_sha256", "")), version,
                   cls.from_dict(stripped, check_version) if stripped else None)

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


def site_clean_floor(clean_scores: Sequence[float]) -> float:
    """The lowest cut-off that flags at most :data:`FALSE_ALARMS` of a site's clean scans ``(N,)``, from a
    normal fitted robustly to them: median + z * 1.4826 * MAD. With the handful of clean scans a site
    brings, an empirical quantile would be the largest of them, which one scan that is not clean would
    set; the median and MAD ignore it (one of five)."""
    values = np.asarray(clean_scores, float)
    median = float(np.median(values))
    spread = 1.4826 * float(np.median(np.abs(values - median)))  # the MAD, scaled to a normal's sigma
    return median + NormalDist().inv_cdf(1 - FALSE_ALARMS) * spread


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
