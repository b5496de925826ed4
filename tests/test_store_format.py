"""Store formats: the current layout, and stores written by older brainxr versions (read-only)."""

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import brainxr
from brainxr import store as cohort_store

DATA = Path(__file__).parent / "data"


@pytest.fixture
def format1_store(tmp_path):
    """A copy of the tiny format-1 store of tests/data (see make_format1_store.py)."""
    return Path(shutil.copytree(DATA / "format1.zarr", tmp_path / "format1.zarr"))


def test_format1_store_is_read(format1_store):
    expected = np.load(DATA / "format1_expected.npz")
    cohort = brainxr.open_cohort(format1_store)
    assert list(cohort) == ["sub-01_task-rest", "sub-02_task-rest"]
    np.testing.assert_array_equal(cohort.grid.mask, expected["mask"])
    np.testing.assert_array_equal(cohort.grid.affine, expected["affine"])
    table = cohort_store.runs_table(format1_store)
    assert table["n_volumes"].tolist() == [12, 9]
    for key in cohort:
        np.testing.assert_array_equal(cohort[key]["bold"].values, expected[f"{key}/bold"])
        np.testing.assert_array_equal(cohort_store.read_bold(format1_store, key), expected[f"{key}/bold"])
        np.testing.assert_array_equal(cohort_store.read_bold(format1_store, key, slice(30, 50)),
                                      expected[f"{key}/bold"][:, 30:50])
        np.testing.assert_array_equal(cohort_store.read_valid(format1_store, key), expected[f"{key}/valid"])
        confounds, metadata = cohort_store.read_confounds(format1_store, key)
        pd.testing.assert_frame_equal(
            confounds, pd.DataFrame(expected[f"{key}/confounds"], columns=list(expected[f"{key}/confound"]))
        )
        assert metadata == json.loads(str(expected[f"{key}/confounds_metadata"]))
