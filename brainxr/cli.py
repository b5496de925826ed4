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
import textwrap
from pathlib import Path

EXIT_OK, EXIT_FAILED_RUNS, EXIT_USAGE = 0, 1, 2


def _version() -> str:
    from importlib.metadata import version

    return f"brainxr {version('brainxr')}"


def run_command(args):
    """Run ``brainxr run`` from its parsed arguments; returns the :class:`~brainxr.bids_app.RunSummary`."""
    from brainxr.bids_app import RunSettings, run
    from brainxr.bids_app.cluster import compute_client, jobqueue_options

    cluster_options = jobqueue_options(
        queue=args.cluster_queue, account=args.cluster_account, walltime=args.cluster_walltime,
        cores=args.cluster_cores, memory=args.cluster_memory, processes=args.cluster_processes,
        job_extra=args.cluster_job_extra, local_directory=args.cluster_local_directory,
        log_directory=args.cluster_log_directory, interface=args.cluster_interface)
    with compute_client(args.dask_scheduler, args.cluster, cluster_options, args.cluster_jobs) as client:
        settings = RunSettings(
            bids_dir=args.bids_dir, output_dir=args.output_dir, analysis_level=args.analysis_level,
            participant_label=args.participant_label, task=args.task, space=args.space, res=args.res,
            work_dir=args.work_dir, overwrite=args.overwrite, atlas=args.atlas, radius=args.radius,
            denoise_strategy=args.denoise_strategy, smoothing_fwhm=args.smoothing_fwhm,
            standardize=None if args.standardize == "none" else args.standardize, detrend=args.detrend,
            low_pass=args.low_pass, high_pass=args.high_pass, kinds=args.kind, cov_estimator=args.cov_estimator,
            n_workers=args.n_workers, reports=not args.no_reports, progress=not args.quiet, client=client,
        )
        return run(settings)


