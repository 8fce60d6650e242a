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
            ours_ms = _median_ms(lambda: ours(images, (1.0, 1.0, 1.0), generator), repeats, target)  # noqa: B023 (called here)
            theirs_ms = _median_ms(lambda: [theirs(s) for s in subjects], repeats, torch.device("cpu"))  # noqa: B023
            rows.append(BenchRow(
                artefact=name, shape=list(shape), batch=batch, device=str(target),
                ours_ms_per_volume=round(ours_ms / batch, 2),
                torchio_ms_per_volume=round(theirs_ms / batch, 2),
                speedup=round(theirs_ms / ours_ms, 2),
            ))
    return rows


@dataclass(frozen=True)
class PowerRow:
    """What a motion transform keeps of white noise: power (mean of squares, output over input) and
    the share of spectral power above a quarter of the sampling frequency along each axis."""

    transform: str
    power_kept: float
    high_frequency_share: list[float]


def high_frequency_share(x: torch.Tensor) -> list[float]:
    """Share of spectral power above a quarter of the sampling frequency along each spatial axis of
    ``x`` ``(..., D, H, W)``: 0.5 for white noise, less for a low-pass-filtered copy."""
    spectrum = torch.fft.fftn(x.double(), dim=(-3, -2, -1)).abs() ** 2
    shares = []
    for dim in (-3, -2, -1):
        shape = [1] * x.ndim
        shape[dim] = x.shape[dim]
        high = (torch.fft.fftfreq(x.shape[dim]).abs() > 0.25).reshape(shape)
        shares.append(float((spectrum * high).sum() / spectrum.sum()))
    return shares


def motion_white_noise(degrees: float = 5.0, translation: float = 5.0, seed: int = 0) -> list[PowerRow]:
    """White noise ``(2, 1, 96, 96, 96)`` at 2 mm through our motion and TorchIO's, same ranges.

    Our row is the resampling of each moved pose (the zero-mean noise's spectrum is only meaningful
    before the magnitude, which moves power to DC) and the whole artefact's power; TorchIO's is its
    ``RandomMotion`` output (real part of trilinear copies).
    """
    from hetero_qc.corruption.motion import euler_matrix, resample

    noise = torch.randn(2, 1, 96, 96, 96, generator=torch.Generator().manual_seed(seed))
    mean_square = float((noise.double() ** 2).mean())
    ours = RandomMotion(degrees=degrees, translation=translation)
    drawn = ours.sample(noise, torch.Generator().manual_seed(seed + 1))
    moved = resample(noise, euler_matrix(drawn.degrees), drawn.translation, (2.0, 2.0, 2.0))
    whole = ours.apply(noise, drawn, (2.0, 2.0, 2.0))
    theirs = tio.RandomMotion(degrees=degrees, translation=translation)
    affine = torch.diag(torch.tensor([2.0, 2.0, 2.0, 1.0])).numpy()
    torch.manual_seed(seed)
    torchio = torch.stack([theirs(tio.ScalarImage(tensor=n.clone(), affine=affine)).data for n in noise])

    def row(name: str, x: torch.Tensor, spectrum_of: torch.Tensor) -> PowerRow:
        return PowerRow(name, round(float((x.double() ** 2).mean()) / mean_square, 3),
                        [round(share, 3) for share in high_frequency_share(spectrum_of)])

    return [
        row("input", noise, noise),
        row(f"ours, each pose resampled, +-{degrees:g} deg, +-{translation:g} mm", moved, moved),
        row(f"ours, RandomMotion (power; spectrum of the poses above), +-{degrees:g} deg, +-{translation:g} mm",
            whole, moved),
        row(f"TorchIO RandomMotion, +-{degrees:g} deg, +-{translation:g} mm", torchio, torchio),
    ]


def power_to_markdown(rows: list[PowerRow]) -> str:
    """A Markdown table of what motion keeps of white noise."""
    lines = ["| white noise, 96^3 at 2 mm | power kept | HF share along axes 0 / 1 / 2 |", "|---|---:|---|"]
    lines += [f"| {r.transform} | {r.power_kept} | {' / '.join(map(str, r.high_frequency_share))} |" for r in rows]
    return "\n".join(lines)


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
