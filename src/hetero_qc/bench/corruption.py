"""Side-by-side timing of the batched artefacts against TorchIO's transforms at the same parameters.

Both run in the same process, on the same volumes, with the same parameter ranges (our defaults are
TorchIO's); TorchIO corrupts one volume at a time, ours the whole batch. Rows are written to
``results/bench/corruption.json`` and a Markdown table for ``BENCHMARKS.md``.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
import torchio as tio

from hetero_qc.bench.machine import describe_machine
from hetero_qc.corruption import (
    CorruptionPipeline,
    RandomArtefact,
    RandomBiasField,
    RandomGhosting,
    RandomMotion,
    RandomPartialNoise,
    RandomRicianNoise,
    RandomSpike,
)
from hetero_qc.data.sources import mni_volume


@dataclass(frozen=True)
class BenchRow:
    """One timing: milliseconds per volume for ours and TorchIO's, and the ratio."""

    artefact: str
    shape: list[int]
    batch: int
    device: str
    ours_ms_per_volume: float
    torchio_ms_per_volume: float
    speedup: float


def _pairs() -> dict[str, tuple[RandomArtefact | CorruptionPipeline, tio.Transform]]:
    """Our artefact and its nearest TorchIO transform, at TorchIO's default parameters."""
    noise_std = (0.0, 0.25)  # TorchIO's RandomNoise default; Rician needs two Gaussian draws per voxel
    ours: dict[str, RandomArtefact] = {
        "motion": RandomMotion(),
        "ghosting": RandomGhosting(),
        "spike": RandomSpike(),
        "bias_field": RandomBiasField(),
        "noise": RandomRicianNoise(),
        "partial_noise": RandomPartialNoise(),
    }
    theirs: dict[str, tio.Transform] = {
        "motion": tio.RandomMotion(),
        "ghosting": tio.RandomGhosting(),
        "spike": tio.RandomSpike(),
        "bias_field": tio.RandomBiasField(),
        "noise": tio.RandomNoise(std=noise_std),
        "partial_noise": tio.RandomNoise(std=noise_std),
    }
    order = ("bias_field", "motion", "ghosting", "spike", "noise")
    pipeline = CorruptionPipeline({name: {"artefact": ours[name], "p": 1.0} for name in order})
    pairs: dict[str, tuple[RandomArtefact | CorruptionPipeline, tio.Transform]] = {
        name: (ours[name], theirs[name]) for name in ours
    }
    pairs["pipeline"] = (pipeline, tio.Compose([theirs[name] for name in order]))
    return pairs


def _median_ms(run: Callable[[], object], repeats: int, device: torch.device) -> float:
    """Median wall time of ``run`` in ms over ``repeats`` calls, after one warm-up call."""
    run()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        run()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def bench_corruption(
    cases: tuple[tuple[tuple[int, int, int], int], ...] = (((128, 128, 128), 4), ((197, 233, 189), 1)),
    device: str = "cpu",
    repeats: int = 5,
    artefacts: tuple[str, ...] | None = None,
) -> list[BenchRow]:
    """Time every artefact (or those named) on each ``(shape, batch)`` case.

    Volumes are the MNI152 1 mm T1 template (shipped by nilearn) cropped or padded to ``shape``.
    TorchIO always runs on the CPU, one volume at a time.
    """
    target = torch.device(device)
    template = tio.ScalarImage(tensor=mni_volume()[None], affine=torch.eye(4).numpy())
    rows = []
    pairs = _pairs()
    for shape, batch in cases:
        volume = tio.CropOrPad(shape)(template)
        images = volume.data[None].float().repeat(batch, 1, 1, 1, 1).to(target)
        subjects = [tio.ScalarImage(tensor=volume.data.clone(), affine=volume.affine) for _ in range(batch)]
        generator = torch.Generator(device=target).manual_seed(0)
        for name, (ours, theirs) in pairs.items():
            if artefacts is not None and name not in artefacts:
                continue
            ours_ms = _median_ms(lambda: ours(images, (1.0, 1.0, 1.0), generator), repeats, target)
            theirs_ms = _median_ms(lambda: [theirs(s) for s in subjects], repeats, torch.device("cpu"))
            rows.append(BenchRow(
                artefact=name, shape=list(shape), batch=batch, device=str(target),
                ours_ms_per_volume=round(ours_ms / batch, 2),
                torchio_ms_per_volume=round(theirs_ms / batch, 2),
                speedup=round(theirs_ms / ours_ms, 2),
            ))
    return rows


def rows_to_markdown(rows: list[BenchRow]) -> str:
    """A Markdown table of ``rows``, with the machine it ran on."""
    lines = [
        f"Machine: {describe_machine()}",
        "",
        "| artefact | shape | batch | device | ours ms/vol | TorchIO ms/vol | speed-up |",
        "|---|---|---|---|---:|---:|---:|",
    ]
    for r in rows:
        shape = "x".join(map(str, r.shape))
        lines.append(f"| {r.artefact} | {shape} | {r.batch} | {r.device} | {r.ours_ms_per_volume} | "
                     f"{r.torchio_ms_per_volume} | {r.speedup}x |")
    return "\n".join(lines)


def rows_to_json(rows: list[BenchRow]) -> list[dict]:
    """JSON-ready rows."""
    return [asdict(r) for r in rows]


__all__ = ["BenchRow", "bench_corruption", "rows_to_json", "rows_to_markdown"]
