"""The package as a user installs it: a built wheel in a fresh virtual environment, no clone, no network."""

import json
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

from hetero_qc.paths import DATA_DIR, REPO_ROOT


def build_wheel(tmp_path: Path) -> Path:
    """A wheel built (PEP 517, setuptools) from a copy of the sources: the build writes nothing here."""
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO_ROOT / name, source / name)
    shutil.copytree(REPO_ROOT / "src", source / "src", ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path / "dist")], check=True)
    return next((tmp_path / "dist").glob("hetero_qc-*.whl"))


def test_wheel_installs_with_its_model_and_scores_a_scan(tmp_path):
    wheel = build_wheel(tmp_path)
    assert {"hetero_qc/shipped/model.ckpt", "hetero_qc/shipped/cutoffs.json"} <= set(zipfile.ZipFile(wheel).namelist())
    env = tmp_path / "env"
    subprocess.run([sys.executable, "-m", "venv", str(env)], check=True)
    python = env / "bin" / "python"
    # The dependencies (torch...) come from this environment's site-packages, as a path only: its .pth
    # files, among them the editable install of this checkout, are not read.
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    Path(site, "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], check=True)
    scans = tmp_path / "scans"
    scans.mkdir()
    shutil.copy(DATA_DIR / "demo" / "MNI152_2mm.nii.gz", scans / "template.nii.gz")
    tool = env / "bin" / "hetero-qc"
    result = subprocess.run([tool, "qc", str(scans), "--out", str(tmp_path / "qc")], cwd=tmp_path,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((tmp_path / "qc" / "qc.json").read_text())
    assert Path(report["model"]).is_relative_to(env)  # the installed package's own model, not the clone's
    assert [s["scan"] for s in report["scans"]] == ["template"] and report["failures"] == []
    # A small BIDS dataset (the demo template, twice), through the BIDS App form; pybids reads the
    # derivatives back. (The IXI demo scans take a minute each here: `make demo` scores them.)
    dataset = tmp_path / "ds"
    for subject in ("01", "02"):
        (dataset / f"sub-{subject}" / "anat").mkdir(parents=True)
        shutil.copy(DATA_DIR / "demo" / "MNI152_2mm.nii.gz", dataset / f"sub-{subject}" / "anat" / f"sub-{subject}_T1w.nii.gz")
    (dataset / "dataset_description.json").write_text('{"Name": "demo", "BIDSVersion": "1.9.0"}')
    out = dataset / "derivatives" / "hetero-qc"
    for level in ("participant", "group"):
        result = subprocess.run([tool, "qc", str(dataset), str(out), level], cwd=tmp_path, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr[-2000:]
    from bids import BIDSLayout

    layout = BIDSLayout(dataset, derivatives=str(out))
    maps = layout.get(scope="derivatives", suffix="T1w", desc="sigma", extension=".nii.gz")
    assert sorted(f.entities["subject"] for f in maps) == ["01", "02"]
    assert len(layout.get(scope="raw", suffix="T1w", extension=".nii.gz")) == 2  # its own outputs not taken as raw
    assert len((out / "group_T1w.tsv").read_text().splitlines()) == 3
