"""The ``brainxr run`` command line, shared by :mod:`brainxr.cli` and :mod:`brainxr.demo`.

The ``run`` sub-command's parser and its execution from parsed arguments, with
the formatter, the message options and the exit codes every sub-command uses.
:mod:`brainxr.demo` runs ``brainxr run`` through this parser, so the commands
it prints are exactly the ones it ran; :mod:`brainxr.cli` adds the other
sub-commands and ``main``.
"""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path

#: exit codes: everything succeeded, some run failed (the others completed), bad input or options
EXIT_OK, EXIT_FAILED_RUNS, EXIT_USAGE = 0, 1, 2


def local_folder(text: str) -> Path:
    """A folder argument of ``brainxr run``: a path, never a URL taken for a folder named ``s3:``.

    Raises
    ------
    argparse.ArgumentTypeError
        If ``text`` is a URL (other than ``file://``) or looks like one.
    """
    from brainxr._storage import as_location
    from brainxr.errors import LocationError

    try:
        location = as_location(text)
    except LocationError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    if not location.is_local:
        raise argparse.ArgumentTypeError(
            f"{text}: a URL; brainxr run reads and writes folders of this machine's (or a cluster's shared) "
            "filesystem. For a cohort on object storage use brainxr ingest SOURCE STORE and brainxr.open_cohort(STORE) "
            "(docs/deployment.md)")
    return Path(location.url) if "://" in text else Path(text)  # a file:// URL as its path


def version_string() -> str:
    """``brainxr X.Y.Z``, what ``--version`` prints."""
    from importlib.metadata import version

    return f"brainxr {version('brainxr')}"


def run_command(args):
    """Run ``brainxr run`` from its parsed arguments; returns the :class:`~brainxr.bids_app.RunSummary`."""
    from brainxr.bids_app import RunSettings, run
    from brainxr.bids_app.cluster import compute_client, jobqueue_options
    from brainxr.engine import tune_allocator

    tune_allocator(command=True)  # this process ingests runs on its threads: per-run buffers stay on the heap

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


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows a default only where there is one worth saying (not None, False or an empty list)."""

    def _get_help_string(self, action):
        if action.default in (None, False, [], argparse.SUPPRESS) or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def add_message_options(parser) -> None:
    """Add ``-v``, ``-q``, ``--debug`` and ``--version`` to a sub-command's parser."""
    group = parser.add_argument_group("messages")
    group.add_argument("-v", "--verbose", action="count", default=0, help="more messages (-vv: debug messages)")
    group.add_argument("-q", "--quiet", action="store_true", help="no progress bars; print only failures")
    group.add_argument("--debug", action="store_true", help="show the Python traceback of an error")
    group.add_argument("--version", action="version", version=version_string())


def add_run_command(commands) -> None:
    """Add the ``run`` sub-command (the BIDS App) to ``commands``, the sub-parsers of a ``brainxr`` parser."""
    run = commands.add_parser(
        "run", formatter_class=HelpFormatter,
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
    run.add_argument("bids_dir", type=local_folder, help="the fMRIPrep derivatives folder (read only)")
    run.add_argument("output_dir", type=local_folder, help="where the BIDS-derivative outputs are written")
    run.add_argument("analysis_level", choices=["participant", "group"],
                     help="participant: per-run outputs and reports; group: group connectomes, QC table and report")

    inputs = run.add_argument_group("inputs")
    inputs.add_argument("--participant-label", "--participant_label", nargs="+", metavar="LABEL",
                        help="participants to process (with or without 'sub-'); default all")
    inputs.add_argument("--task", help="task to process (the task-<label> entity); default all")
    inputs.add_argument("--space", help="output space of the BOLD images (space-<label>), required when the folder "
                                        "holds several; also the TemplateFlow template of the atlases")
    inputs.add_argument("--res", help="resolution of the BOLD images (res-<label>), when the space has several")
    inputs.add_argument("-w", "--work-dir", type=local_folder,
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
    add_message_options(run)
    run.set_defaults(handler=_run)


def run_parser() -> argparse.ArgumentParser:
    """A ``brainxr`` parser with the ``run`` sub-command only (what :mod:`brainxr.demo` runs).

    Returns
    -------
    argparse.ArgumentParser
        Parses ``["run", BIDS_DIR, OUTPUT_DIR, LEVEL, ...]`` as ``brainxr`` does.
    """
    parser = argparse.ArgumentParser(prog="brainxr")
    add_run_command(parser.add_subparsers(dest="command", required=True))
    return parser
