"""Lightning modules: corruption on the device, the paper's losses, per-volume evaluation.

``HeteroModule`` holds everything the two tasks share (corruption, regression loss, evaluation);
``ReconstructionModule`` and ``MultiTaskModule`` differ only in the segmentation term and metric.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import Tensor
from torchmetrics.functional.classification import binary_auroc

import hetero_qc
from hetero_qc.data.datasets import Batch, cut_patches
from hetero_qc.inference import CHECKPOINT_FORMAT, predict, sigma
from hetero_qc.losses import consistency_kl, heteroscedastic_nll, uncertainty_weighted_ce
from hetero_qc.metrics import (
    Metric,
    dice,
    key,
    predicted_cgm,
    psnr,
    scan_sigma_r,
    scan_sigma_s,
    sigma_error_spearman,
    ssim,
    worst_voxel_errors,
)
from hetero_qc.models.networks import NetOutput


def _plain(node: Any) -> Any:
    return OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node


class HeteroModule(L.LightningModule):
    """Shared training and evaluation of the heteroscedastic networks.

    Args (plain config dicts, instantiated here so that checkpoints describe themselves):
        net: the network (``_target_`` a :mod:`hetero_qc.models` class).
        corruption: the corruption pipeline applied to each training batch on its device.
        val_corruption: the pipeline of the fixed, seeded validation and test corruptions.
        optimizer: a ``_partial_`` optimizer (paper: Adam, lr 1e-4).
        scheduler: a ``_partial_`` learning-rate scheduler stepped every training step, or ``None``
            (the paper's constant rate).
        roi_size: sliding-window size for whole-volume evaluation.
        beta: beta-NLL weight of the regression term (0 is the paper's Eq. 1).
        decoupled_variance: the log-variance gets Eq. 1's unweighted gradient on the detached
            mean's residual, the mean keeps beta-NLL's (:func:`~hetero_qc.losses.heteroscedastic_nll`).
        seg_beta: the same weight for the segmentation term (Eq. 2; multi-task only).
        seg_consistency: weight of :func:`~hetero_qc.losses.consistency_kl`, the corrupted patches'
            segmentation pulled towards the network's own on the clean patches (a second forward, without
            gradient; multi-task only). 0 (off) is the paper's loss.
        mean_warmup_steps: steps during which only the mean is trained (MSE), before the NLL.
        val_seed: seed of the fixed validation corruptions (volume ``i`` uses ``val_seed + i``).
        preprocessing: the data's preprocessing settings, kept in checkpoints so that inference on new
            scans (the QC tool) prepares them exactly as in training.
        damage_check: a corruption (the Fig 4 statistic: moderate motion) also applied to each
            validation volume, seeded; at the end of each validation the AUROC of the scan scores
            (:func:`~hetero_qc.metrics.scan_sigma_r`, and ``scan_sigma_s``) of those copies against the
            clean volumes is logged, so that a long run shows when (and whether) sigma learns the
            damage, not only the loss. ``None``: off.
        channels_last: run the network in ``channels_last_3d`` memory format (the same maths; faster
            convolution backward passes on the CPU, BENCHMARKS.md).
        norm_share_lr: the learning rate of mixed norms' instance shares
            (:class:`~hetero_qc.models.unet.MixedNorm3d`); ``None``: the optimizer's. A share spans [0, 1],
            which at the weights' 1e-4 Adam would take 10k steps to cross.
        compile: run the training step's forward through ``torch.compile`` (inductor: the norms,
            activations and concatenations between the convolutions fused into generated kernels),
            compiled when fitting starts (:meth:`compile_training_forward`); validation, evaluation and
            inference keep the eager network, whose window shapes would each compile anew.
    """

    def __init__(
        self,
        net: dict,
        corruption: dict,
        val_corruption: dict,
        optimizer: dict,
        scheduler: dict | None = None,
        roi_size: tuple[int, int, int] = (64, 64, 64),
        beta: float = 0.0,
        decoupled_variance: bool = False,
        seg_beta: float = 0.0,
        seg_consistency: float = 0.0,
        mean_warmup_steps: int = 0,
        val_seed: int = 1234,
        preprocessing: dict | None = None,
        damage_check: dict | None = None,
        channels_last: bool = False,
        compile: bool = False,
        norm_share_lr: float | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters({"net": _plain(net), "corruption": _plain(corruption),
                                   "val_corruption": _plain(val_corruption),
                                   "optimizer": _plain(optimizer), "scheduler": _plain(scheduler),
                                   "roi_size": list(roi_size), "beta": beta,
                                   "decoupled_variance": decoupled_variance, "seg_beta": seg_beta,
                                   "seg_consistency": seg_consistency,
                                   "mean_warmup_steps": mean_warmup_steps, "val_seed": val_seed,
                                   "preprocessing": _plain(preprocessing), "damage_check": _plain(damage_check),
                                   "channels_last": channels_last, "compile": compile,
                                   "norm_share_lr": norm_share_lr})
        self.net = instantiate(self.hparams.net)
        self.memory_format = torch.channels_last_3d if channels_last else torch.contiguous_format
        self.net.to(memory_format=self.memory_format)
        self.corruption = instantiate(self.hparams.corruption)
        self.val_corruption = instantiate(self.hparams.val_corruption)
        self.damage_check = instantiate(self.hparams.damage_check) if damage_check else None
        self._damage_scores: list[tuple[Tensor, ...]] = []  # per validation volume: clean, damaged
        self._compiled_forward: Callable[[Tensor], NetOutput] | None = None  # a function, not a submodule:
        # the state dict keeps the network's own keys

    def compile_training_forward(self) -> None:
        """With ``compile``, compile the network's forward for the training step (once).

        Raises:
            ValueError: no C++ compiler is on the PATH (inductor builds its kernels with one); checked
                here, when training starts, not when a checkpoint is loaded for inference.
        """
        if self.hparams.get("compile", False) and self._compiled_forward is None:
            if not any(shutil.which(c) for c in ("c++", "g++", "clang++")):
                raise ValueError("model.compile=true needs a C++ compiler (torch.compile builds its kernels with one) "
                                 "and none is on the PATH: install one, or train with model.compile=false")
            self._compiled_forward = torch.compile(self.net.forward)

    def on_fit_start(self) -> None:
        self.compile_training_forward()

    def training_forward(self, corrupted: Tensor) -> NetOutput:
        """The network on the corrupted training patches ``(B, 1, D, H, W)``, in its memory format,
        compiled with ``compile``."""
        forward = self._compiled_forward or self.net
        return forward(corrupted.contiguous(memory_format=self.memory_format))

    # --- the step ------------------------------------------------------------------------------

    def corrupt(self, batch: Batch, generator: torch.Generator | None = None,
                transform: Callable | None = None) -> Tensor:
        """Corrupt the clean batch on its device, in float32 whatever the autocast, with ``transform``
        (a pipeline or one artefact; default: the training corruption)."""
        spacing = batch.spacing[0]  # host floats (Batch)
        transform = self.corruption if transform is None else transform
        with torch.autocast(self.device.type, enabled=False):
            return transform(batch.image.float(), spacing, generator, batch.brain).image

    def training_inputs(self, batch: Batch) -> tuple[Tensor, Batch]:
        """The corrupted training patches and the clean batch cut to them: the whole volumes are
        corrupted first (k-space artefacts act on the whole acquisition, :class:`PatchDataset`)."""
        corrupted = self.corrupt(batch)
        if batch.patch is None:
            return corrupted, batch
        cut = [cut_patches(v, batch.patch) for v in (corrupted, batch.image, batch.head, batch.brain, batch.cgm)]
        return cut[0], batch._replace(image=cut[1], head=cut[2], brain=cut[3], cgm=cut[4], patch=None)

    def regression_loss(self, out: NetOutput, clean: Tensor) -> Tensor:
        if self.global_step < self.hparams.mean_warmup_steps:
            return torch.mean((out.mean.float() - clean) ** 2)
        return heteroscedastic_nll(out.mean, out.log_var, clean, beta=self.hparams.beta,
                                   decoupled=self.hparams.get("decoupled_variance", False))

    def task_loss(self, out: NetOutput, batch: Batch) -> Tensor:
        """Extra loss terms of the subclass (none here)."""
        return out.mean.new_zeros(())

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        corrupted, batch = self.training_inputs(Batch(*batch))
        out = self.training_forward(corrupted)
        loss = self.regression_loss(out, batch.image) + self.task_loss(out, batch)
        self.log(key("train", Metric.LOSS), loss, prog_bar=True, batch_size=batch.image.shape[0])
        return loss

    # --- evaluation, per volume ---------------------------------------------------------------

    def evaluate(self, batch: Batch, batch_idx: int, stage: str) -> None:
        batch = Batch(*batch)
        generator = torch.Generator(device=self.device).manual_seed(self.hparams.val_seed + batch_idx)
        corrupted = self.corrupt(batch, generator, self.val_corruption)
        out = predict(self.net, corrupted, tuple(self.hparams.roi_size))
        clean, head = batch.image, batch.head
        error = out.mean - clean
        clean_out = predict(self.net, clean, tuple(self.hparams.roi_size)) if self.needs_clean_pass(stage) else None
        worst, worst_input = worst_voxel_errors(out.mean, corrupted, clean, head)
        metrics = {
            Metric.NLL: heteroscedastic_nll(out.mean, out.log_var, clean, head),
            Metric.PSNR_INPUT: psnr(corrupted, clean),
            Metric.PSNR_RECON: psnr(out.mean, clean),
            Metric.SSIM_RECON: ssim(out.mean, clean),
            Metric.SPEARMAN: sigma_error_spearman(sigma(out.log_var), error, head),
            Metric.MAX_ERROR: worst,
            Metric.MAX_ERROR_INPUT: worst_input,
            **self.task_metrics(clean_out, batch),
        }
        for metric, value in metrics.items():
            self.log(key(stage, metric), value, batch_size=1, sync_dist=True)
        if batch_idx == 0 and stage == "val":
            self.save_panel(corrupted, out)
        if stage == "val" and self.damage_check is not None:
            self.record_damage(batch, batch_idx, clean_out)

    def needs_clean_pass(self, stage: str) -> bool:
        """Whether evaluation also predicts on the clean volume (the damage check, the task metrics)."""
        return stage == "val" and self.damage_check is not None

    def task_metrics(self, clean_out: NetOutput | None, batch: Batch) -> dict[Metric, Tensor]:
        """Extra metrics of the subclass, from the prediction on the clean volume (none here)."""
        return {}

    def scan_scores(self, out: NetOutput, head: Tensor) -> tuple[Tensor, ...]:
        """The scan scores a copy is judged by: sigma_r (and sigma_s in the subclass)."""
        return (scan_sigma_r(out.log_var, head),)

    def record_damage(self, batch: Batch, batch_idx: int, clean_out: NetOutput) -> None:
        """Score the clean volume and its seeded damaged copy (``damage_check``)."""
        generator = torch.Generator(device=self.device).manual_seed(self.hparams.val_seed + 10_000 + batch_idx)
        damaged_out = predict(self.net, self.corrupt(batch, generator, self.damage_check), tuple(self.hparams.roi_size))
        self._damage_scores.append((torch.stack(self.scan_scores(clean_out, batch.head)),
                                    torch.stack(self.scan_scores(damaged_out, batch.head))))

    def on_validation_epoch_end(self) -> None:
        """Log each scan score's AUROC of damaged against clean volumes (``damage_check``)."""
        if not self._damage_scores:
            return
        clean, damaged = (torch.stack(s).float() for s in zip(*self._damage_scores))  # (N, scores) each
        self._damage_scores.clear()
        target = torch.cat([torch.zeros(len(clean)), torch.ones(len(damaged))]).long()
        for index, metric in enumerate((Metric.AUROC_DAMAGE_SIGMA_R, Metric.AUROC_DAMAGE_SIGMA_S)[: clean.shape[1]]):
            scores = torch.cat([clean[:, index], damaged[:, index]]).cpu()
            self.log(key("val", metric), binary_auroc(scores, target), sync_dist=True)

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self.evaluate(batch, batch_idx, "val")

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self.evaluate(batch, batch_idx, "test")

    def save_panel(self, corrupted: Tensor, out: NetOutput) -> None:
        """Mid-slice panel (input, reconstruction, sigma, and segmentation maps) in the run folder."""
        if self.trainer is None or not self.trainer.is_global_zero or self.trainer.sanity_checking:
            return
        maps = {"input": corrupted, "reconstruction": out.mean, "sigma": sigma(out.log_var)}
        if out.seg_logits is not None:
            maps["CGM probability"] = out.seg_logits.softmax(1)[:, 1:]
            maps["sigma_s"] = sigma(out.seg_log_var)
        figure, axes = plt.subplots(1, len(maps), figsize=(3 * len(maps), 3.2))
        for ax, (name, volume) in zip(axes, maps.items()):
            ax.imshow(volume[0, 0, volume.shape[2] // 2].float().cpu().T, cmap="gray" if "sigma" not in name
                      else "magma", origin="lower")
            ax.set_title(name)
            ax.axis("off")
        folder = Path(self.trainer.default_root_dir) / "panels"
        folder.mkdir(parents=True, exist_ok=True)
        figure.tight_layout()
        figure.savefig(folder / f"step_{self.global_step:06d}.png", dpi=80)
        plt.close(figure)

    # --- optimisation and checkpoints -----------------------------------------------------------

    def configure_optimizers(self):
        shares = [p for name, p in self.named_parameters() if name.endswith(".instance_share")]
        params: list = list(self.parameters())
        if shares and self.hparams.get("norm_share_lr") is not None:
            ids = {id(share) for share in shares}
            rest = [p for p in params if id(p) not in ids]
            params = [{"params": rest}, {"params": shares, "lr": self.hparams.norm_share_lr}]
        optimizer = instantiate(self.hparams.optimizer)(params=params)
        if not self.hparams.scheduler:
            return optimizer
        scheduler = instantiate(self.hparams.scheduler)(optimizer)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["hetero_qc"] = {"format": CHECKPOINT_FORMAT, "version": hetero_qc.__version__,
                                   "module": type(self).__name__}


class ReconstructionModule(HeteroModule):
    """Heteroscedastic reconstruction only (paper Section 4)."""


class MultiTaskModule(HeteroModule):
    """Reconstruction plus CGM segmentation with a learned task uncertainty (paper Section 5, Eq. 3)."""

    def task_loss(self, out: NetOutput, batch: Batch) -> Tensor:
        loss = uncertainty_weighted_ce(out.seg_logits, out.seg_log_var, batch.cgm, beta=self.hparams.seg_beta)
        weight = self.hparams.get("seg_consistency", 0.0)
        if weight:
            with torch.no_grad():
                reference = self.training_forward(batch.image).seg_logits
            loss = loss + weight * consistency_kl(out.seg_logits, reference)
        return loss

    def needs_clean_pass(self, stage: str) -> bool:
        return True  # the CGM Dice is measured on the clean volume

    def task_metrics(self, clean_out: NetOutput | None, batch: Batch) -> dict[Metric, Tensor]:
        # Dice on the clean scan: the segmentation the network would give a good acquisition.
        return {Metric.DICE_CGM: dice(predicted_cgm(clean_out.seg_logits), batch.cgm)}

    def scan_scores(self, out: NetOutput, head: Tensor) -> tuple[Tensor, ...]:
        return (*super().scan_scores(out, head), scan_sigma_s(out.seg_logits, out.seg_log_var, head))
