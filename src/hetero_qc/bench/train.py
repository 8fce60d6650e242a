"""Lightning's overhead per training step against a bare PyTorch loop, and inference time per volume.

Both loops run the same network (the ``recon_cpu`` experiment's), the same corruption on the batch,
the same loss, optimiser and autocast, over the same DataLoader of IXI patches, in one process.
A step's time is the interval between consecutive batch starts, so data loading and loop
bookkeeping count; the median is reported after warm-up steps.
"""

from __future__ import annotations

import statistics
import time

import lightning as L
import torch
from hydra.utils import instantiate
from lightning.pytorch.callbacks import Callback
from omegaconf import open_dict

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


def _config(device: str, steps: int, overrides: tuple[str, ...]):
    cfg = compose_train(["experiment=recon_cpu", f"data.samples_per_epoch={2 * (steps + WARMUP + 2)}",
                         "data.max_eval_subjects=1", *overrides], REPO_ROOT / ".cache" / "bench_train")
    with open_dict(cfg):
        cfg.data.split_dir = None
    if device == "cuda":
        cfg.trainer.accelerator, cfg.trainer.precision = "gpu", "16-mixed"
    return cfg


def bench_train(device: str = "cpu", steps: int = 20, overrides: tuple[str, ...] = ()) -> dict:
    """Time ``steps`` training steps both ways and whole-volume inference; returns the result row.

    ``overrides`` are Hydra overrides on top of the ``recon_cpu`` experiment (tests shrink it).
    """
    cfg = _config(device, steps, overrides)
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
        corrupted, batch = plain.training_inputs(batch)
        with torch.autocast(target.type, dtype=autocast or torch.bfloat16, enabled=autocast is not None):
            out = plain.net(corrupted)
        loss = plain.regression_loss(out, batch.image)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    plain_ms = _median_interval(starts)

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
    ])
