"""The ``hetero-qc`` command: ``corrupt``, ``bench``, ``train``, ``evaluate``, ``qc``, ``calibrate-site``,
``ship-model`` and ``demo``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

from hetero_qc.atomic import write_text
from hetero_qc.paths import DATA_DIR, MODEL_DIR

RESULTS = Path("results")


def _parse_options(pairs: list[str]) -> dict:
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--set expects KEY=VALUE, got {pair!r}")
        options[key.replace("-", "_")] = yaml.safe_load(value)
    return options


def _corrupt(args: argparse.Namespace) -> None:
    import torch

    from hetero_qc.corruption import ARTEFACTS
    from hetero_qc.data.nifti import load_volume, save_volume

    source, target = Path(args.input), Path(args.output)
    if source.resolve() == target.resolve():
        raise ValueError("output must differ from input: inputs are never modified")
    try:
        artefact = ARTEFACTS[args.artefact](**_parse_options(args.set))
    except TypeError as error:
        raise ValueError(f"bad option for {args.artefact}: {error}") from None
    data, affine, spacing = load_volume(source)
    mask = None
    if args.mask is not None:
        mask_data = load_volume(args.mask)[0]
        if mask_data.shape != data.shape:
            raise ValueError(f"{args.mask}: mask shape {mask_data.shape} differs from image {data.shape}")
        mask = torch.from_numpy(mask_data > 0)[None, None]
    generator = torch.Generator().manual_seed(args.seed)
    images = torch.from_numpy(data)[None, None]
    corrupted, params = artefact(images, spacing, generator, mask)
    save_volume(corrupted[0, 0].numpy(), affine, target)
    print(json.dumps({"artefact": args.artefact, "output": str(target),
                      "params": {k: v[0] for k, v in params.as_dict().items()}}))


def _publish(payload: object, table: str, args: argparse.Namespace, section: str, command: str) -> None:
    """Write a benchmark's JSON atomically, print its table and update BENCHMARKS.md."""
    from hetero_qc.bench.report import update_benchmarks

    write_text(args.out, json.dumps(payload, indent=1))
    print(table)
    if args.benchmarks_md:
        update_benchmarks(Path(args.benchmarks_md), section, table, command, outputs=(Path(args.out),))


def _bench(args: argparse.Namespace) -> None:
    from dataclasses import asdict

    from hetero_qc.bench.corruption import (
        bench_corruption,
        motion_white_noise,
        power_to_markdown,
        rows_to_json,
        rows_to_markdown,
    )

    rows = bench_corruption(device=args.device, repeats=args.repeats)
    power = motion_white_noise()
    payload = {"timings": rows_to_json(rows), "motion_white_noise": [asdict(r) for r in power]}
    _publish(payload, rows_to_markdown(rows) + "\n\n" + power_to_markdown(power), args, f"corruption-{args.device}",
             f"hetero-qc bench corruption --device {args.device} --repeats {args.repeats}")


def _bench_train(args: argparse.Namespace) -> None:
    from hetero_qc.bench.train import bench_train, to_markdown

    result = bench_train(device=args.device, steps=args.steps, experiment=args.experiment)
    section = f"train-{args.device}" + ("" if args.experiment == "recon_cpu" else f"-{args.experiment}")
    _publish(result, to_markdown(result), args, section,
             f"hetero-qc bench train --device {args.device} --steps {args.steps} --experiment {args.experiment}")


def _demo(args: argparse.Namespace) -> None:
    from hetero_qc.demo import corruption_demo

    print(corruption_demo(Path(args.data), Path(args.out), seed=args.seed))


BIDS_LEVELS = ("participant", "group")


def _qc(args: argparse.Namespace) -> int:
    """Plain files (``INPUT... --out OUT``), or the BIDS App form (``BIDS_DIR OUT_DIR participant|group``)."""
    from hetero_qc.qc.bids import group, participant
    from hetero_qc.qc.run import run_qc

    bids_form = args.out is None and len(args.inputs) == 3 and args.inputs[2] in BIDS_LEVELS
    if not bids_form:
        if args.out is None:
            raise ValueError("--out OUT is needed, or the BIDS App form: hetero-qc qc BIDS_DIR OUT_DIR participant|group")
        if args.participant_label or args.session_id:
            raise ValueError("--participant-label and --session-id need the BIDS App form: "
                             "hetero-qc qc BIDS_DIR OUT_DIR participant")
        status = run_qc(args.inputs, Path(args.out), Path(args.model), args.device, args.cutoffs)
        print(f"Report: {Path(args.out) / 'report.html'}")
        return status
    bids_dir, out_dir, level = Path(args.inputs[0]), Path(args.inputs[1]), args.inputs[2]
    if level == "group":
        status = group(out_dir)
        print(f"Group table: {out_dir / 'group_T1w.tsv'}; report: {out_dir / 'report.html'}")
        return status
    status = participant(bids_dir, out_dir, Path(args.model), args.participant_label, args.session_id, args.device,
                         args.cutoffs)
    print(f"Derivatives: {out_dir}; then `hetero-qc qc {bids_dir} {out_dir} group` for the group table and report")
    return status


