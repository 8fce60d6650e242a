"""``hetero-qc qc BIDS_DIR OUT_DIR participant|group``: the BIDS App calling convention (as MRIQC's),
writing BIDS derivatives.

``participant`` scores the T1w scans of the chosen participants and sessions: per scan, its maps as
``sub-X/[ses-Y/]anat/sub-X_..._desc-{recon,sigma,cgmprob,sigmaseg}_T1w.nii.gz``, a JSON sidecar
``sub-X_..._T1w.json`` (scores, verdict, the cut-offs used) and an HTML report; and the dataset's
``dataset_description.json``. ``group`` reads the sidecars already in ``OUT_DIR`` and writes
``group_T1w.tsv`` and the group ``report.html``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

import hetero_qc
from hetero_qc.atomic import write_text
from hetero_qc.data import BidsSource
from hetero_qc.data.sources import strip_nifti
from hetero_qc.qc.report import render
from hetero_qc.qc.run import Job, load_qc_model, model_hash, score_all, writable_folder
from hetero_qc.qc.scoring import ScoredScan
from hetero_qc.qc.verdict import Cutoffs, ScanScores

DESC = {"recon": "recon", "sigma": "sigma", "cgm": "cgmprob", "sigma_seg": "sigmaseg"}  # map -> desc- label
GROUP_TABLE = "group_T1w.tsv"
BIDS_VERSION = "1.9.0"


def check_output_folder(bids_dir: Path, out_dir: Path) -> None:
    """Raise ``ValueError`` for an output folder inside the input dataset, except under its
    ``derivatives/`` (where BIDS puts derivatives, and which the input reading skips)."""
    bids, out = bids_dir.resolve(), out_dir.resolve()
    if out == bids or (out.is_relative_to(bids) and not out.is_relative_to(bids / "derivatives")):
        raise ValueError(f"{out_dir}: the output folder is inside the input dataset {bids_dir}; "
                         f"write elsewhere, or under {bids_dir / 'derivatives'}")


def _stem(image: Path) -> str:
    """``sub-01_ses-a_run-1`` of ``sub-01_ses-a_run-1_T1w.nii.gz``."""
    return strip_nifti(image.name).removesuffix("_T1w")


def derivative_paths(bids_dir: Path, out_dir: Path, image: Path) -> tuple[dict[str, Path], Path, Path]:
    """The map files, the JSON sidecar and the HTML report of the scan ``image`` in ``out_dir``, in the
    folder the scan has in the input dataset."""
    folder = out_dir / image.parent.relative_to(bids_dir)
    stem = _stem(image)
    maps = {key: folder / f"{stem}_desc-{desc}_T1w.nii.gz" for key, desc in DESC.items()}
    return maps, folder / f"{stem}_T1w.json", folder / f"{stem}_T1w.html"


def participant(bids_dir: Path, out_dir: Path, model: Path, participants: list[str] | None = None,
                sessions: list[str] | None = None, device: str = "auto", cutoffs_file: Path | None = None) -> int:
    """Score the chosen T1w scans of ``bids_dir`` into ``out_dir`` as BIDS derivatives; 0 when every
    scan was scored, 1 when some failed (verdicts under ``cutoffs_file``, as in
    :func:`~hetero_qc.qc.run.load_qc_model`).

    Raises:
        ValueError: (one line) for an input that is not a BIDS dataset, unknown participant or session
            labels, no T1w scan, an output folder inside the dataset, or an unusable model.
    """
    check_output_folder(bids_dir, out_dir)
    images = BidsSource(bids_dir, participants, sessions).images()
    writable_folder(out_dir)
    trained, cutoffs, target = load_qc_model(model, device, cutoffs_file)
    digest = model_hash(model)
    write_text(out_dir / "dataset_description.json", json.dumps({
        "Name": "hetero-qc: reconstruction and segmentation uncertainty of T1w scans",
        "BIDSVersion": BIDS_VERSION, "DatasetType": "derivative",
        "GeneratedBy": [{"Name": "hetero-qc", "Version": hetero_qc.__version__,
                         "Description": f"model {model.name}, sha256 {digest}"}],
        "SourceDatasets": [{"URL": bids_dir.resolve().as_uri()}],
    }, indent=1))
    paths = {_stem(image): derivative_paths(bids_dir, out_dir, image) for image in images}
    jobs = [Job(_stem(image), image, paths[_stem(image)][0]) for image in images]
    scored, failures, seconds = score_all(jobs, trained, cutoffs, target)
    images = {job.name: job.path for job in jobs}
    for scan in scored:
        image, (_, sidecar, report) = images[scan.name], paths[scan.name]
        write_text(sidecar, json.dumps({
            "Sources": [f"bids:raw:{image.relative_to(bids_dir)}"], **scan.row(), "seconds": seconds[scan.name],
            "cutoffs": cutoffs.to_dict(),
            "hetero_qc": {"version": hetero_qc.__version__, "model": str(model), "model_sha256": digest},
        }, indent=1))
        write_text(report, render([scan], [], cutoffs, str(model)))
    return 1 if failures else 0


def read_sidecars(out_dir: Path) -> tuple[list[ScoredScan], Cutoffs, str]:
    """The scans a ``participant`` run scored into ``out_dir``, their cut-offs and model.

    Raises:
        ValueError: if ``out_dir`` holds none, or scans scored with different cut-offs.
    """
    scans, cutoffs, models = [], set(), set()
    for sidecar in sorted(out_dir.glob("sub-*/**/anat/sub-*_T1w.json")):
        values = json.loads(sidecar.read_text())
        if "hetero_qc" not in values:
            continue
        scores = ScanScores(*(values[field] for field in ScanScores.__dataclass_fields__))
        files = {"report": sidecar.with_suffix(".html")}
        scans.append(ScoredScan(sidecar.name.removesuffix("_T1w.json"), scores, values["verdict"], files,
                                skull_stripped=bool(values.get("skull_stripped", False)),
                                slice_mm=float(values.get("slice_mm", float("nan"))),
                                thick_slices=bool(values.get("thick_slices", False))))
        cutoffs.add(json.dumps(Cutoffs.from_dict(values["cutoffs"], check_version=False).to_dict(),
                               sort_keys=True))  # old sidecars too: their verdicts are made
        models.add(values["hetero_qc"]["model"])
    if not scans:
        raise ValueError(f"{out_dir}: no scans scored here yet; run the participant level first")
    if len(cutoffs) > 1:
        raise ValueError(f"{out_dir}: its scans were scored with {len(cutoffs)} different cut-offs (models: "
                         f"{', '.join(sorted(models))}); score them again with one model and one --cutoffs")
    return scans, Cutoffs.from_dict(json.loads(cutoffs.pop()), check_version=False), ", ".join(sorted(models))


def group(out_dir: Path) -> int:
    """Write ``group_T1w.tsv`` and the group ``report.html`` of the scans already scored in ``out_dir``."""
    scans, cutoffs, model = read_sidecars(out_dir)
    table = pd.DataFrame([s.row() for s in scans])
    write_text(out_dir / GROUP_TABLE, table.to_csv(sep="\t", index=False))
    for scan in scans:  # the report links each scan's own report, relative to the group report
        scan.files["report"] = scan.files["report"].relative_to(out_dir)
    write_text(out_dir / "report.html", render(scans, [], cutoffs, model))
    return 0
