import os

# One BLAS thread per process keeps tests predictable on small CI machines.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import matplotlib

matplotlib.use("Agg")


import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

#: markers of the tests left out of the fast subset (pytest -m "not slow") with the slow ones
HEAVY_MARKERS = {"integration", "distributed", "browser", "slurm"}


def pytest_collection_modifyitems(config, items):
    """Integration, distributed, browser and Slurm tests are slow too: the fast subset leaves them out."""
    for item in items:
        if HEAVY_MARKERS & {mark.name for mark in item.iter_markers()}:
            item.add_marker(pytest.mark.slow)


TINY_AFFINE = np.array([[-4.0, 0, 0, 90], [0, 4, 0, -126], [0, 0, 4, -72], [0, 0, 0, 1]])


def write_tiny_run(folder, sub, n_volumes=30, shape=(20, 24, 20), seed=0, affine=TINY_AFFINE,
                   task="rest", sidecar=True, confounds=True, brain_mask=True, dtype=np.float32):
    """Write one small fMRIPrep-like run (BOLD + sidecar + mask + confounds); return the BOLD path."""
    rng = np.random.default_rng(seed)
    func = Path(folder) / f"sub-{sub}" / "func"
    func.mkdir(parents=True, exist_ok=True)
    mask = np.zeros(shape, bool)
    mask[3:-3, 3:-3, 2:-2] = True
    data = (rng.normal(size=shape + (n_volumes,)) * 10 + 500).astype(np.float32) * mask[..., None]
    img = nib.Nifti1Image(data.astype(dtype), affine)
    img.header.set_zooms((4.0, 4.0, 4.0, 2.0))
    img.header.set_xyzt_units("mm", "sec")
    stem = f"sub-{sub}_task-{task}_space-MNI152NLin2009cAsym_res-4"
    bold = func / f"{stem}_desc-preproc_bold.nii.gz"
    nib.save(img, str(bold))
    if sidecar:
        (func / f"{stem}_desc-preproc_bold.json").write_text(json.dumps({"RepetitionTime": 2.0, "TaskName": task}))
    if brain_mask:
        nib.save(nib.Nifti1Image(mask.astype(np.uint8), affine), str(func / f"{stem}_desc-brain_mask.nii.gz"))
    if confounds:
        table = pd.DataFrame(rng.normal(size=(n_volumes, 4)), columns=["trans_x", "csf", "white_matter", "framewise_displacement"])
        table.iloc[0, 3] = np.nan
        path = func / f"sub-{sub}_task-{task}_desc-confounds_timeseries.tsv"
        table.to_csv(path, sep="\t", index=False, na_rep="n/a")
        (func / f"sub-{sub}_task-{task}_desc-confounds_timeseries.json").write_text(
            json.dumps({"csf": {"Method": "Mean"}})
        )
    return bold


@pytest.fixture
def tiny_derivatives(tmp_path):
    """A derivatives folder of 3 small runs (4 mm, 30 volumes)."""
    root = tmp_path / "derivatives"
    for n, sub in enumerate(["01", "02", "03"]):
        write_tiny_run(root, sub, seed=n)
    return root


@pytest.fixture(scope="session")
def small_synthetic(tmp_path_factory):
    """A small synthetic fMRIPrep cohort (3 subjects, 6 mm, 80 volumes) and its ingested store."""
    from brainxr.datasets import make_synthetic_cohort

    import brainxr

    root = tmp_path_factory.mktemp("small-synthetic")
    synthetic = make_synthetic_cohort(root / "derivatives", n_subjects=3, n_volumes=80, resolution=6, n_regions=40,
                                      seed=3)
    brainxr.ingest(synthetic.root, root / "cohort.zarr", progress=False)
    return synthetic, root / "cohort.zarr"


@pytest.fixture(scope="session", autouse=True)
def templateflow_home(tmp_path_factory):
    """A local TemplateFlow cache (TemplateFlow's layout) as ``$TEMPLATEFLOW_HOME``, for every test.

    Small synthetic templates and atlases, and nilearn's own MNI152 files as
    ``MNI152NLin2009aSym`` (so that templates, template masks and plot
    backgrounds are nilearn's). The client runs offline on it
    (``TEMPLATEFLOW_AUTOUPDATE=0``); nothing is downloaded. Templates
    prepared at other resolutions are kept under a session folder
    (``$BRAINXR_DATA``), not the user's.
    """
    from templateflow_cache import build_templateflow_home

    root = build_templateflow_home(tmp_path_factory.mktemp("templateflow"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TEMPLATEFLOW_HOME", str(root))
        patch.setenv("TEMPLATEFLOW_AUTOUPDATE", "0")
        patch.setenv("BRAINXR_DATA", str(tmp_path_factory.mktemp("brainxr_data")))
        yield root


@pytest.fixture(scope="session")
def s3_server():
    """A real S3 API (moto's server mode) on 127.0.0.1, for the whole session."""
    from s3_server import S3Server

    server = S3Server()
    yield server
    server.stop()


@pytest.fixture
def s3(s3_server, monkeypatch):
    """The standard S3 environment pointed at the moto server, and a new empty bucket.

    Yields a namespace with ``server``, ``bucket``, ``url`` (``s3://bucket``) and
    ``fs`` (an s3fs filesystem, for setting up and inspecting objects).
    """
    import types
    import uuid

    import s3fs

    for name, value in s3_server.environment().items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    bucket = f"brainxr-{uuid.uuid4().hex[:12]}"
    fs = s3fs.S3FileSystem(skip_instance_cache=True)
    fs.mkdir(bucket)
    yield types.SimpleNamespace(server=s3_server, bucket=bucket, url=f"s3://{bucket}", fs=fs)
def _interpolate_volumes_fixed(volumes, sample_mask, t_r, extrapolate):
    """nilearn 0.14.1's ``_interpolate_volumes`` with the censored rows selected correctly.

    nilearn indexes with ``~sample_mask`` on integer indices (a bitwise not),
    which selects the mirror images of the kept volumes; this is the same
    function with a boolean complement, i.e. what nilearn documents (see
    docs/architecture.md, "Differences from nilearn").
    """
    from scipy.interpolate import CubicSpline

    frame_times = np.arange(volumes.shape[0]) * t_r
    kept = np.zeros(volumes.shape[0], dtype=bool)
    kept[sample_mask] = True
    spline = CubicSpline(frame_times[kept], volumes[kept, :], extrapolate=extrapolate)
    volumes[~kept, :] = spline(frame_times)[~kept, :]
    return volumes


@pytest.fixture
def fixed_nilearn_interpolation(monkeypatch):
    """nilearn.signal with its censoring interpolation fixed (one line), for comparisons with a sample_mask."""
    from nilearn import signal as nilearn_signal

    monkeypatch.setattr(nilearn_signal, "_interpolate_volumes", _interpolate_volumes_fixed)
