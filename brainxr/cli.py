"""The ``brainxr`` command: ``demo``, ``ingest``, ``report``.

::

    brainxr demo [OUTDIR]            the whole pipeline on a built-in synthetic cohort
    brainxr ingest SOURCE STORE      fMRIPrep derivatives -> Zarr cohort store
    brainxr report STORE [-o HTML]   cohort summary report
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _demo(args) -> int:
    from brainxr.demo import run_demo

    outputs = run_demo(args.outdir, n_subjects=args.subjects, n_volumes=args.volumes, resolution=args.resolution,
                       seed=args.seed, n_workers=args.workers, progress=not args.quiet)
    print(outputs)
    return 0


def _ingest(args) -> int:
    import brainxr

    filters = dict(item.split("=", 1) for item in args.filter)
    report = brainxr.ingest(args.source, args.store, space=args.space, mask=args.mask, n_workers=args.workers,
                            progress=not args.quiet, on_error="return", **filters)
    print(report)
    return 1 if report.failed else 0


def _report(args) -> int:
    import brainxr

    cohort = brainxr.open_cohort(args.store)
    output = Path(args.output or Path(args.store).with_suffix(".report.html"))
    path = cohort.report(confounds_strategy=args.strategy).save_as_html(output)
    print(f"cohort report of {len(cohort)} runs written to {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="brainxr", description="Functional connectivity of the brain at cohort scale.")
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="run the whole pipeline on a built-in synthetic cohort")
    demo.add_argument("outdir", nargs="?", default="brainxr-demo", help="output folder (default: brainxr-demo)")
    demo.add_argument("--subjects", type=int, default=8)
    demo.add_argument("--volumes", type=int, default=200)
    demo.add_argument("--resolution", type=float, default=4.0, help="voxel size in mm")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--workers", type=int, default=2)
    demo.add_argument("--quiet", action="store_true", help="no progress bar")
    demo.set_defaults(run=_demo)

    ingest = commands.add_parser("ingest", help="ingest fMRIPrep derivatives into a Zarr cohort store")
    ingest.add_argument("source", help="fMRIPrep derivatives folder")
    ingest.add_argument("store", help="cohort store to create or add to")
    ingest.add_argument("--space", help="output space, when the folder holds several")
    ingest.add_argument("--mask", help="cohort mask image (default: union of the runs' brain masks)")
    ingest.add_argument("--filter", action="append", default=[], metavar="ENTITY=VALUE",
                        help="keep runs with this entity value (repeatable), e.g. task=rest")
    ingest.add_argument("--workers", type=int, default=2)
    ingest.add_argument("--quiet", action="store_true")
    ingest.set_defaults(run=_ingest)

    report = commands.add_parser("report", help="write the cohort summary report of a store")
    report.add_argument("store")
    report.add_argument("-o", "--output", help="HTML file (default: next to the store)")
    report.add_argument("--strategy", default="simple", help="confounds strategy counting the volumes kept")
    report.set_defaults(run=_report)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
