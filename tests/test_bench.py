import json

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


def test_bench_train_reports_both_loops():
    from hetero_qc.bench.train import bench_train
    from tests.test_train import TINY

    result = bench_train(steps=3, overrides=tuple(TINY))
    assert {"lightning_ms_per_step", "plain_ms_per_step", "overhead", "inference_s_per_volume", "device"} <= set(result)
    assert result["lightning_ms_per_step"] > 0 and result["plain_ms_per_step"] > 0
    assert result["inference_s_per_volume"] > 0 and result["device"] == "cpu"


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
