"""Training through the real Hydra configs, shrunk to tiny volumes (MNI152 at 6 mm) and networks."""

from __future__ import annotations

import math
import socket
import subprocess
import sys
from pathlib import Path

import lightning as L
import pandas as pd
import pytest
import torch
from hydra.utils import instantiate
from lightning.pytorch.callbacks import Callback

from hetero_qc.config import compose_train
from hetero_qc.inference import load_model, predict
from hetero_qc.losses import consistency_kl
from hetero_qc.models.unet import FixedNorm3d
from hetero_qc.paths import CONFIG_DIR, REPO_ROOT
from hetero_qc.train import run, start_from

EXPERIMENTS = sorted(p.stem for p in (CONFIG_DIR / "experiment").glob("*.yaml"))
TINY = [
    "data=mni", "data.preprocessing.spacing=6.0", "data.patch_size=[16,16,16]", "data.batch_size=2",
    "data.samples_per_epoch=4", "data.num_workers=0",
    "model.net.unet.filters=[4,8,16]", "model.net.unet.kernels=[3,3,3]", "model.net.unet.strides=[1,2,2]",
    "trainer.accelerator=cpu", "trainer.devices=1", "trainer.precision=32", "trainer.strategy=auto",
    "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false",
    "model.compile=false",  # compiling costs tens of seconds per fit; tests/test_bench.py trains compiled
]


def config(tmp_path: Path, experiment: str, overrides: list[str]):
    return compose_train([f"experiment={experiment}", *TINY, f"paths.cache={tmp_path / 'cache'}", *overrides],
                         tmp_path)


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_runs_fast_dev_run(tmp_path, experiment):
    # One training and one validation batch: the returned validation NLL proves both ran. The tiny
    # network cannot take a fine-tuning recipe's full-size weights (tested below with tiny ones).
    nll = run(config(tmp_path, experiment, ["trainer.fast_dev_run=true", "init_from=null"]))
    assert nll is not None and math.isfinite(nll)
    assert (tmp_path / "split.json").exists() and (tmp_path / "config.yaml").exists()


def test_overfit_drives_loss_down_and_checkpoint_loads(tmp_path):
    # The shipped recipe (beta-NLL from the first step), scaled down.
    cfg = config(tmp_path, "recon_cpu", ["trainer.max_steps=80", "data.samples_per_epoch=40",
                                         "model.optimizer.lr=3e-3", "corruption=noise", "test=false",
                                         "trainer.log_every_n_steps=1"])
    run(cfg)
    metrics = pd.read_csv(tmp_path / "metrics.csv")
    nll = metrics.dropna(subset=["train/loss"])["train/loss"].to_numpy()
    assert nll[-5:].mean() < nll[:5].mean() - 0.15  # the beta-NLL falls well below its start (0.58 -> 0.37)
    assert {"val/nll", "val/psnr_recon", "val/psnr_input", "val/ssim_recon",
            "val/spearman_sigma_abs_error"} <= set(metrics.columns)
    assert {"val/max_abs_error", "val/max_abs_error_input"} <= set(metrics.columns)
    model = load_model(tmp_path / "checkpoints" / "last.ckpt")
    assert not model.multitask and model.roi_size is None and not model.mirror and model.global_step == 80
    out = predict(model.net, torch.rand(1, 1, 32, 40, 32), (16, 16, 16))
    assert out.mean.shape == (1, 1, 32, 40, 32) and torch.isfinite(out.log_var).all()


def test_resume_continues_the_step_count(tmp_path):
    first = config(tmp_path, "recon_cpu", ["trainer.max_steps=4", "test=false"])
    run(first)
    checkpoint = tmp_path / "checkpoints" / "last.ckpt"
    assert torch.load(checkpoint, weights_only=True)["global_step"] == 4
    second = config(tmp_path, "recon_cpu", ["trainer.max_steps=6", "test=false", f"ckpt_path={checkpoint}"])
    run(second)
    assert torch.load(checkpoint, weights_only=True)["global_step"] == 6


