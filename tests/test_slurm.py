"""A cohort pipeline on a real Slurm cluster through dask-jobqueue.

`.ci/slurm-up` starts a single-node Slurm (Debian's slurm-wlm and munge) before
the tests; CI sets ``BRAINXR_REQUIRE_SLURM=1`` so that a cluster that failed to
start fails this test instead of skipping it. Elsewhere, without Slurm, the test
is skipped with the command that starts one.
"""

import os
import shutil
import subprocess

import pytest
import xarray as xr

import brainxr
from brainxr.connectome import connectivity, mean_connectome
from brainxr.regions import load_labels_atlas

pytestmark = [pytest.mark.slow, pytest.mark.slurm]


def _slurm_node_ready() -> bool:
    if shutil.which("sinfo") is None:
        return False
    states = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=20).stdout.split()
    return any(state.rstrip("*~#") in ("idle", "mixed", "allocated") for state in states)


@pytest.fixture(scope="module")
def slurm_cluster(tmp_path_factory):
    """A SLURMCluster of two single-core jobs, one worker each."""
    if not _slurm_node_ready():
        if os.environ.get("BRAINXR_REQUIRE_SLURM") == "1":
            pytest.fail("no Slurm node is up although BRAINXR_REQUIRE_SLURM=1: see .ci/slurm-up's output")
        pytest.skip("no Slurm cluster here: start one with `sudo .ci/slurm-up`")
    dask_jobqueue = pytest.importorskip("dask_jobqueue")
    from distributed import Client

    logs = tmp_path_factory.mktemp("slurm-logs")
    cluster = dask_jobqueue.SLURMCluster(
        cores=1, processes=1, memory="2GB", walltime="00:15:00", log_directory=str(logs),
        # a worker in the job's own working directory: nothing may rely on the client's
        job_directives_skip=[], worker_extra_args=["--local-directory", str(logs)],
    )
    cluster.scale(jobs=2)
    client = Client(cluster)
    try:
        client.wait_for_workers(2, timeout=180)
        yield client
    finally:
        client.close()
        cluster.close()


def test_cohort_extraction_and_group_connectome_on_slurm_equal_threads(small_synthetic, slurm_cluster):
    synthetic, store = small_synthetic
    cohort = brainxr.open_cohort(store)
    atlas = load_labels_atlas(synthetic.atlas_labels_img, lut=synthetic.atlas_labels_tsv)
    signals = cohort.extract(atlas, confounds_strategy="simple",
                             clean={"standardize": "zscore_sample", "low_pass": 0.1, "high_pass": 0.01})
    correlations = connectivity(signals, kind="correlation")
    group = mean_connectome(correlations)

    expected_signals, expected_group = (x.compute(scheduler="threads") for x in (signals, group))
    workers = slurm_cluster.scheduler_info()["workers"]
    assert len(workers) == 2
    on_slurm_signals, on_slurm_group = slurm_cluster.compute([signals, group], sync=True)
    # the workers are Slurm jobs, and they did the work
    job_ids = slurm_cluster.run(lambda: os.environ.get("SLURM_JOB_ID"))
    assert len(job_ids) == 2 and all(job_ids.values()), job_ids
    transitions = slurm_cluster.run(lambda dask_worker: dask_worker.state.transition_counter)
    assert all(count > 0 for count in transitions.values()), transitions
    xr.testing.assert_identical(on_slurm_signals, expected_signals)
    xr.testing.assert_identical(on_slurm_group, expected_group)
