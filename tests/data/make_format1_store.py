"""How ``format1.zarr`` was made: brainxr's store format 1, written by commit 72cb806.

Run from the repository root at that commit (``git worktree add /tmp/v1 72cb806``)::

    python tests/data/make_format1_store.py tests/data

It writes two tiny runs (10 x 10 x 8 grid, 64 voxels in two voxel chunks, 12
and 9 volumes) into ``format1.zarr`` and their expected contents into
``format1_expected.npz``, so that later versions can test that they still
read format 1.
"""

import json
import shutil
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from conftest import write_tiny_run  # noqa: E402

import brainxr  # noqa: E402

out = Path(sys.argv[1])
source = out / "format1-source"
shutil.rmtree(source, ignore_errors=True)
write_tiny_run(source, "01", n_volumes=12, shape=(10, 10, 8), seed=11)
write_tiny_run(source, "02", n_volumes=9, shape=(10, 10, 8), seed=12, task="rest")
store = out / "format1.zarr"
shutil.rmtree(store, ignore_errors=True)
brainxr.ingest(source, store, voxel_chunk_mb=40 * 12 * 4 / 2**20, progress=False)
cohort = brainxr.open_cohort(store)
expected = {"mask": cohort.grid.mask, "affine": cohort.grid.affine}
for key in cohort:
    ds = cohort[key]
    for name in ("bold", "valid", "confounds"):
        expected[f"{key}/{name}"] = ds[name].values
    expected[f"{key}/confound"] = np.array([str(c) for c in ds["confound"].values])
    expected[f"{key}/confounds_metadata"] = np.array(json.dumps(ds.attrs["confounds_metadata"]))
np.savez(out / "format1_expected.npz", **expected)
shutil.rmtree(source)