def _calibrate_site(args: argparse.Namespace) -> None:
    from hetero_qc.qc.site import calibrate_site

    cutoffs = calibrate_site(args.inputs, Path(args.out), Path(args.model), args.site, args.device)
    print(f"Cut-offs for {args.site} in {args.out}: sigma_r={cutoffs.sigma_r:.4f}, sigma_s={cutoffs.sigma_s:.4f}, "
          f"blur={cutoffs.blur:.3f}; use them with `hetero-qc qc ... --model {args.model} --cutoffs {args.out}`")


def _ship(args: argparse.Namespace) -> None:
    import pandas as pd

    from hetero_qc.evaluation.cutoffs import ship
    from hetero_qc.evaluation.experiment import trained

    model = trained(args.profile, "multitask", args.max_subjects, args.checkpoint)
    path = model.model.path  # a run's checkpoints/last.ckpt, or a committed record's last.ckpt beside its config
    run_dir = path.parent if (path.parent / "config.yaml").exists() else path.parent.parent
    table = None
    if args.validation_scores:
        try:
            table = pd.read_csv(args.validation_scores)
        except (OSError, ValueError) as error:
            raise ValueError(f"{args.validation_scores}: cannot read the scored validation copies ({error})") from None
    cutoffs = ship(model, Path(args.out), run_dir, args.overrides, table)
    print(f"Shipped {model.model.path} to {args.out}/ with cut-offs sigma_r={cutoffs.sigma_r:.4f}, "
          f"sigma_s={cutoffs.sigma_s:.4f}, blur={cutoffs.blur:.3f}")


def _hydra(command: str, overrides: list[str]) -> None:
    """Hand the remaining arguments to the Hydra entry point ``train`` or ``evaluate``."""
    import importlib

    sys.argv = [f"hetero-qc {command}", *overrides]
    importlib.import_module(f"hetero_qc.{command}").main()


