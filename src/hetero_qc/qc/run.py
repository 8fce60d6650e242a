"""``hetero-qc qc``: score every input, write maps, ``qc.csv``, ``qc.json`` and ``report.html``."""

from __future__ import annotations

import json
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import pandas as pd
import torch
from tqdm import tqdm

from hetero_qc.atomic import write_text
from hetero_qc.inference import load_model
from hetero_qc.paths import MODEL_DIR
from hetero_qc.qc.inputs import expand_inputs
from hetero_qc.qc.report import render
from hetero_qc.qc.scoring import score_file
from hetero_qc.qc.verdict import Cutoffs

DEFAULT_MODEL = MODEL_DIR / "model.ckpt"


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: no CUDA device is available")
    return torch.device(name)


def _writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise ValueError(f"{folder}: cannot write the output folder ({error.strerror})") from None


def run_qc(inputs: list[str], out_dir: Path, model: Path = DEFAULT_MODEL, device: str = "auto") -> int:
    """Score ``inputs``; returns 0 when every scan was scored, 1 when some failed.

    Raises:
        ValueError: for problems that stop the whole run (model, cut-offs, output folder, device).
    """
    _writable(out_dir)
    target = _device(device)
    trained = load_model(model, map_location=target)
    if trained.preprocessing is None or not trained.multitask:
        raise ValueError(f"{model}: the QC tool needs a multi-task model trained with its preprocessing settings")
    cutoffs = Cutoffs.load(Path(model).parent / "cutoffs.json")
    trained.net.to(target)
    items = expand_inputs(inputs)
    scored, failures, seconds = [], [], {}
    for item in tqdm(items, desc="scoring", unit="scan", file=sys.stderr):
        try:
            if item.problem:
                raise ValueError(f"{item.path}: {item.problem}")
            start = time.perf_counter()
            scored.append(score_file(trained, cutoffs, item.name, item.path, out_dir, target))
            seconds[item.name] = round(time.perf_counter() - start, 2)
        except ValueError as error:
            failures.append(str(error))
            tqdm.write(f"hetero-qc: {error}", file=sys.stderr)
    rows = [{"scan": s.name, "verdict": s.verdict, **asdict(s.scores), "seconds": seconds[s.name],
             **{f"{k}_map": str(p) for k, p in s.files.items()}} for s in scored]
    columns = ["scan", "verdict", "sigma_r", "sigma_s", "blur", "predicted_error", "seconds"]
    write_text(out_dir / "qc.csv", pd.DataFrame(rows, columns=columns + [f"{k}_map" for k in
                                                                      ("recon", "sigma", "cgm", "sigma_seg")]).to_csv(index=False))
    write_text(out_dir / "qc.json", json.dumps({"model": str(model), "cutoffs": asdict(cutoffs), "device": str(target),
                                                 "scans": rows, "failures": failures}, indent=1))
    write_text(out_dir / "report.html", render(scored, failures, cutoffs, str(model)))
    return 1 if failures else 0
