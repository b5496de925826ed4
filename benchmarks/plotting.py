"""Benchmark: brainxr's plotting beside nilearn's, wall time and peak memory.

Cases (each side in its own subprocess; peak memory is that process's
``ru_maxrss`` from ``os.wait4``, imports included):

- ``connectome``: ``plot_connectome`` of a 264-node (Power-like) graph at
  ``edge_threshold="99.8%"``, saved as PNG;
- ``matrix``: ``plot_matrix`` of the same 264 x 264 matrix with labels, PNG;
- ``stat_map``: ``plot_stat_map`` of a 2 mm seed map over each library's
  default MNI152 background (brainxr's is 2 mm, nilearn's 1 mm), PNG;
- ``parcellation``: ``find_parcellation_cut_coords`` on a 2 mm, 400-region
  labels atlas (from ``brainxr.datasets``);
- ``carpet``: ``plot_carpet`` of a 4D run (3 mm, 400 volumes) with a mask;
  brainxr also from a lazy ``(time, voxel)`` DataArray (the cohort-store
  layout, 32 MB chunks);
- ``view``: ``view_connectome`` of the 264-node graph (page size reported).

Run ``python benchmarks/plotting.py`` (``--cases connectome matrix`` to pick).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

N_NODES = 264
CHUNK_VOXELS = 20000  # 400 volumes x 20000 voxels x 4 bytes = 32 MB chunks


def _graph():
    import numpy as np

    rng = np.random.default_rng(0)
    coords = rng.uniform([-60, -95, -40], [60, 60, 70], (N_NODES, 3))
    signals = rng.standard_normal((150, N_NODES)) + rng.standard_normal((150, 1))
    return np.corrcoef(signals.T), coords


def _seed_map():
    import nibabel as nib
    import numpy as np

    affine = np.array([[2.0, 0, 0, -90], [0, 2, 0, -126], [0, 0, 2, -72], [0, 0, 0, 1]])
    ijk = np.indices((91, 109, 91)).reshape(3, -1)
    world = (affine[:3, :3] @ ijk + affine[:3, 3:4]).T
    data = np.exp(-((world - [0, -52, 18]) ** 2).sum(axis=1) / 200) - 0.5 * np.exp(-((world - [40, 20, 0]) ** 2).sum(axis=1) / 300)
    return nib.Nifti1Image(data.reshape(91, 109, 91).astype(np.float32), affine)


def run_case(case: str, side: str, workdir: Path) -> dict:
    """Run one case on one side in this process; returns what to report."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import nibabel as nib
    import numpy as np

    plotting = __import__("brainxr.plotting" if side.startswith("brainxr") else "nilearn.plotting", fromlist=["x"])
    output = workdir / f"{case}_{side}.png"
    extra = {}
    if case in ("connectome", "matrix", "view"):
        matrix, coords = _graph()
    if case == "stat_map":
        seed_map = _seed_map()
    if case == "parcellation":
        atlas = nib.load(workdir / "atlas.nii")
        atlas = nib.Nifti1Image(np.asarray(atlas.dataobj), atlas.affine)
    if case == "carpet":
        bold_path, mask_path = workdir / "bold.nii", workdir / "mask.nii"
        if side == "brainxr-lazy":
            import dask
            import dask.array as da
            import xarray as xr

            # the cohort-store layout: (time, voxel) chunks, each read from its own file
            chunk_files = sorted(workdir.glob("chunk_*.npy"))
            shapes = [np.load(path, mmap_mode="r").shape for path in chunk_files]
            blocks = [da.from_delayed(dask.delayed(np.load)(path), shape=shape, dtype=np.float32)
                      for path, shape in zip(chunk_files, shapes)]
            lazy = xr.DataArray(da.concatenate(blocks, axis=1), dims=("time", "voxel"), attrs={"t_r": 2.0})
    start = time.perf_counter()
    if case == "connectome":
        plotting.plot_connectome(matrix, coords, edge_threshold="99.8%", node_size=20, colorbar=True,
                                 output_file=output)
    elif case == "matrix":
        plotting.plot_matrix(matrix, labels=[f"region {i}" for i in range(N_NODES)], vmin=-1, vmax=1,
                             colorbar=True)
        plt.savefig(output)
    elif case == "stat_map":
        plotting.plot_stat_map(seed_map, threshold=0.3, title="seed", output_file=output)
    elif case == "parcellation":
        coords = plotting.find_parcellation_cut_coords(atlas)
        extra["regions"] = len(coords)
    elif case == "carpet":
        if side == "brainxr-lazy":
            figure = plotting.plot_carpet(lazy)
        else:
            figure = plotting.plot_carpet(str(bold_path), mask_img=str(mask_path), t_r=2.0)
        figure.savefig(output)
    elif case == "view":
        view = plotting.view_connectome(matrix, coords, edge_threshold="99%")
        extra["page_MB"] = round(len(view.get_standalone().encode()) / 1e6, 2)
    extra["wall_s"] = time.perf_counter() - start
    return extra


