"""Connectome files: BIDS-derivative relmat.tsv and Zarr groups."""

import warnings

import dask.array as da
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from brainxr.connectome import (
    connectivity,
    mean_connectome,
    open_connectomes,
    read_relmat,
    relmat_filename,
    write_connectomes,
    write_relmat,
    write_relmats,
)
from brainxr.testing import raise_if_dask_computes


def _cohort_signals(n_runs=3, n_regions=4):
    rng = np.random.default_rng(0)
    return xr.DataArray(
        rng.standard_normal((n_runs, 30, n_regions)),
        dims=("run", "time", "region"),
        coords={
            "run": [f"sub-{index:02d}_ses-1_task-rest_run-1" for index in range(n_runs)],
            "region": [f"7Networks_LH_Vis_{index}" for index in range(n_regions)],
            "x": ("region", np.arange(n_regions, dtype=float)),
        },
    )


def test_relmat_filename_follows_bids_order():
    name = relmat_filename(
        {"task": "rest", "sub": "01", "run": "2", "ses": "A"},
        stat="pearsoncorrelation",
        seg="4S156Parcels",
        space="MNI152NLin2009cAsym",
    )
    assert name == (
        "sub-01_ses-A_task-rest_run-2_space-MNI152NLin2009cAsym_seg-4S156Parcels"
        "_stat-pearsoncorrelation_relmat.tsv"
    )
    assert relmat_filename("sub-01_task-rest_bold", stat="covariance") == "sub-01_task-rest_stat-covariance_relmat.tsv"
    with pytest.raises(ValueError, match="needs a 'sub' entity"):
        relmat_filename({"task": "rest"}, stat="covariance")
    with pytest.raises(ValueError, match="seg-4S_156 is not a valid BIDS entity"):
        relmat_filename({"sub": "01"}, stat="covariance", seg="4S_156")


def test_relmat_round_trip_with_missing_values(tmp_path):
    matrix = connectivity(_cohort_signals().isel(run=0), "correlation", cov_estimator="empirical")
    values = matrix.values.copy()
    values[1, 2] = values[2, 1] = np.nan
    matrix = matrix.copy(data=values)
    path = write_relmat(matrix, tmp_path / "deep" / "sub-01_stat-pearsoncorrelation_relmat.tsv")
    lines = path.read_text().splitlines()
    assert lines[0].split("\t") == ["Node"] + list(matrix["region"].values)
    assert lines[2].split("\t")[3] == "n/a"
    back = read_relmat(path)
    assert back.dims == ("region", "region_")
    assert list(back["region_"].values) == list(matrix["region"].values)
    np.testing.assert_array_equal(back.values, matrix.values)  # full precision
    assert back.attrs["stat"] == "pearsoncorrelation"
    # the same table read by pandas as users of XCP-D outputs do
    table = pd.read_csv(path, sep="\t", index_col=0)
    np.testing.assert_array_equal(table.to_numpy(), matrix.values)


def test_read_relmat_without_node_column_and_errors(tmp_path):
    path = tmp_path / "plain.tsv"
    pd.DataFrame(np.eye(3), columns=list("abc")).to_csv(path, sep="\t", index=False)
    back = read_relmat(path)
    assert list(back["region"].values) == list("abc")
    np.testing.assert_array_equal(back.values, np.eye(3))
    bad = tmp_path / "bad.tsv"
    pd.DataFrame(np.ones((2, 3)), columns=list("abc")).to_csv(bad, sep="\t", index=False)
    with pytest.raises(ValueError, match="bad.tsv: expected a square matrix.*2 rows and 3 columns"):
        read_relmat(bad)
    with pytest.raises(ValueError, match="\\(region, region_\\) DataArray"):
        write_relmat(xr.DataArray(np.eye(2)), tmp_path / "x.tsv")


