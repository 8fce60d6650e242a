"""``hetero-qc qc``: score every input, write maps, ``qc.csv``, ``qc.json`` and ``report.html``."""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import NamedTuple

import pandas as pd
import torch
from tqdm import tqdm

from hetero_qc.atomic import write_text
from hetero_qc.inference import TrainedModel, load_model
from hetero_qc.paths import MODEL_DIR
from hetero_qc.qc.inputs import expand_inputs
from hetero_qc.qc.report import render
from hetero_qc.qc.scoring import MAPS, ScoredScan, flat_map_paths, score_file
from hetero_qc.qc.verdict import Cutoffs

DEFAULT_MODEL = MODEL_DIR / "model.ckpt"


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: no CUDA device is available")
    return torch.device(name)


def writable_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise ValueError(f"{folder}: cannot write the output folder ({error.strerror})") from None


def model_hash(model: Path) -> str:
    """SHA-256 of the checkpoint file."""
    digest = hashlib.sha256()
    with open(model, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_qc_model(model: Path, device: str, cutoffs_file: Path | None = None) -> tuple[TrainedModel, Cutoffs, torch.device]:
    """The multi-task model at ``model`` on ``device``, with the verdict cut-offs of ``cutoffs_file``
    (default: the ``cutoffs.json`` beside the model; a site's own from ``hetero-qc calibrate-site``).

    Raises:
        ValueError: for a checkpoint the QC tool cannot use, missing cut-offs, cut-offs moved to a site
            for another model, or an absent device.
    """
    target = _device(device)
    trained = load_model(model, map_location=target)
    if trained.preprocessing is None or not trained.multitask:
        raise ValueError(f"{model}: the QC tool needs a multi-task model trained with its preprocessing settings")
    cutoffs = Cutoffs.load(Path(model).parent / "cutoffs.json" if cutoffs_file is None else cutoffs_file)
    if cutoffs.model_sha256 and cutoffs.model_sha256 != (digest := model_hash(model)):
        raise ValueError(f"{cutoffs_file}: these cut-offs were moved to a site for the model with sha256 "
                         f"{cutoffs.model_sha256[:16]}..., not {model} ({digest[:16]}...); `hetero-qc calibrate-site` "
                         "with this model moves its own")
    trained.net.to(target)
    return trained, cutoffs, target


class Job(NamedTuple):
    """One scan to score: its name, its file, where its maps go, or why it cannot be scored."""

    name: str
    path: Path
    map_paths: dict[str, Path]
    problem: str | None = None


def score_all(jobs: list[Job], model: TrainedModel, cutoffs: Cutoffs, device: torch.device
              ) -> tuple[list[ScoredScan], list[str], dict[str, float]]:
    """Score every job behind one progress bar (on a terminal only); a scan that fails is reported on
    its own line, above the bar, and the others go on. Warnings print the same way.

    Returns:
        The scored scans, the one-line errors of the failed ones, and the seconds each scan took.
    """
    scored, failures, seconds = [], [], {}
    with warnings.catch_warnings():
        warnings.showwarning = lambda message, category, *args, **kwargs: tqdm.write(
            f"hetero-qc: warning: {category.__name__}: {message}", file=sys.stderr)
        for job in tqdm(jobs, desc="scoring", unit="scan", file=sys.stderr, disable=None):
            try:
                if job.problem:
                    raise ValueError(f"{job.path}: {job.problem}")
                start = time.perf_counter()
                scored.append(score_file(model, cutoffs, job.name, job.path, job.map_paths, device))
                seconds[job.name] = round(time.perf_counter() - start, 2)
            except ValueError as error:
                failures.append(str(error))
                tqdm.write(f"hetero-qc: {error}", file=sys.stderr)
    return scored, failures, seconds


def run_qc(inputs: list[str], out_dir: Path, model: Path = DEFAULT_MODEL, device: str = "auto",
           cutoffs_file: Path | None = None) -> int:
    """Score ``inputs`` (files, folders, BIDS datasets) into the flat layout of ``out_dir`` (verdicts
    under ``cutoffs_file``, :func:`load_qc_model`); returns 0 when every scan was scored, 1 when some failed.

    Raises:
        ValueError: for problems that stop the whole run (model, cut-offs, output folder, device).
    """
    writable_folder(out_dir)
    trained, cutoffs, target = load_qc_model(model, device, cutoffs_file)
    jobs = [Job(item.name, item.path, flat_map_paths(out_dir, item.name), item.problem) for item in expand_inputs(inputs)]
    scored, failures, seconds = score_all(jobs, trained, cutoffs, target)
    rows = [{**s.row(), "seconds": seconds[s.name], **{f"{k}_map": str(p) for k, p in s.files.items()}} for s in scored]
    columns = ["scan", "verdict", "sigma_r", "sigma_s", "blur", "skull_stripped", "slice_mm", "thick_slices", "note",
               "seconds"]
    write_text(out_dir / "qc.csv", pd.DataFrame(rows, columns=columns + [f"{k}_map" for k in MAPS]).to_csv(index=False))
    write_text(out_dir / "qc.json", json.dumps({"model": str(model), "cutoffs": cutoffs.to_dict(), "device": str(target),
                                                 "scans": rows, "failures": failures}, indent=1))
    write_text(out_dir / "report.html", render(scored, failures, cutoffs, str(model)))
    return 1 if failures else 0
