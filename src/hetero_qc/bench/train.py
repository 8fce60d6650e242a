"""Lightning's overhead per training step against a bare PyTorch loop, and inference time per volume.

Both loops run the same network (the ``recon_cpu`` experiment's), the same corruption on the batch,
the same loss, optimiser and autocast, over the same DataLoader of IXI patches, in one process.
A step's time is the interval between consecutive batch starts, so data loading and loop
bookkeeping count; the median is reported after warm-up steps.

Utilisation, in the same run: the network's FLOPs per step (forward and backward, counted by
``torch.utils.flop_counter.FlopCounterMode``), the achieved FLOP/s of the plain loop, the machine's
matmul peak in the training precision (bf16 where the CPU has it natively, else float32: the peak of
the arithmetic the step actually uses), their ratio (MFU), and training volumes per hour.
"""

from __future__ import annotations

import statistics
import time

import lightning as L
import torch
from hydra.utils import instantiate
from lightning.pytorch.callbacks import Callback
from omegaconf import open_dict
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import FlopCounterMode

from hetero_qc.bench.machine import describe_machine
from hetero_qc.config import compose_train
from hetero_qc.inference import predict
from hetero_qc.paths import REPO_ROOT
from hetero_qc.precision import autocast_dtype, lightning_precision

WARMUP = 3


class _StepTimer(Callback):
    def __init__(self) -> None:
        self.starts: list[float] = []

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        self.starts.append(time.perf_counter())


def _median_interval(starts: list[float]) -> float:
    intervals = [b - a for a, b in zip(starts, starts[1:])][WARMUP:]
    return 1000 * statistics.median(intervals)


def matmul_peak_tflops(device: torch.device, dtype: torch.dtype, size: int = 2048, repeats: int = 5) -> float:
    """The best of ``repeats`` ``size``-square matmuls in ``dtype``, in TFLOP/s (2 n^3 per product)."""
    a, b = (torch.randn(size, size, device=device).to(dtype) for _ in range(2))
    best = float("inf")
    for _ in range(repeats + 1):  # the first warms the kernels up
        start = time.perf_counter()
        a @ b
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e12


def _plain_step(plain, batch, optimizer, scaler, target: torch.device, autocast) -> None:
    """One step of the bare loop: corruption, forward, loss, backward, update."""
    corrupted, batch = plain.training_inputs(batch)
    with torch.autocast(target.type, dtype=autocast or torch.bfloat16, enabled=autocast is not None):
        out = plain.net(corrupted.contiguous(memory_format=plain.memory_format))
    loss = plain.regression_loss(out, batch.image) + plain.task_loss(out, batch)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()


def top_operators(plain, batch, optimizer, scaler, target: torch.device, autocast, rows: int = 8) -> list[dict]:
    """The operators of one plain step by self time (``torch.profiler``): name, ms, share."""
    with profile(activities=[ProfilerActivity.CPU, *([ProfilerActivity.CUDA] if target.type == "cuda" else [])]) as prof:
        _plain_step(plain, batch, optimizer, scaler, target, autocast)
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events)
    return [{"operator": e.key, "ms": round(e.self_cpu_time_total / 1000, 1),
             "share": round(e.self_cpu_time_total / total, 3)} for e in events[:rows]]


def _significant(value: float, digits: int = 4) -> float:
    return float(f"{value:.{digits}g}")


def _config(device: str, steps: int, overrides: tuple[str, ...], experiment: str = "recon_cpu"):
    cfg = compose_train([f"experiment={experiment}", f"data.samples_per_epoch={2 * (steps + WARMUP + 2)}",
                         "data.max_eval_subjects=1", *overrides], REPO_ROOT / ".cache" / "bench_train")
    with open_dict(cfg):
        cfg.data.split_dir = None
    if device == "cuda":
        cfg.trainer.accelerator, cfg.trainer.precision = "gpu", "16-mixed"
    return cfg