def _run(args) -> int:
    summary = run_command(args)
    if not args.quiet or not summary.ok:
        print(summary)
    return EXIT_OK if summary.ok else EXIT_FAILED_RUNS


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


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows a default only where there is one worth saying (not None, False or an empty list)."""

    def _get_help_string(self, action):
        if action.default in (None, False, [], argparse.SUPPRESS) or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def _add_common(parser) -> None:
    group = parser.add_argument_group("messages")
    group.add_argument("-v", "--verbose", action="count", default=0, help="more messages (-vv: debug messages)")
    group.add_argument("-q", "--quiet", action="store_true", help="no progress bars; print only failures")
    group.add_argument("--debug", action="store_true", help="show the Python traceback of an error")
    group.add_argument("--version", action="version", version=_version())


def _run_parser(commands) -> None:
    run = commands.add_parser(
        "run", formatter_class=_Formatter,
        help="fMRIPrep derivatives -> region time series, connectomes, QC reports (a BIDS App)",
        description=textwrap.dedent("""\
            A BIDS App: from fMRIPrep derivatives to region time series, connectomes and denoising QC,
            written as BIDS derivatives (BEP017: *_timeseries.tsv, *_relmat.tsv with JSON sidecars) with an
            HTML report per participant and for the group.

            participant: ingest the runs into the cohort store (--work-dir), extract each atlas's region
              signals once, clean them for each denoising strategy with each run's confounds (nilearn's
              load_confounds_strategy + masker cleaning), compute every --kind from the same signals.
            group: for every atlas and strategy of the participant outputs in OUTPUT_DIR: mean connectomes
              (Fisher z), tangent space (--kind tangent), a runs x QC table, and denoising quality per
              strategy (QC-FC, its distance dependence, tDOF loss) side by side.

            Reruns skip what is done; a run that fails is reported (summary, logs/) while the others go on.
            Exit code: 0 all succeeded, 1 some run failed, 2 bad input or options."""),
        epilog=textwrap.dedent("""\
            examples:
              brainxr run derivatives/fmriprep out participant --atlas Schaefer2018:400Parcels7Networks \\
                  DiFuMo:256dimensions --denoise-strategy simple scrubbing.5+gsr --kind correlation tangent
              brainxr run derivatives/fmriprep out group
              brainxr run derivatives/fmriprep out participant --cluster slurm --cluster-queue normal \\
                  --cluster-account lab --cluster-cores 4 --cluster-memory 16GB --cluster-walltime 02:00:00 \\
                  --cluster-jobs 8"""))
    run.add_argument("bids_dir", type=Path, help="the fMRIPrep derivatives folder (read only)")
    run.add_argument("output_dir", type=Path, help="where the BIDS-derivative outputs are written")
    run.add_argument("analysis_level", choices=["participant", "group"],
                     help="participant: per-run outputs and reports; group: group connectomes, QC table and report")

    inputs = run.add_argument_group("inputs")
    inputs.add_argument("--participant-label", "--participant_label", nargs="+", metavar="LABEL",
                        help="participants to process (with or without 'sub-'); default all")
    inputs.add_argument("--task", help="task to process (the task-<label> entity); default all")
    inputs.add_argument("--space", help="output space of the BOLD images (space-<label>), required when the folder "
                                        "holds several; also the TemplateFlow template of the atlases")
    inputs.add_argument("--res", help="resolution of the BOLD images (res-<label>), when the space has several")
    inputs.add_argument("-w", "--work-dir", type=Path,
                        help="folder of the cohort store (cohort.zarr), reused by reruns so they resume and skip "
                             "completed runs; default OUTPUT_DIR/work")
    inputs.add_argument("--overwrite", action="store_true",
                        help="ingest and compute again runs that are already done")

    atlases = run.add_argument_group("atlases")
    atlases.add_argument("--atlas", nargs="+", default=["Schaefer2018:100Parcels7Networks"], metavar="ATLAS",
                         help="one or more atlases: a TemplateFlow atlas NAME[:DESC] in --space (Schaefer2018:"
                              "100Parcels7Networks ... :1000Parcels17Networks, DiFuMo:64dimensions ... "
                              ":1024dimensions, HOCPA:th25 / HOSPA:th25 / HOCPAL:th25 (Harvard-Oxford; "
                              "HarvardOxfordCortical, HarvardOxfordSubcortical also accepted), HOSPA for its "
                              "probabilistic maps), fetched with TemplateFlow's client ($TEMPLATEFLOW_HOME); a labels "
                              "(*_dseg.nii.gz) or probabilistic (*_probseg.nii.gz) image with its TSV of names "
                              "(index, name) beside it; or a TSV of coordinates (x, y, z in mm, optional name) for "
                              "spheres of --radius")
    atlases.add_argument("--radius", type=float, help="sphere radius in mm for coordinate atlases (default: the "
                                                      "seed's voxel only, as nilearn's NiftiSpheresMasker)")

    denoising = run.add_argument_group("denoising")
    denoising.add_argument("--denoise-strategy", "--denoise_strategy", nargs="+", default=["simple"], metavar="STRATEGY",
                           help="one or more strategies: nilearn's presets simple, scrubbing, compcor, ica_aroma, with "
                                "parameters as PRESET:KEY=VALUE,... (scrubbing:fd_threshold=0.3,std_dvars_threshold=2); "
                                "giga_connectome's simple+gsr, scrubbing.2, scrubbing.2+gsr, scrubbing.5, "
                                "scrubbing.5+gsr, acompcor50, icaaroma; or a JSON file of load_confounds(_strategy) "
                                "options")
    denoising.add_argument("--smoothing-fwhm", "--smoothing_fwhm", type=float, metavar="MM",
                           help="Gaussian smoothing (FWHM, mm) of each volume before extraction, as nilearn's maskers "
                                "(voxels outside the cohort mask count as 0); default none")
    denoising.add_argument("--standardize", choices=["zscore_sample", "zscore", "psc", "none"], default="zscore_sample",
                           help="standardize the cleaned region signals")
    denoising.add_argument("--detrend", action=argparse.BooleanOptionalAction, default=True,
                           help="remove linear trends while cleaning")
    denoising.add_argument("--low-pass", type=float, metavar="HZ", help="low-pass cut-off (Butterworth), Hz")
    denoising.add_argument("--high-pass", type=float, metavar="HZ",
                           help="high-pass cut-off (Butterworth), Hz (the strategies already regress fMRIPrep's "
                                "cosine drift terms)")

    connectomes = run.add_argument_group("connectomes")
    connectomes.add_argument("--kind", nargs="+", default=["correlation"], metavar="KIND",
                             help="one or more of: correlation, 'partial correlation', covariance, precision, "
                                  "'sparse inverse covariance' (GraphicalLassoCV), tangent (group level: the "
                                  "tangent-space mean and each run's tangent vector)")
    connectomes.add_argument("--cov-estimator", choices=["ledoit_wolf", "empirical"], default="ledoit_wolf",
                             help="covariance estimator: ledoit_wolf (nilearn ConnectivityMeasure's default; "
                                  "meas-ShrunkCorrelation...) or empirical (meas-PearsonCorrelation...)")
    connectomes.add_argument("--no-reports", action="store_true", help="do not write the HTML reports")

    compute = run.add_argument_group("computation")
    compute.add_argument("--n-workers", "--nprocs", type=int, default=2, help="local threads")
    compute.add_argument("--dask-scheduler", metavar="ADDRESS",
                         help="compute on a running Dask scheduler (tcp://host:8786); its workers read the store and "
                              "the inputs from their paths, so these must be on a shared filesystem")
    compute.add_argument("--cluster", choices=["slurm", "pbs", "sge", "lsf"],
                         help="start a Dask cluster on an HPC scheduler with dask-jobqueue (closed at the end)")
    compute.add_argument("--cluster-queue", help="queue / partition of the jobs")
    compute.add_argument("--cluster-account", help="account (project) charged for the jobs")
    compute.add_argument("--cluster-walltime", help="walltime of each job, e.g. 01:00:00")
    compute.add_argument("--cluster-cores", type=int, help="cores per job (required with --cluster)")
    compute.add_argument("--cluster-memory", help="memory per job, e.g. 8GB (required with --cluster)")
    compute.add_argument("--cluster-processes", type=int, help="Dask worker processes per job")
    compute.add_argument("--cluster-jobs", type=int, default=1, help="number of jobs")
    compute.add_argument("--cluster-job-extra", action="append", default=[], metavar="DIRECTIVE",
                         help="extra scheduler directive, repeatable (e.g. '--gres=gpu:0')")
    compute.add_argument("--cluster-local-directory", help="workers' scratch folder on the compute nodes")
    compute.add_argument("--cluster-log-directory", help="folder of the job logs")
    compute.add_argument("--cluster-interface", help="network interface of the workers (e.g. ib0)")
    _add_common(run)
    run.set_defaults(handler=_run)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="brainxr", description="Functional connectivity of the brain at cohort scale.")
    parser.add_argument("--version", action="version", version=_version())
    commands = parser.add_subparsers(dest="command", required=True)
    _run_parser(commands)

    demo = commands.add_parser("demo", formatter_class=_Formatter,
                               help="run `brainxr run` (participant + group) on a built-in synthetic cohort")
    demo.add_argument("outdir", nargs="?", default="brainxr-demo", type=Path, help="output folder")
    demo.add_argument("--subjects", type=int, default=8)
    demo.add_argument("--volumes", type=int, default=200)
    demo.add_argument("--resolution", type=float, default=4.0, help="voxel size in mm")
    demo.add_argument("--seed", type=int, default=0, help="a new seed regenerates the data and starts from a clean store")
    demo.add_argument("--n-workers", "--workers", type=int, default=2)
    _add_common(demo)
    demo.set_defaults(handler=_demo)

    ingest = commands.add_parser("ingest", formatter_class=_Formatter,
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
    _add_common(ingest)
    ingest.set_defaults(handler=_ingest)

    verify = commands.add_parser("verify", formatter_class=_Formatter,
                                 help="check every chunk of a store against its checksum; list damaged runs "
                                      "(exit status 1 if any)")
    verify.add_argument("store", help="cohort store (path or URL)")
    verify.add_argument("--storage-option", action="append", default=[], metavar="KEY=VALUE",
                        help="fsspec option of the store URL (repeatable)")
    verify.add_argument("--n-workers", "--workers", type=int, default=2)
    _add_common(verify)
    verify.set_defaults(handler=_verify)

    report = commands.add_parser("report", formatter_class=_Formatter, help="write the cohort summary report of a store")
    report.add_argument("store", help="cohort store (path or URL)")
    report.add_argument("-o", "--output", help="HTML file (default: next to a local store, in the working "
                                                "directory for a URL)")
    report.add_argument("--storage-option", action="append", default=[], metavar="KEY=VALUE",
                        help="fsspec option of the store URL (repeatable)")
    report.add_argument("--strategy", default="simple", help="confounds strategy counting the volumes kept")
    _add_common(report)
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