def test_foreign_or_tampered_checkpoints_are_refused(tmp_path):
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(ValueError, match="not a hetero_qc checkpoint"):
        load_model(foreign)
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(b"not a checkpoint at all")
    with pytest.raises(ValueError, match="not a loadable checkpoint"):
        load_model(garbage)


class SaveWeights(Callback):
    """Each rank writes its final weights, so the test can compare them."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def on_train_end(self, trainer, module) -> None:
        torch.save(module.net.state_dict(), self.folder / f"rank{trainer.global_rank}.pt")


def test_ddp_two_cpu_processes_end_with_the_same_weights(tmp_path, monkeypatch):
    with socket.socket() as probe:  # a free port: a fixed one can still be held by an earlier run
        probe.bind(("127.0.0.1", 0))
        monkeypatch.setenv("MASTER_PORT", str(probe.getsockname()[1]))
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    cfg = config(tmp_path, "recon_cpu", ["trainer.max_steps=3"])
    datamodule = instantiate(cfg.data)
    module = instantiate(cfg.model, _recursive_=False)
    trainer = L.Trainer(accelerator="cpu", devices=2, strategy="ddp_spawn", max_steps=3, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        limit_val_batches=0, callbacks=[SaveWeights(tmp_path)])
    trainer.fit(module, datamodule=datamodule)
    rank0, rank1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    initial = instantiate(cfg.model, _recursive_=False).net.state_dict()
    assert any(not torch.equal(rank0[k], initial[k]) for k in rank0)  # it trained
    for name in rank0:
        torch.testing.assert_close(rank0[name], rank1[name], rtol=0, atol=0)


def test_training_corrupts_whole_volumes_then_cuts_the_patches(tmp_path):
    # k-space motion of a patch would wrap its cut edges around; the patch must be cut from the
    # corrupted volume, as the scans the network scores are corrupted whole.
    cfg = config(tmp_path, "recon_cpu", ["corruption.p_clean=0", "corruption.steps.motion.p=1",
                                         *[f"corruption.steps.{s}.p=0" for s in ("bias_field", "ghosting",
                                           "spike", "partial_noise_box", "partial_noise_outside_brain", "noise")]])
    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    module = instantiate(cfg.model, _recursive_=False)
    batch = next(iter(datamodule.train_dataloader()))
    assert batch.image.shape[2:] == (32, 48, 32)  # whole MNI volumes at 6 mm, padded to a multiple of 16
    torch.manual_seed(3)
    corrupted, cut = module.training_inputs(batch)
    torch.manual_seed(3)
    whole = module.corrupt(batch)
    assert corrupted.shape == cut.image.shape == cut.cgm.shape == (2, 1, 16, 16, 16) and cut.patch is None
    (start, _), _ = batch.patch
    expected = whole[0, :, start[0]:start[0] + 16, start[1]:start[1] + 16, start[2]:start[2] + 16]
    torch.testing.assert_close(corrupted[0], expected, rtol=0, atol=0)
    assert (corrupted - cut.image).abs().mean() > 1e-3  # motion did change it
    patch_motion = module.corrupt(cut)  # what corrupting the patch itself would have given
    assert (patch_motion - corrupted).abs().mean() > 1e-3


def test_an_experiments_own_settings_win_over_the_train_defaults(tmp_path):
    cfg = config(tmp_path, "multitask_long", [])
    assert cfg.task_name == "multitask_long" and cfg.ckpt_path == "last" and cfg.checkpoint_every_n_steps == 50
    assert config(tmp_path, "recon_cpu", []).task_name == "recon_cpu"


def test_long_recipe_resumes_from_its_own_last_checkpoint(tmp_path):
    # The long recipe, shrunk: a checkpoint every 2 steps, no validation until the end of its one epoch.
    # A 5-step run stopped after step 3 (its cosine schedule spans the 5 steps), then the same command.
    shrink = ["checkpoint_every_n_steps=2", "data.samples_per_epoch=8", "test=false", "model.scheduler.T_max=5",
              "trainer.log_every_n_steps=1"]
    run(config(tmp_path, "multitask_long", [*shrink, "trainer.max_steps=3"]))
    checkpoint = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["global_step"] == 3
    lr = checkpoint["optimizer_states"][0]["param_groups"][0]["lr"]
    assert 1e-5 < lr < 1e-3  # part way down the cosine
    run(config(tmp_path, "multitask_long", [*shrink, "trainer.max_steps=5"]))
    checkpoint = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["global_step"] == 5 and checkpoint["lr_schedulers"][0]["last_epoch"] == 5
    lr = checkpoint["optimizer_states"][0]["param_groups"][0]["lr"]
    assert lr == pytest.approx(1e-5, abs=1e-9)  # the schedule carried on to its end: eta_min
    logged = pd.read_csv(tmp_path / "metrics.csv").dropna(subset=["train/loss"])["step"]
    assert sorted(logged) == [0, 1, 2, 3, 4]  # the second chunk appended to the first's metrics.csv


def test_finetune_starts_a_new_run_from_another_runs_weights(tmp_path):
    # multitask_finetune, shrunk: the long recipe's weights (here a 2-step run's), a fresh step count
    # and optimiser at its own rate; a network of another shape is refused in one line.
    shrink = ["data.samples_per_epoch=8", "test=false", "trainer.log_every_n_steps=1"]
    run(config(tmp_path / "long", "multitask_long", [*shrink, "trainer.max_steps=2"]))
    source = tmp_path / "long" / "checkpoints" / "last.ckpt"
    cfg = config(tmp_path / "ft", "multitask_finetune", [*shrink, f"init_from={source}", "trainer.max_steps=0"])
    module = instantiate(cfg.model, _recursive_=False)
    start_from(module, source, instantiate(cfg.data))
    weights = load_model(source).net.state_dict()
    assert all(torch.equal(value, weights[name]) for name, value in module.net.state_dict().items())
    # The same weights into a network with fixed norms: their statistics estimated on clean patches.
    fixed_cfg = config(tmp_path / "fixed", "multitask_finetune", [*shrink, "model.net.unet.norm=fixed"])
    fixed = instantiate(fixed_cfg.model, _recursive_=False)
    start_from(fixed, source, instantiate(fixed_cfg.data))
    state = fixed.net.state_dict()
    assert all(torch.equal(value, state[name]) for name, value in weights.items())
    counts = {int(v) for k, v in state.items() if k.endswith("num_batches_tracked")}
    assert counts == {8}  # every patch of the shrunk epoch: 4 batches of 2, fewer than the 16 it would take
    variances = [v for k, v in state.items() if k.endswith("running_var")]
    assert len(variances) >= 10 and not any(torch.all(v == 1) for v in variances)
    # Into mixed norms: the same statistics estimated, each instance share at 1, so the network starts as the
    # instance-norm one it came from; the shares train at norm_share_lr, the weights at the optimiser's rate.
    mixed_cfg = config(tmp_path / "mixed", "multitask_finetune", [*shrink, "model.net.unet.norm=mixed",
                                                                  "model.norm_share_lr=0.01"])
    mixed = instantiate(mixed_cfg.model, _recursive_=False)
    start_from(mixed, source, instantiate(mixed_cfg.data))
    shares = [v for k, v in mixed.net.state_dict().items() if k.endswith("instance_share")]
    assert len(shares) == len(variances) and all(torch.all(v == 1) for v in shares)
    x = torch.rand(1, 1, 16, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(mixed.net.eval()(x).seg_logits, module.net.eval()(x).seg_logits)
    groups = mixed.configure_optimizers()["optimizer"].param_groups
    trained_shares = [p for name, p in mixed.named_parameters() if name.endswith("instance_share")]  # shared once
    assert [g["lr"] for g in groups] == [pytest.approx(1e-4), 0.01] and list(map(id, groups[1]["params"])) == list(map(id, trained_shares))
    # Fine-tuned with fixed norms: the checkpoint loads with its statistics, which training left alone;
    # and its statistics have no place in a network of instance norms.
    run(config(tmp_path / "fixed", "multitask_finetune", [*shrink, "model.net.unet.norm=fixed", f"init_from={source}",
                                                          "trainer.max_steps=2"]))
    tuned = load_model(tmp_path / "fixed" / "checkpoints" / "last.ckpt").net.state_dict()
    assert {int(v) for k, v in tuned.items() if k.endswith("num_batches_tracked")} == {8}  # none from training
    assert not any(torch.all(v == 1) for k, v in tuned.items() if k.endswith("running_var"))
    mixed = instantiate(mixed_cfg.model, _recursive_=False)  # from fixed norms: their statistics kept, not re-estimated
    start_from(mixed, tmp_path / "fixed" / "checkpoints" / "last.ckpt", instantiate(mixed_cfg.data))
    assert all(torch.equal(value, tuned[name]) for name, value in mixed.net.state_dict().items() if name in tuned)
    with pytest.raises(ValueError, match="not this run's model"):
        start_from(module, tmp_path / "fixed" / "checkpoints" / "last.ckpt", instantiate(cfg.data))
    # Into fixed norms with the bottleneck's made instance norms again: those drop their statistics only.
    deep_cfg = config(tmp_path / "deep", "multitask_finetune", [*shrink, "model.net.unet.norm=fixed",
                                                                "model.net.instance_norm_modules=[net.bottleneck]"])
    deep = instantiate(deep_cfg.model, _recursive_=False)
    start_from(deep, tmp_path / "fixed" / "checkpoints" / "last.ckpt", instantiate(deep_cfg.data))
    state = deep.net.state_dict()
    assert not any(k.startswith("net.bottleneck") and k.endswith("running_var") for k in state)
    assert all(torch.equal(value, tuned[name]) for name, value in state.items())
    fixed_norms = [sum(isinstance(m, FixedNorm3d) for m in n.net.modules()) for n in (fixed, deep)]  # each once
    assert fixed_norms[1] == fixed_norms[0] - 2  # the bottleneck's two norms, no other
    run(config(tmp_path / "ft", "multitask_finetune", [*shrink, f"init_from={source}", "trainer.max_steps=3"]))
    checkpoint = torch.load(tmp_path / "ft" / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["global_step"] == 3  # its own count, not 2 + 3
    assert checkpoint["lr_schedulers"][0]["base_lrs"] == [pytest.approx(1e-4)]
    # A second chunk resumes its own checkpoint and never reads init_from (nor re-estimates statistics).
    run(config(tmp_path / "ft", "multitask_finetune", [*shrink, f"init_from={tmp_path / 'gone.ckpt'}",
                                                       "trainer.max_steps=4"]))
    assert torch.load(tmp_path / "ft" / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 4
    other = config(tmp_path / "other", "multitask_finetune", [*shrink, "model.net.unet.filters=[4,8,32]"])
    with pytest.raises(ValueError, match="not this run's model"):
        start_from(instantiate(other.model, _recursive_=False), source, instantiate(other.data))


def test_validation_logs_the_damage_auroc_of_both_scores(tmp_path):
    run(config(tmp_path, "multitask_long", ["trainer.max_steps=2", "data.samples_per_epoch=4", "test=false",
                                            "trainer.log_every_n_steps=1"]))
    metrics = pd.read_csv(tmp_path / "metrics.csv")
    for name in ("val/auroc_damage_sigma_r", "val/auroc_damage_sigma_s"):
        values = metrics[name].dropna().to_numpy()
        assert len(values) == 1 and 0.0 <= values[0] <= 1.0  # one clean and one moved MNI copy: 0 or 1
        assert values[0] in (0.0, 1.0)
    assert metrics["val/dice_cgm"].dropna().between(0, 1).all()


def test_training_config_composes_inside_a_running_hydra_app(tmp_path):
    # `hetero-qc evaluate` (a Hydra app on the same config folder) composes the training config to
    # find its model; initialising Hydra a second time used to stop every evaluate run and sweep.
    from hydra import initialize_config_dir

    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose_train(["experiment=recon_cpu"], tmp_path)
    assert cfg.task_name == "recon_cpu" and cfg.run_dir == str(tmp_path)


def test_named_severities_are_the_configs_artefacts():
    from hetero_qc.config import severities
    from hetero_qc.corruption import RandomMotion

    graded = severities()
    assert set(graded) == {"motion", "ghosting", "spike", "bias_field"}
    assert all(list(levels) == ["mild", "moderate", "severe"] for levels in graded.values())
    moderate = graded["motion"]["moderate"]
    assert isinstance(moderate, RandomMotion) and moderate.degrees == (-5.0, 5.0)
    # the long recipe's damage check is the same moderate motion
    check = compose_train(["experiment=multitask_long"], "unused").model.damage_check
    assert check.degrees == 5.0 and check.translation == 5.0


def test_profiles_are_the_experiment_configs():
    from hetero_qc.evaluation.runs import experiment_name

    assert experiment_name("cpu", "multitask") == "multitask_cpu"
    assert experiment_name("long", "multitask") == "multitask_long"
    with pytest.raises(ValueError, match="no experiment 'recon_long'.*multitask_long"):
        experiment_name("long", "recon")
    with pytest.raises(ValueError, match="no experiment 'seg_cpu'"):
        experiment_name("cpu", "seg")


def test_evaluate_runs_as_a_hydra_multirun_sweep(tmp_path):
    # The README's sweep, two noise levels over one test subject, as a user runs it (a fresh process),
    # scoring a tiny checkpoint; then Fig 3 collects the jobs' rows.
    run(config(tmp_path, "recon_cpu", ["trainer.max_steps=2", "test=false"]))
    sweep = tmp_path / "sweep"
    command = [Path(sys.executable).parent / "hetero-qc", "evaluate", "-m", "snr_db=0,10", "max_subjects=1",
               f"ckpt={tmp_path / 'checkpoints' / 'last.ckpt'}", f"hydra.sweep.dir={sweep}",
               f"cache_dir={tmp_path / 'cache'}"]  # no writes in the repository
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = pd.concat([pd.read_csv(p) for p in sorted(sweep.rglob("rows.csv"))])
    assert sorted(rows["snr_db"]) == [0.0, 10.0] and rows["subject"].nunique() == 1
    assert any((tmp_path / "cache").rglob("*")), "the prepared scans are cached where the sweep was told"
    figure = subprocess.run([sys.executable, REPO_ROOT / "experiments" / "fig3.py", "--from-multirun", sweep,
                             "--out", tmp_path / "fig3"], capture_output=True, text=True)
    assert figure.returncode == 0, figure.stderr[-2000:]
    assert (tmp_path / "fig3" / "summary.json").exists()


def test_wandb_logs_offline_into_the_run_folder(tmp_path):
    run(config(tmp_path, "recon_cpu", ["trainer.max_steps=2", "test=false", "logger=wandb"]))
    runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and any(runs[0].glob("*.wandb"))


def test_a_missing_logger_package_names_its_extra(tmp_path, monkeypatch):
    import lightning.pytorch.loggers.wandb as lightning_wandb

    class Missing:  # what Lightning holds when wandb is not installed
        def __bool__(self) -> bool:
            return False

        def __str__(self) -> str:
            return "Requirement 'wandb>=0.12.10' not met"

    monkeypatch.setattr(lightning_wandb, "_WANDB_AVAILABLE", Missing())
    with pytest.raises(ValueError, match=r"logger WandbLogger needs wandb: pip install 'hetero-qc\[wandb\]'"):
        run(config(tmp_path, "recon_cpu", ["trainer.max_steps=2", "test=false", "logger=wandb"]))


def test_consistency_adds_the_clean_views_kl_to_the_multitask_loss(tmp_path):
    # seg_consistency pulls the corrupted patches' segmentation towards the network's own on the clean
    # patches: with the weight w, the step's loss is the paper's plus w x KL(clean || corrupted).
    cfg = config(tmp_path, "multitask_cpu", ["corruption.p_clean=0", "model.seg_consistency=3.0"])
    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    module = instantiate(cfg.model, _recursive_=False)
    torch.manual_seed(5)
    corrupted, cut = module.training_inputs(next(iter(datamodule.train_dataloader())))
    out = module.training_forward(corrupted)
    with_term = module.task_loss(out, cut)
    module.hparams.seg_consistency = 0.0
    kl = consistency_kl(out.seg_logits, module.training_forward(cut.image).seg_logits)
    assert kl > 1e-4  # the corruption did change the segmentation
    torch.testing.assert_close(with_term, module.task_loss(out, cut) + 3.0 * kl)
