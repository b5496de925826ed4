"""``brainxr run --cluster slurm``: the BIDS App on a real single-node Slurm through dask-jobqueue.

Started by ``.ci/slurm-up`` in CI (``BRAINXR_REQUIRE_SLURM=1`` makes a missing
cluster a failure); skipped elsewhere without Slurm.
"""

from __future__ import annotations

import os

import pytest

from brainxr.cli import main
from test_slurm import _slurm_node_ready

pytestmark = [pytest.mark.slow, pytest.mark.slurm]


def test_bids_app_on_slurm_equals_local_threads(tmp_path):
    if not _slurm_node_ready():
        if os.environ.get("BRAINXR_REQUIRE_SLURM") == "1":
            pytest.fail("no Slurm node is up although BRAINXR_REQUIRE_SLURM=1: see .ci/slurm-up's output")
        pytest.skip("no Slurm cluster here: start one with `sudo .ci/slurm-up`")
    from brainxr.datasets import make_synthetic_cohort

    cohort = make_synthetic_cohort(tmp_path / "fmriprep", n_subjects=3, n_volumes=40, resolution=8, n_regions=20,
                                   seed=4)
    common = ["--atlas", str(cohort.atlas_labels_img), "--kind", "correlation", "--quiet", "--no-reports"]
    logs = tmp_path / "slurm-logs"
    on_slurm = ["--cluster", "slurm", "--cluster-cores", "1", "--cluster-memory", "2GB", "--cluster-processes", "1",
                "--cluster-walltime", "00:15:00", "--cluster-jobs", "2", "--cluster-log-directory", str(logs),
                "--cluster-local-directory", str(logs)]
    assert main(["run", str(cohort.root), str(tmp_path / "slurm"), "participant", "--work-dir",
                 str(tmp_path / "work-slurm"), *common, *on_slurm]) == 0
    assert list(logs.glob("*.err")) or list(logs.glob("*.out"))  # the workers ran as Slurm jobs
    assert main(["run", str(cohort.root), str(tmp_path / "local"), "participant", "--work-dir",
                 str(tmp_path / "work-local"), *common]) == 0
    produced = sorted(p.relative_to(tmp_path / "local") for p in (tmp_path / "local").glob("sub-*/func/*.tsv"))
    assert len(produced) == 3 * 3
    for relative in produced:
        assert (tmp_path / "slurm" / relative).read_bytes() == (tmp_path / "local" / relative).read_bytes(), relative
