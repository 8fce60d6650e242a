"""Lightning's overhead per training step against a bare PyTorch loop, and inference time per volume.

Both loops do the same work, step for step: the same network (the ``recon_cpu`` experiment's by
default), the same batches of IXI patches (drawn once, beforehand, and timed on their own), the same
corruption draws (the global generator seeded where each loop starts), the same loss, optimiser,
schedule and autocast, in one process. Each loop's per-step losses are returned, so that a reader
(and the test) can check that the two did the same work before comparing their times: with a
DataLoader in the loop, the draws of the data and of the corruption interleave differently under
Lightning's prefetching, so the two loops corrupted different artefacts (a motion step costs more
than a noise step) and the "overhead" of short runs was mostly that difference. A step's time is
the interval between consecutive batch starts, so loop bookkeeping counts; the median is reported
after warm-up steps. The first loop of a process runs slow for many more steps than those (plain
first: 1053 ms, then Lightning 914 ms, then plain again 926 ms per step of ``recon_cpu``; a
throwaway run in that order), which had made Lightning look 19% slower when it ran first; so a
plain loop runs first, untimed for the comparison (``first_loop_ms_per_step``), then Lightning,
then the plain loop that is compared, then the same plain loop with ``torch.compile`` toggled
(compiled against eager, side by side). Volumes per hour add the data time back where the DataLoader has no workers
(then it is on the training's critical path).

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
from torch.utils.data import DataLoader
from torch.utils.flop_counter import FlopCounterMode

from hetero_qc.bench.machine import describe_machine
from hetero_qc.config import compose_train
from hetero_qc.inference import predict
from hetero_qc.paths import REPO_ROOT
from hetero_qc.precision import autocast_dtype, lightning_precision

WARMUP = 3


class _StepTimer(Callback):
    """Seeds the global generator where the loop starts; records each batch's start and its loss."""

    def __init__(self, seed: int) -> None:
        self.seed, self.starts, self.losses = seed, [], []

    def on_train_start(self, trainer, module) -> None:
        torch.manual_seed(self.seed)

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        self.starts.append(time.perf_counter())

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        self.losses.append(float(outputs["loss"]))


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


def _plain_step(plain, batch, optimizer, scaler, target: torch.device, autocast) -> float:
    """One step of the bare loop: corruption, forward, loss, backward, update; returns the loss."""
    corrupted, batch = plain.training_inputs(batch)
    with torch.autocast(target.type, dtype=autocast or torch.bfloat16, enabled=autocast is not None):
        out = plain.training_forward(corrupted)
    loss = plain.regression_loss(out, batch.image) + plain.task_loss(out, batch)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    return loss.item()


def _as_is(batch):
    return batch


def draw_batches(datamodule, count: int, seed: int) -> tuple[list, float]:
    """``count`` training batches drawn from the datamodule's loader, and the median ms per batch.

    The draws are timed in a first pass whose batches are dropped, as training drops each after its
    step, and then drawn again with the same seed and kept: kept batches make every draw allocate
    fresh memory, which doubled the time per batch (218 against 106 ms for ``recon_cpu`` in a throwaway
    timing beside a training run)."""
    def draws():
        torch.manual_seed(seed)
        loader = (batch for _ in range(count) for batch in datamodule.train_dataloader())  # epochs as needed
        return (next(loader) for _ in range(count))

    times = []
    start = time.perf_counter()
    for _ in draws():
        times.append(time.perf_counter() - start)
        start = time.perf_counter()
    return list(draws()), 1000 * statistics.median(times)