def test_write_relmats_makes_a_bids_derivatives_tree(tmp_path):
    correlations = connectivity(_cohort_signals().chunk(run=2), "correlation", cov_estimator="empirical")
    paths = write_relmats(correlations, tmp_path, space="MNI152NLin2009cAsym", seg="Schaefer100")
    assert [path.relative_to(tmp_path).as_posix() for path in paths] == [
        f"sub-{index:02d}/ses-1/func/sub-{index:02d}_ses-1_task-rest_run-1_space-MNI152NLin2009cAsym"
        "_seg-Schaefer100_stat-pearsoncorrelation_relmat.tsv"
        for index in range(3)
    ]
    for index, path in enumerate(paths):
        np.testing.assert_array_equal(read_relmat(path).values, correlations.values[index])
    shrunk = connectivity(_cohort_signals(), "correlation")
    assert "stat-shrunkcorrelation" in write_relmats(shrunk, tmp_path, bids_folders=False)[0].name
    z_mean = mean_connectome(correlations, back_transform=False).expand_dims(run=["sub-group"])
    assert "stat-fisherz" in write_relmats(z_mean, tmp_path)[0].name
    with pytest.raises(ValueError, match="pass stat="):
        write_relmats(correlations.copy().assign_attrs(kind=None), tmp_path)


def test_write_connectomes_into_the_store_and_reopen_lazily(tmp_path):
    store = tmp_path / "cohort.zarr"
    signals = _cohort_signals(n_runs=5)
    lazy = connectivity(signals.chunk(run=2), "correlation")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no unstable Zarr v3 string types
        group = write_connectomes(lazy, store, "correlation")
    assert group == "derivatives/connectome/correlation"
    with raise_if_dask_computes():
        reopened = open_connectomes(store, "correlation")
    assert isinstance(reopened.data, da.Array)
    assert reopened.data.chunks[0] == (2, 2, 1)
    np.testing.assert_array_equal(reopened.values, lazy.values)
    assert [str(name) for name in reopened["run"].values] == list(signals["run"].values)
    np.testing.assert_array_equal(reopened["x_"].values, signals["x"].values)
    assert reopened.attrs["kind"] == "correlation"

    with pytest.raises(FileExistsError, match="already contains data"):
        write_connectomes(lazy, store, "correlation")
    write_connectomes(lazy * 2, store, "correlation", mode="w")
    np.testing.assert_array_equal(open_connectomes(store, "correlation").values, 2 * lazy.values)

    delayed = write_connectomes(lazy, store, "again", compute=False)
    delayed.compute()
    np.testing.assert_array_equal(open_connectomes(store, "again").values, lazy.values)

    # irregular chunks (runs of a list input) are regularized for Zarr
    runs = [signals.isel(run=index).chunk() for index in range(5)]
    ragged = connectivity(runs, "covariance")
    ragged = ragged.copy(data=ragged.data.rechunk(((1, 3, 1), (4,), (4,))))
    write_connectomes(ragged, store, "covariance")
    np.testing.assert_array_equal(open_connectomes(store, "covariance").values, ragged.values)

    with pytest.raises(FileNotFoundError, match="no connectome group"):
        open_connectomes(store, "missing")
    with pytest.raises(ValueError, match="name='a/b'"):
        write_connectomes(lazy, store, "a/b")


def test_connectomes_are_stored_uncompressed_unless_asked(tmp_path):
    import zarr

    store = tmp_path / "cohort.zarr"
    covariances = connectivity(_cohort_signals(), "covariance")
    write_connectomes(covariances, store, "plain")
    write_connectomes(covariances, store, "packed", compressors="auto")
    root = zarr.open_group(str(store), mode="r")
    assert root["derivatives/connectome/plain/plain"].compressors == ()
    assert len(root["derivatives/connectome/packed/packed"].compressors) == 1
    np.testing.assert_array_equal(open_connectomes(store, "packed").values, covariances.values)


def test_several_kinds_in_one_group_written_in_one_pass(tmp_path):
    store = tmp_path / "cohort.zarr"
    signals = _cohort_signals(n_runs=4).chunk(run=2)
    kinds = {kind: connectivity(signals, kind) for kind in ("correlation", "covariance")}
    with raise_if_dask_computes(max_computes=1):
        write_connectomes(kinds, store, "schaefer")
    for kind, values in kinds.items():
        np.testing.assert_array_equal(
            open_connectomes(store, "schaefer", kind=kind).values, values.values
        )
    with pytest.raises(ValueError, match="holds \\['correlation', 'covariance'\\]; pass kind="):
        open_connectomes(store, "schaefer")
    with pytest.raises(KeyError, match="no variable 'tangent'"):
        open_connectomes(store, "schaefer", kind="tangent")
    with pytest.raises(TypeError, match="DataArray, a Dataset or a dict"):
        write_connectomes([kinds["correlation"]], store, "list")
    with pytest.raises(ValueError, match="connectomes\\['bad'\\] must be"):
        write_connectomes({"bad": signals}, store, "bad")
