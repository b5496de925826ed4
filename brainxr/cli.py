"""The ``brainxr`` command: ``run``, ``demo``, ``ingest``, ``verify``, ``report``.

::

    brainxr run BIDS_DIR OUTPUT_DIR {participant,group} [options]
                                     fMRIPrep derivatives -> connectomes, QC reports, BEP017 outputs
    brainxr demo [OUTDIR]            ``brainxr run`` on a built-in synthetic cohort
    brainxr ingest SOURCE STORE      fMRIPrep derivatives -> Zarr cohort store
    brainxr verify STORE             check every stored chunk, list damaged runs
    brainxr report STORE [-o HTML]   cohort summary report

SOURCE and STORE are local paths or fsspec URLs (``s3://bucket/cohort.zarr``);
credentials and endpoints come from the environment (``AWS_ENDPOINT_URL``...)
or ``--storage-option KEY=VALUE``.

Errors are one line on stderr (``--debug`` shows the traceback); the exit
code is 0 when everything succeeded, 1 when some run failed (the others
completed) and 2 for bad input or options.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from brainxr._command_line import (
    EXIT_FAILED_RUNS,
    EXIT_OK,
    EXIT_USAGE,
    HelpFormatter,
    add_message_options,
    add_run_command,
    version_string,
)


def _demo(args) -> int:
    from brainxr.demo import run_demo

    outputs = run_demo(args.outdir, n_subjects=args.subjects, n_volumes=args.volumes, resolution=args.resolution,
                       seed=args.seed, n_workers=args.n_workers, quiet=args.quiet)
    print(outputs)
    return EXIT_OK if outputs.summary.ok else EXIT_FAILED_RUNS


def _filters(items) -> dict:
    filters = {}
    for item in items:
        key, equals, value = item.partition("=")
        if not equals or not key or not value:
            from brainxr.bids_app import BidsAppError

            raise BidsAppError(f"--filter {item}: expected ENTITY=VALUE, e.g. task=rest")
        filters.setdefault(key, []).append(value)
    return {key: values[0] if len(values) == 1 else values for key, values in filters.items()}


def _storage_options(items) -> dict | None:
    """``KEY=VALUE`` options of a URL; values are JSON where they parse (true, 3, {...}), strings otherwise."""
    import json

    options = {}
    for item in items:
        key, equals, value = item.partition("=")
        if not equals or not key:
            from brainxr.bids_app import BidsAppError

            raise BidsAppError(f"--storage-option {item}: expected KEY=VALUE, e.g. anon=true")
        try:
            options[key] = json.loads(value)
        except ValueError:
            options[key] = value
    return options or None


def _ingest(args) -> int:
    import brainxr

    report = brainxr.ingest(args.source, args.store, space=args.space, mask=args.mask, n_workers=args.n_workers,
                            overwrite=args.overwrite, repair=args.repair,
                            storage_options=_storage_options(args.storage_option),
                            progress=not args.quiet, on_error="return", **_filters(args.filter))
    print(report)
    return EXIT_FAILED_RUNS if report.failed else EXIT_OK


def _verify(args) -> int:
    import brainxr

    report = brainxr.verify(args.store, storage_options=_storage_options(args.storage_option),
                            n_workers=args.n_workers, progress=not args.quiet)
    print(report)
    return EXIT_OK if report.ok else EXIT_FAILED_RUNS


def _report(args) -> int:
    import brainxr

    from brainxr._storage import as_location

    location = as_location(args.store, _storage_options(args.storage_option))
    cohort = brainxr.open_cohort(location)
    # next to a local store; in the working directory for a store at a URL
    default = Path(location.url if location.is_local else location.name).with_suffix(".report.html")
    output = Path(args.output or default)
    path = cohort.report(confounds_strategy=args.strategy).save_as_html(output)
    print(f"cohort report of {len(cohort)} runs written to {path}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="brainxr", description="Functional connectivity of the brain at cohort scale.")
    parser.add_argument("--version", action="version", version=version_string())
    commands = parser.add_subparsers(dest="command", required=True)
    add_run_command(commands)

    demo = commands.add_parser("demo", formatter_class=HelpFormatter,
                               help="run `brainxr run` (participant + group) on a built-in synthetic cohort")
    demo.add_argument("outdir", nargs="?", default="brainxr-demo", type=Path, help="output folder")
    demo.add_argument("--subjects", type=int, default=8)
    demo.add_argument("--volumes", type=int, default=200)
    demo.add_argument("--resolution", type=float, default=4.0, help="voxel size in mm")
    demo.add_argument("--seed", type=int, default=0, help="a new seed regenerates the data and starts from a clean store")
    demo.add_argument("--n-workers", "--workers", type=int, default=2)
    add_message_options(demo)
    demo.set_defaults(handler=_demo)

    ingest = commands.add_parser("ingest", formatter_class=HelpFormatter,
                                 help="ingest fMRIPrep derivatives into a Zarr cohort store")
    ingest.add_argument("source", help="fMRIPrep derivatives folder (path or URL)")
    ingest.add_argument("store", help="cohort store to create or add to (path or URL)")
    ingest.add_argument("--space", help="output space, when the folder holds several")
    ingest.add_argument("--mask", help="cohort mask image (default: union of the runs' brain masks)")
    ingest.add_argument("--filter", action="append", default=[], metavar="ENTITY=VALUE",
                        help="keep runs with this entity value (repeatable), e.g. task=rest")
    ingest.add_argument("--n-workers", "--workers", type=int, default=2)
    ingest.add_argument("--overwrite", action="store_true", help="ingest again runs that are already complete")
    ingest.add_argument("--repair", action="store_true",
                        help="rewrite damaged runs from their sources (if they still match the recorded checksums)")
    ingest.add_argument("--storage-option", action="append", default=[], metavar="KEY=VALUE",
                        help="fsspec option of the store and source URLs (repeatable), e.g. anon=true")
    add_message_options(ingest)
    ingest.set_defaults(handler=_ingest)

    verify = commands.add_parser("verify", formatter_class=HelpFormatter,
                                 help="check every chunk of a store against its checksum; list damaged runs "
                                      "(exit status 1 if any)")
    verify.add_argument("store", help="cohort store (path or URL)")
    verify.add_argument("--storage-option", action="append", default=[], metavar="KEY=VALUE",
                        help="fsspec option of the store URL (repeatable)")
    verify.add_argument("--n-workers", "--workers", type=int, default=2)
    add_message_options(verify)
    verify.set_defaults(handler=_verify)

    report = commands.add_parser("report", formatter_class=HelpFormatter, help="write the cohort summary report of a store")
    report.add_argument("store", help="cohort store (path or URL)")
    report.add_argument("-o", "--output", help="HTML file (default: next to a local store, in the working "
                                                "directory for a URL)")
    report.add_argument("--storage-option", action="append", default=[], metavar="KEY=VALUE",
                        help="fsspec option of the store URL (repeatable)")
    report.add_argument("--strategy", default="simple", help="confounds strategy counting the volumes kept")
    add_message_options(report)
    report.set_defaults(handler=_report)
    return parser


def _configure_logging(verbose: int, quiet: bool) -> logging.Handler:
    level = logging.WARNING if quiet else (logging.INFO if verbose == 1 else logging.DEBUG if verbose > 1 else logging.WARNING)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.setLevel(level if verbose or quiet else logging.WARNING)
    logger = logging.getLogger("brainxr")
    logger.addHandler(handler)
    if verbose:
        logging.getLogger("brainxr.run").setLevel(level)
    return handler


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text if text else type(error).__name__


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = _configure_logging(args.verbose, args.quiet)
    import warnings

    from brainxr import progress

    # --quiet holds for this command only: main() may be called from Python (tests, notebooks)
    with warnings.catch_warnings():
        previous = progress.set_options(auto=False) if args.quiet else None  # no bar appears by itself either
        if args.quiet:
            warnings.simplefilter("ignore")
        try:
            return _handle(args)
        finally:
            logging.getLogger("brainxr").removeHandler(handler)
            if previous is not None:
                progress.set_options(**previous)


def _handle(args) -> int:
    """Run the command's handler; errors become one line naming the command (or a traceback with --debug)."""
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        print("brainxr: interrupted; a rerun resumes where this one stopped", file=sys.stderr)
        return 130
    except Exception as error:
        if args.debug:
            raise
        from brainxr.errors import BrainxrError

        kind = "" if isinstance(error, BrainxrError) else f"{type(error).__name__}: "
        print(f"brainxr {args.command}: error: {kind}{_one_line(error)} (--debug shows the traceback)", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