def _plain_loop(cfg, batches: list, target: torch.device, autocast,
                compile: bool | None = None) -> tuple[float, list[float], tuple]:
    """The bare loop over ``batches``, seeded as the Lightning run is: median ms per step, the losses,
    and what a further step needs (the module, the last batch, the optimiser, the scaler).
    ``compile``: the module's ``compile`` setting instead of the experiment's."""
    L.seed_everything(0)
    settings = {} if compile is None else {"compile": compile}
    plain = instantiate(cfg.model, _recursive_=False, **settings).to(target)  # the same network, corruption and loss
    optimizers = plain.configure_optimizers()
    plain.compile_training_forward()
    optimizer, scheduler = ((optimizers["optimizer"], optimizers["lr_scheduler"]["scheduler"])
                            if isinstance(optimizers, dict) else (optimizers, None))
    scaler = torch.amp.GradScaler(enabled=target.type == "cuda")
    starts, losses = [], []
    torch.manual_seed(1)
    for host_batch in batches:
        starts.append(time.perf_counter())
        batch = host_batch._replace(**{f: getattr(host_batch, f).to(target) for f in ("image", "head", "brain", "cgm")})
        losses.append(_plain_step(plain, batch, optimizer, scaler, target, autocast))
        if scheduler is not None:
            scheduler.step()
    starts.append(time.perf_counter())
    return _median_interval(starts), losses, (plain, batch, optimizer, scaler)


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
    # the peak first, before anything has run: measured after the loops it read 2.08, 1.93, 0.67 and 1.58
    # TFLOP/s in four runs of nearly the same code (BENCHMARKS.md, stop 38)
    peak_dtype = (autocast or torch.float32) if device == "cpu" else torch.float16
    peak = matmul_peak_tflops(target, peak_dtype, repeats=10)
    batches, data_ms = draw_batches(datamodule, steps + WARMUP + 1, seed=0)

    first_ms, *_ = _plain_loop(cfg, batches, target, autocast)  # warms the process up; not compared
    L.seed_everything(0)
    module = instantiate(cfg.model, _recursive_=False)
    timer = _StepTimer(seed=1)
    trainer = L.Trainer(accelerator="gpu" if device == "cuda" else "cpu", devices=1,
                        precision=lightning_precision(target.type), max_steps=len(batches),
                        logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, limit_val_batches=0, callbacks=[timer])
    trainer.fit(module, train_dataloaders=DataLoader(batches, batch_size=None, collate_fn=_as_is))
    lightning_ms = _median_interval(timer.starts)

    plain_ms, losses, state = _plain_loop(cfg, batches, target, autocast)
    # the same loop with the network's training forward compiled (torch.compile) and not, side by side
    compiled = bool(cfg.model.get("compile", False))
    other_ms, other_losses, other_state = _plain_loop(cfg, batches, target, autocast, compile=not compiled)
    runs = {compiled: (plain_ms, losses, state), not compiled: (other_ms, other_losses, other_state)}
    (eager_ms, eager_losses, eager_state), (compiled_ms, compiled_losses, _) = runs[False], runs[True]
    step_ms = lightning_ms + (data_ms if cfg.data.num_workers == 0 else 0.0)

    with FlopCounterMode(display=False) as counter:  # on the eager loop: the counter does not see into
        _plain_step(*eager_state, target, autocast)  # compiled kernels, and the maths is the same
    flops = counter.get_total_flops()
    operators = top_operators(*state, target, autocast)  # the recipe's own step
    achieved = flops / (plain_ms / 1000) / 1e12

    net = state[0].net.eval()
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
        "first_loop_ms_per_step": round(first_ms, 1),
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
        "data_ms_per_step": round(data_ms, 1),
        "samples_per_hour": round(cfg.data.batch_size * 3600 / (step_ms / 1000)),
        "compile": compiled,
        "eager_ms_per_step": round(eager_ms, 1),
        "compiled_ms_per_step": round(compiled_ms, 1),
        "compile_speedup": round(eager_ms / compiled_ms, 3),
        "compiled_max_loss_difference": _significant(max(abs(a - b) for a, b in zip(eager_losses, compiled_losses))),
        "losses_lightning": [_significant(v, 8) for v in timer.losses],
        "losses_plain": [_significant(v, 8) for v in losses],
        "top_operators": operators,
    }


def max_loss_difference(result: dict) -> float:
    """The largest per-step difference between the two loops' losses (0 when they did the same work)."""
    return max(abs(a - b) for a, b in zip(result["losses_lightning"], result["losses_plain"], strict=True))


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
        f"{result['samples_per_hour']} training volumes per hour (drawing a batch: "
        f"{result['data_ms_per_step']} ms, outside both loops' times). Per-step losses, Lightning against "
        f"plain, differ by at most {max_loss_difference(result):.2g}: the two loops did the same work. "
        f"A plain loop ran first to warm the process up: {result['first_loop_ms_per_step']} ms per step.",
        "",
        f"The plain loop with the training forward compiled (`torch.compile`, inductor) against eager, both in "
        f"this run (the recipe's `model.compile`: {str(result['compile']).lower()}): {result['compiled_ms_per_step']} "
        f"against {result['eager_ms_per_step']} ms per step, {result['compile_speedup']}x (compiling not counted: "
        f"it falls in the warm-up steps); per-step losses differ by at most {result['compiled_max_loss_difference']:.2g}.",
        "",
        "| operator (one plain step, torch.profiler) | self ms | share |",
        "|---|---:|---:|",
        *[f"| `{o['operator']}` | {o['ms']} | {100 * o['share']:.1f}% |" for o in result["top_operators"]],
    ])