def build_parser() -> argparse.ArgumentParser:
    from hetero_qc.corruption import ARTEFACTS

    parser = argparse.ArgumentParser(prog="hetero-qc", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    corrupt = commands.add_parser("corrupt", help="write a corrupted copy of a NIfTI scan",
                                  description="Corrupt a NIfTI scan with one simulated artefact; the input is never touched.")
    corrupt.add_argument("input", help="input NIfTI (.nii or .nii.gz)")
    corrupt.add_argument("output", help="output NIfTI, written atomically")
    corrupt.add_argument("--artefact", required=True, choices=sorted(ARTEFACTS))
    corrupt.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                         help="artefact option, e.g. --set degrees=5 --set snr_db=[0,5] (repeatable)")
    corrupt.add_argument("--mask", help="NIfTI mask on the same grid (partial noise, region=outside_mask)")
    corrupt.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    corrupt.set_defaults(run=_corrupt)

    bench = commands.add_parser("bench", help="benchmarks, side by side with their baselines")
    bench_commands = bench.add_subparsers(dest="what", required=True)
    for name, text, run, count, default, what in (
        ("corruption", "our artefacts against TorchIO's, per volume", _bench, "--repeats", 5, "timed repeats per case"),
        ("train", "Lightning step vs a bare PyTorch loop; inference per volume", _bench_train, "--steps", 20,
         "timed steps per loop"),
    ):
        bench_command = bench_commands.add_parser(name, help=text)
        bench_command.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
        bench_command.add_argument(count, type=int, default=default, help=f"{what} (median; default {default})")
        bench_command.add_argument("--out", default=str(RESULTS / "bench" / f"{name}.json"))
        bench_command.add_argument("--benchmarks-md", default="BENCHMARKS.md",
                                   help="Markdown file whose table is updated ('' to skip)")
        bench_command.set_defaults(run=run)
        if name == "train":
            bench_command.add_argument("--experiment", default="recon_cpu",
                                       help="the training recipe to time (default recon_cpu)")

    for name, text in (("train", "train a model (Hydra overrides follow, e.g. experiment=recon_cpu)"),
                       ("evaluate", "one Fig 3 noise level over the test split (Hydra; -m sweeps snr_db)")):
        hydra_command = commands.add_parser(name, help=text, add_help=False)
        hydra_command.add_argument("overrides", nargs="*", help="Hydra overrides; --help shows Hydra's help")

    qc = commands.add_parser(
        "qc", help="score T1 scans: maps, verdicts and an HTML report (plain files, or a BIDS App)",
        usage="%(prog)s INPUT [INPUT ...] --out OUT [options]\n"
              "       %(prog)s BIDS_DIR OUT_DIR {participant,group} [--participant-label L ...] [--session-id S ...]",
        description="Score NIfTI T1 scans with a trained multi-task model. Plain files: maps, qc.csv, qc.json and "
                    "report.html in OUT. BIDS App: 'participant' writes BIDS derivatives (maps, a JSON sidecar and "
                    "a report per scan) in OUT_DIR; 'group' then writes group_T1w.tsv and report.html there.")
    qc.add_argument("inputs", nargs="+", metavar="INPUT", help="NIfTI files, folders or BIDS datasets")
    qc.add_argument("--out", default=None, help="output folder of the plain-files form")
    qc.add_argument("--participant-label", nargs="+", default=None, metavar="LABEL",
                    help="BIDS App form: only these participants (01 or sub-01)")
    qc.add_argument("--session-id", nargs="+", default=None, metavar="LABEL",
                    help="BIDS App form: only these sessions (a or ses-a)")
    qc.add_argument("--model", default=str(MODEL_DIR / "model.ckpt"),
                    help="model checkpoint, with cutoffs.json beside it (default: the shipped model)")
    qc.add_argument("--cutoffs", type=Path, default=None,
                    help="verdict cut-offs (default: the cutoffs.json beside the model; a site's from calibrate-site)")
    qc.add_argument("--device", default="auto", help="auto, cpu or cuda")
    qc.set_defaults(run=_qc)

    site = commands.add_parser(
        "calibrate-site", help="move the verdict cut-offs to a new site, from clean scans of it",
        description="Score clean T1 scans of one site (at least 5) and write the model's verdict cut-offs moved "
                    "there: each by how far the site's clean median lies from the calibration scans'. "
                    "Then: hetero-qc qc ... --cutoffs OUT.")
    site.add_argument("inputs", nargs="+", metavar="INPUT", help="clean NIfTI scans of the site: files, folders or BIDS")
    site.add_argument("--out", required=True, help="the site's cut-offs (JSON), written atomically")
    site.add_argument("--site", default="the new site", help="the site's name, recorded in the cut-offs' method")
    site.add_argument("--model", default=str(MODEL_DIR / "model.ckpt"),
                      help="model checkpoint, with cutoffs.json beside it (default: the shipped model)")
    site.add_argument("--device", default="auto", help="auto, cpu or cuda")
    site.set_defaults(run=_calibrate_site)

    shipper = commands.add_parser("ship-model", help="calibrate the verdict cut-offs and export the multi-task model")
    shipper.add_argument("--profile", default="cpu", help="the experiment profile: cpu, paper, long (multitask_<profile>)")
    shipper.add_argument("--out", default=str(MODEL_DIR))
    shipper.add_argument("--max-subjects", type=int, default=None, help="calibrate on the first N validation scans")
    shipper.add_argument("--checkpoint", default=None,
                         help="ship this checkpoint of a run (its run folder's config and metrics go with it) "
                              "rather than the profile's trained model")
    shipper.add_argument("--validation-scores", default=None,
                         help="the validation copies an earlier ship of this checkpoint scored (its validation_scores.csv): "
                              "calibrate on them rather than scoring them again (minutes, not half an hour)")
    shipper.add_argument("overrides", nargs="*", help="Hydra overrides of conf/damage.yaml, the calibration's corruptions "
                                                      "(e.g. levels=[moderate,outside_brain,cortex_box] for a quicker run)")
    shipper.set_defaults(run=_ship)

    demo = commands.add_parser("demo", help="corrupt an embedded IXI scan with every artefact, save a figure")
    demo.add_argument("--data", default=str(DATA_DIR / "ixi-hh-t1-2mm"), help="IXI folder (default: embedded copy)")
    demo.add_argument("--out", default=str(RESULTS / "demo"))
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(run=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] in (["train"], ["evaluate"]):  # Hydra parses its own arguments, --help included
        _hydra(argv[0], argv[1:])
        return 0
    args = build_parser().parse_args(argv)
    try:
        return args.run(args) or 0
    except ValueError as error:
        print(f"hetero-qc: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
