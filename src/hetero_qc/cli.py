"""The ``hetero-qc`` command: ``corrupt``, ``bench`` and ``demo`` subcommands."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

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


def _bench(args: argparse.Namespace) -> None:
    from hetero_qc.bench.corruption import bench_corruption, rows_to_json, rows_to_markdown
    from hetero_qc.bench.report import update_benchmarks

    rows = bench_corruption(device=args.device, repeats=args.repeats)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(rows_to_json(rows), indent=1))
    tmp.replace(out)
    table = rows_to_markdown(rows)
    print(table)
    if args.benchmarks_md:
        update_benchmarks(Path(args.benchmarks_md), f"corruption-{args.device}", table,
                          f"hetero-qc bench corruption --device {args.device} --repeats {args.repeats}")


def _demo(args: argparse.Namespace) -> None:
    from hetero_qc.demo import corruption_demo

    print(corruption_demo(Path(args.data), Path(args.out), seed=args.seed))


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
    corruption = bench_commands.add_parser("corruption", help="our artefacts against TorchIO's, per volume")
    corruption.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    corruption.add_argument("--repeats", type=int, default=5, help="timed repeats per case (median)")
    corruption.add_argument("--out", default=str(RESULTS / "bench" / "corruption.json"))
    corruption.add_argument("--benchmarks-md", default="BENCHMARKS.md",
                            help="Markdown file whose table is updated ('' to skip)")
    corruption.set_defaults(run=_bench)

    demo = commands.add_parser("demo", help="corrupt an embedded IXI scan with every artefact, save a figure")
    demo.add_argument("--data", default="data/ixi-hh-t1-2mm", help="IXI folder (default: embedded copy)")
    demo.add_argument("--out", default=str(RESULTS / "demo"))
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(run=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except ValueError as error:
        print(f"hetero-qc: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