def bench_train(device: str = "cpu", steps: int = 20, overrides: tuple[str, ...] = (),
                experiment: str = "recon_cpu") -> dict:
    """Time ``steps`` training steps both ways and whole-volume inference; returns the result row.

    ``overrides`` are Hydra overrides on top of ``experiment`` (tests shrink it).
    """
    cfg = _config(device, steps, overrides, experiment)
    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    target = torch.device(device)
    autocast = autocast_dtype(target.type)

    L.seed_everything(0)
    module = instantiate(cfg.model, _recursive_=False)
    timer = _StepTimer()
    trainer = L.Trainer(accelerator="gpu" if device == "cuda" else "cpu", devices=1,
                        precision=lightning_precision(target.type), max_steps=steps + WARMUP + 1,
                        logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, limit_val_batches=0, callbacks=[timer])
    trainer.fit(module, train_dataloaders=datamodule.train_dataloader())
    lightning_ms = _median_interval(timer.starts)

    L.seed_everything(0)
    plain = instantiate(cfg.model, _recursive_=False).to(target)  # the same network, corruption and loss
    optimizer = instantiate(cfg.model.optimizer)(params=plain.parameters())
    scaler = torch.amp.GradScaler(enabled=device == "cuda")
    starts = []
    batches = (batch for _ in range(steps + WARMUP + 2) for batch in datamodule.train_dataloader())
    for index, batch in enumerate(batches):
        starts.append(time.perf_counter())
        if index == steps + WARMUP + 1:
            break
        batch = batch._replace(**{f: getattr(batch, f).to(target) for f in ("image", "head", "brain", "cgm")})
        _plain_step(plain, batch, optimizer, scaler, target, autocast)
    plain_ms = _median_interval(starts)

    with FlopCounterMode(display=False) as counter:
        _plain_step(plain, batch, optimizer, scaler, target, autocast)
    flops = counter.get_total_flops()
    operators = top_operators(plain, batch, optimizer, scaler, target, autocast)
    peak_dtype = (autocast or torch.float32) if device == "cpu" else torch.float16
    peak = matmul_peak_tflops(target, peak_dtype)
    achieved = flops / (plain_ms / 1000) / 1e12

    net = plain.net.eval()
    volume = datamodule.scans["val"][0].image[None].to(target)
    times = []
    for _ in range(3):
        start = time.perf_counter()
        with torch.autocast(target.type, dtype=autocast or torch.bfloat16, enabled=autocast is not None):
            predict(net, volume, tuple(cfg.data.patch_size))
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return {
        "lightning_ms_per_step": round(lightning_ms, 1),
        "plain_ms_per_step": round(plain_ms, 1),
        "overhead": round(lightning_ms / plain_ms - 1, 4),
        "inference_s_per_volume": round(statistics.median(times), 3),
        "volume_shape": list(volume.shape[2:]),
        "device": device,
        "steps": steps,
        "experiment": experiment,
        "gflops_per_step": round(flops / 1e9, 2),
        "achieved_tflops": _significant(achieved),
        "peak_tflops": _significant(peak),
        "peak_dtype": str(peak_dtype).removeprefix("torch."),
        "mfu": _significant(achieved / peak),
        "samples_per_hour": round(cfg.data.batch_size * 3600 / (lightning_ms / 1000)),
        "top_operators": operators,
    }


def to_markdown(result: dict) -> str:
    shape = "x".join(map(str, result["volume_shape"]))
    return "\n".join([
        f"Machine: {describe_machine()}",
        "",
        "| device | Lightning ms/step | plain PyTorch ms/step | overhead | inference s/volume |",
        "|---|---:|---:|---:|---:|",
        f"| {result['device']} | {result['lightning_ms_per_step']} | {result['plain_ms_per_step']} | "
        f"{100 * result['overhead']:.1f}% | {result['inference_s_per_volume']} ({shape}) |",
        "",
        f"Experiment `{result['experiment']}`: {result['gflops_per_step']} GFLOP per step (FlopCounterMode), "
        f"{result['achieved_tflops']} TFLOP/s achieved by the plain loop against a {result['peak_dtype']} "
        f"matmul peak of {result['peak_tflops']} TFLOP/s measured in the same run: MFU {result['mfu']:.3f}; "
        f"{result['samples_per_hour']} training volumes per hour.",
        "",
        "| operator (one plain step, torch.profiler) | self ms | share |",
        "|---|---:|---:|",
        *[f"| `{o['operator']}` | {o['ms']} | {100 * o['share']:.1f}% |" for o in result["top_operators"]],
    ])