def prepare(cases, workdir: Path) -> None:
    """Write the inputs both sides read."""
    import nibabel as nib
    import numpy as np

    if "parcellation" in cases:
        from brainxr.datasets import load_synthetic_labels_atlas

        nib.save(load_synthetic_labels_atlas(resolution=2, n_regions=400).maps, workdir / "atlas.nii")
    if "carpet" in cases:
        from brainxr.datasets import load_synthetic_mni152_brain_mask

        mask = load_synthetic_mni152_brain_mask(3)
        rng = np.random.default_rng(0)
        shape = (*mask.shape, 400)
        data = np.empty(shape, np.float32)
        inside = np.asarray(mask.dataobj) > 0
        for t in range(shape[3]):
            data[..., t] = (rng.standard_normal(mask.shape) + 100 + 0.01 * t) * inside
        img = nib.Nifti1Image(data, mask.affine)
        img.header.set_zooms((*img.header.get_zooms()[:3], 2.0))
        nib.save(img, workdir / "bold.nii")
        nib.save(mask, workdir / "mask.nii")
        masked = data[inside].T
        for index, start in enumerate(range(0, masked.shape[1], CHUNK_VOXELS)):
            np.save(workdir / f"chunk_{index:04d}.npy", np.ascontiguousarray(masked[:, start:start + CHUNK_VOXELS]))


def measure(case: str, side: str, workdir: Path) -> dict:
    """Run a case in a fresh subprocess; add its peak resident memory."""
    process = subprocess.Popen(
        [sys.executable, __file__, "--child", case, side, str(workdir)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"},
    )
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"{case} on {side} failed (exit {process.returncode})")
    result = json.loads(output.strip().splitlines()[-1])
    result["peak_MB"] = usage.ru_maxrss / 1024
    return result


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    all_cases = ["connectome", "matrix", "stat_map", "parcellation", "carpet", "view"]
    parser.add_argument("--cases", nargs="+", default=all_cases, choices=all_cases)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--prepare", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.prepare:
        prepare(args.prepare[1:], Path(args.prepare[0]))
        return
    if args.child:
        case, side, workdir = args.child
        print(json.dumps(run_case(case, side, Path(workdir))))
        return
    with tempfile.TemporaryDirectory(prefix="brainxr-bench-plotting-") as workdir:
        workdir = Path(workdir)
        # in a subprocess: a child's peak memory starts at its parent's at fork time
        subprocess.run([sys.executable, __file__, "--prepare", str(workdir), *args.cases], check=True)
        header = f"{'case':<14}{'side':<14}{'wall s':>9}{'ratio':>8}{'peak MB':>10}{'ratio':>8}  notes"
        print(header)
        print("-" * len(header))
        for case in args.cases:
            reference = measure(case, "nilearn", workdir)
            sides = ["brainxr", "brainxr-lazy"] if case == "carpet" else ["brainxr"]
            rows = [(side, measure(case, side, workdir)) for side in sides] + [("nilearn", reference)]
            for side, result in rows:
                notes = ", ".join(f"{k}={v}" for k, v in result.items() if k not in ("wall_s", "peak_MB"))
                print(f"{case:<14}{side:<14}{result['wall_s']:>9.2f}{result['wall_s'] / reference['wall_s']:>8.2f}"
                      f"{result['peak_MB']:>10.0f}{result['peak_MB'] / reference['peak_MB']:>8.2f}  {notes}")


if __name__ == "__main__":
    main()
