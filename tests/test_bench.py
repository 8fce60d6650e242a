import json

import pytest
import torch

from hetero_qc.bench.corruption import bench_corruption, rows_to_json, rows_to_markdown
from hetero_qc.bench.report import update_benchmarks


def test_bench_rows_have_the_promised_keys(tmp_path):
    rows = bench_corruption(cases=(((32, 32, 32), 2),), repeats=1, artefacts=("bias_field", "pipeline"))
    assert [r.artefact for r in rows] == ["bias_field", "pipeline"]
    keys = {"artefact", "shape", "batch", "device", "ours_ms_per_volume", "torchio_ms_per_volume", "speedup"}
    for row in rows_to_json(rows):
        assert set(row) == keys and row["shape"] == [32, 32, 32] and row["batch"] == 2
        assert row["ours_ms_per_volume"] > 0 and row["speedup"] > 0
    markdown = tmp_path / "BENCHMARKS.md"
    update_benchmarks(markdown, "corruption-cpu", rows_to_markdown(rows), "cmd")
    update_benchmarks(markdown, "corruption-cpu", rows_to_markdown(rows), "cmd")
    assert markdown.read_text().count("<!-- corruption-cpu -->") == 1
    json.dumps(rows_to_json(rows))


def test_bench_train_reports_both_loops(tmp_path):
    from hetero_qc.bench.train import bench_train, max_loss_difference
    from tests.test_train import TINY

    # the CPU recipes' compiled training forward, under Lightning and in the plain loop, and eager beside it
    result = bench_train(steps=3, overrides=(*TINY, "model.compile=true", f"paths.cache={tmp_path}"))  # no writes in the repository
    assert {"lightning_ms_per_step", "plain_ms_per_step", "overhead", "inference_s_per_volume", "device"} <= set(result)
    assert result["lightning_ms_per_step"] > 0 and result["plain_ms_per_step"] > 0
    assert result["first_loop_ms_per_step"] > 0  # the warm-up loop, not compared
    assert result["inference_s_per_volume"] > 0 and result["device"] == "cpu"
    # Utilisation: FLOPs counted, a peak measured there and then, MFU their ratio, volumes per hour.
    assert result["gflops_per_step"] > 0 and 0 < result["peak_tflops"] < 1e4
    assert result["mfu"] == pytest.approx(result["achieved_tflops"] / result["peak_tflops"], rel=0.01, abs=1e-4)
    step_s = (result["lightning_ms_per_step"] + result["data_ms_per_step"]) / 1000  # no workers: data counts
    assert result["samples_per_hour"] == pytest.approx(2 * 3600 / step_s, rel=0.01)
    # Both loops did the same work: the same batches, corruption draws, updates and schedule.
    assert len(result["losses_lightning"]) == len(result["losses_plain"]) == 3 + 3 + 1
    assert len(set(result["losses_plain"])) > 1  # the updates and the draws change the loss
    assert max_loss_difference(result) <= 1e-5 * max(abs(v) for v in result["losses_plain"])
    assert len(result["top_operators"]) == 8 and 0 < sum(o["share"] for o in result["top_operators"]) <= 1.0
    # The recipe's compiled loop against the same loop eager: timed, and the same maths within rounding.
    assert result["compile"] is True and result["compiled_ms_per_step"] == result["plain_ms_per_step"]  # the recipe's
    assert result["compiled_ms_per_step"] > 0
    assert result["compile_speedup"] == pytest.approx(result["eager_ms_per_step"] / result["compiled_ms_per_step"], rel=0.01)
    assert result["compiled_max_loss_difference"] <= 2e-2 * max(abs(v) for v in result["losses_plain"])


def test_flop_count_of_a_step_is_three_forwards_of_the_convolutions():
    # FlopCounterMode counts 2 * MACs; a step is the forward plus a backward of twice its cost.
    from torch.utils.flop_counter import FlopCounterMode

    conv = torch.nn.Conv3d(2, 4, 3, padding=1, bias=False)
    x = torch.rand(1, 2, 8, 8, 8, requires_grad=True)
    with FlopCounterMode(display=False) as counter:
        conv(x).sum().backward()
    forward = 2 * 8**3 * 4 * 2 * 27
    assert counter.get_total_flops() == 3 * forward


def test_code_version_ignores_the_benchmarks_own_outputs(tmp_path, monkeypatch):
    import subprocess

    from hetero_qc.bench.report import _code_version

    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    outputs = (tmp_path / "results/bench/corruption.json", tmp_path / "BENCHMARKS.md")
    for path in (*outputs, tmp_path / "code.py"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("0")
    git("init", "-q")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "c")
    monkeypatch.chdir(tmp_path / "results")  # from a subfolder too: the paths are the repository's
    for path in outputs:
        path.write_text("1")
    assert not _code_version(outputs).endswith("+dirty")
    assert _code_version(outputs[:1]).endswith("+dirty")  # BENCHMARKS.md not named as an output
    outputs[1].write_text("0")
    (tmp_path / "code.py").write_text("1")
    assert _code_version(outputs).endswith("+dirty")


def test_compiling_without_a_cpp_compiler_says_how_to_train_instead(tmp_path, monkeypatch):
    from hydra.utils import instantiate

    from tests.test_train import config

    module = instantiate(config(tmp_path, "recon_cpu", ["model.compile=true"]).model, _recursive_=False)
    monkeypatch.setattr("shutil.which", lambda name: None)
    with pytest.raises(ValueError, match="model.compile=false"):
        module.compile_training_forward()
    assert module._compiled_forward is None
