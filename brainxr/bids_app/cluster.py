"""Where the command computes: local threads, a running Dask scheduler, or an HPC cluster through dask-jobqueue."""

from __future__ import annotations

import contextlib
import logging

from brainxr.bids_app.specs import BidsAppError

log = logging.getLogger("brainxr.run")

#: --cluster -> dask-jobqueue class
JOBQUEUE_CLUSTERS = {"slurm": "SLURMCluster", "pbs": "PBSCluster", "sge": "SGECluster", "lsf": "LSFCluster"}


def jobqueue_options(queue=None, account=None, walltime=None, cores=None, memory=None, processes=None,
                     job_extra=(), local_directory=None, log_directory=None, interface=None) -> dict:
    """Keyword arguments of a dask-jobqueue cluster from the command's ``--cluster-*`` options."""
    options = {"queue": queue, "account": account, "walltime": walltime, "cores": cores, "memory": memory,
               "processes": processes, "local_directory": local_directory, "log_directory": log_directory,
               "interface": interface}
    options = {key: value for key, value in options.items() if value is not None}
    if job_extra:
        options["job_extra_directives"] = list(job_extra)
    return options


@contextlib.contextmanager
def compute_client(scheduler_address=None, cluster=None, cluster_options=None, n_jobs: int = 1, timeout: float = 300,
                   connect_timeout: float = 30):
    """A ``distributed.Client`` for the run, or None for local threads.

    Parameters
    ----------
    scheduler_address : str, optional
        A running Dask scheduler (``tcp://host:8786``).
    cluster : {"slurm", "pbs", "sge", "lsf"}, optional
        Start a dask-jobqueue cluster of ``n_jobs`` jobs with ``cluster_options``
        (``queue``, ``account``, ``walltime``, ``cores``, ``memory``, ...);
        it is closed (its jobs cancelled) at the end.
    timeout : float
        Seconds to wait for a first worker of a new cluster.
    connect_timeout : float
        Seconds to wait for a running scheduler to answer.
    """
    if scheduler_address and cluster:
        raise BidsAppError("--dask-scheduler and --cluster: give one (a running scheduler, or a cluster to start)")
    if not scheduler_address and not cluster:
        yield None
        return
    from distributed import Client

    if scheduler_address:
        try:
            client = Client(scheduler_address, timeout=connect_timeout)
        except (OSError, TimeoutError) as error:
            raise BidsAppError(f"--dask-scheduler {scheduler_address}: cannot connect ({error})") from None
        with client:
            log.info("computing on the Dask scheduler %s", scheduler_address)
            yield client
        return
    if cluster not in JOBQUEUE_CLUSTERS:
        raise BidsAppError(f"--cluster {cluster}: expected one of {', '.join(JOBQUEUE_CLUSTERS)}")
    import dask_jobqueue

    options = dict(cluster_options or {})
    for required in ("cores", "memory"):
        if required not in options:
            raise BidsAppError(f"--cluster {cluster}: --cluster-{required} is required (per job)")
    try:
        jobs = getattr(dask_jobqueue, JOBQUEUE_CLUSTERS[cluster])(**options)
    except Exception as error:  # dask-jobqueue's own validation (unknown queue syntax, bad memory string...)
        raise BidsAppError(f"--cluster {cluster}: {type(error).__name__}: {error}") from None
    with jobs, Client(jobs) as client:
        jobs.scale(jobs=n_jobs)
        log.info("submitted %d %s job(s):\n%s", n_jobs, cluster, jobs.job_script())
        try:
            client.wait_for_workers(1, timeout=timeout)
        except TimeoutError:
            raise BidsAppError(f"--cluster {cluster}: no worker started within {timeout:.0f} s; check the queue "
                               f"(squeue) and the job logs") from None
        yield client
