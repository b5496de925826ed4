"""Benchmark: interactive views in pages and notebooks, brainxr beside nilearn (sizes).

Three views, as a user makes them:

1. ``view_connectome`` of a 264-node (Power-like) graph at ``edge_threshold="99%"``;
2. ``view_connectome`` of a 100-node graph at ``"95%"``;
3. ``view_markers`` of the 264 nodes.

Printed for each library: the size of each view saved as a page
(``save_as_html``, made in a fresh process), and a notebook of three cells,
one view each, executed by a Jupyter kernel (nbclient) as a user's notebook
would be: the size of each cell's output, of the notebook file, and the
kernel's wall time.

Run ``python benchmarks/notebook_views.py``. ``--pythonpath DIR`` runs the
brainxr side from another checkout (e.g. the code before a change).
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import load_average, print_table  # noqa: E402

GRAPHS = """
import numpy as np

def graph(n_nodes, seed):
    rng = np.random.default_rng(seed)
    coords = rng.uniform([-60, -95, -40], [60, 60, 70], (n_nodes, 3))
    signals = rng.standard_normal((150, n_nodes)) + rng.standard_normal((150, 1))
    return np.corrcoef(signals.T), coords

big, big_coords = graph(264, 0)
small, small_coords = graph(100, 1)
"""

VIEWS = [
    'plotting.view_connectome(big, big_coords, edge_threshold="99%")',
    'plotting.view_connectome(small, small_coords, edge_threshold="95%")',
    "plotting.view_markers(big_coords)",
]

MODULES = {"brainxr": "brainxr.plotting", "nilearn": "nilearn.plotting"}


def _env(pythonpath: str | None) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", BRAINXR_PROGRESS="0")
    if pythonpath:
        env["PYTHONPATH"] = pythonpath + os.pathsep + env.get("PYTHONPATH", "")
    return env


def page_sizes(library: str, pythonpath: str | None, workdir: Path) -> list[float]:
    """MB of each view's saved page, made in a fresh process."""
    code = (f"from {MODULES[library].rsplit('.', 1)[0]} import plotting\n{GRAPHS}\n"
            + "".join(f"print(len({view}.get_standalone().encode()))\n" for view in VIEWS))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(pythonpath),
                         check=True, cwd=workdir)  # not the repository: -c imports from the working directory
    return [int(line) / 1e6 for line in out.stdout.split()[-len(VIEWS):]]


def notebook_sizes(library: str, pythonpath: str | None, workdir: Path) -> tuple[list[float], float, float]:
    """MB of each view cell's outputs, MB of the notebook file and wall s, of three view cells run by a kernel."""
    import nbformat
    from nbclient import NotebookClient
    from nbformat.v4 import new_code_cell, new_notebook

    cells = [new_code_cell(f"from {MODULES[library].rsplit('.', 1)[0]} import plotting\n{GRAPHS}")]
    cells += [new_code_cell(view) for view in VIEWS]
    notebook = new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                                  "language": "python"}})
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(_env(pythonpath))  # the kernel inherits this environment
    try:
        started = time.perf_counter()
        NotebookClient(notebook, timeout=600, kernel_name="python3",
                       resources={"metadata": {"path": str(workdir)}}).execute()
        wall = time.perf_counter() - started
    finally:
        os.environ.clear()
        os.environ.update(saved)
    path = workdir / f"{library}.ipynb"
    nbformat.write(notebook, path)
    outputs = [len(json.dumps(cell.outputs).encode()) / 1e6 for cell in notebook.cells[1:]]
    return outputs, path.stat().st_size / 1e6, wall


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pythonpath", help="import brainxr from this folder (another checkout)")
    args = parser.parse_args(argv)
    print(f"before: {load_average()}")
    with tempfile.TemporaryDirectory(prefix="brainxr-views-") as tmp:
        results = {}
        for library in ("brainxr", "nilearn"):
            path = args.pythonpath if library == "brainxr" else None
            results[library] = page_sizes(library, path, Path(tmp)), notebook_sizes(library, path, Path(tmp))
    rows = []
    for n, view in enumerate(VIEWS):
        (ours_page, (ours_out, _, _)), (theirs_page, (theirs_out, _, _)) = results["brainxr"], results["nilearn"]
        rows.append((view.split("(")[0].replace("plotting.", "") + f" #{n + 1}", f"{ours_page[n]:.2f}",
                     f"{theirs_page[n]:.2f}", f"{ours_out[n]:.3f}", f"{theirs_out[n]:.3f}"))
    print_table("each view (MB): saved page, and its cell's output in the executed notebook", rows,
                ("view", "page brainxr", "page nilearn", "cell brainxr", "cell nilearn"))
    (_, ours_nb, ours_s), (_, theirs_nb, theirs_s) = results["brainxr"][1], results["nilearn"][1]
    print_table("a notebook of three views, executed by a kernel",
                [("brainxr", f"{ours_nb:.2f}", f"{ours_s:.1f}"), ("nilearn", f"{theirs_nb:.2f}", f"{theirs_s:.1f}"),
                 ("ratio brainxr / nilearn", f"{ours_nb / theirs_nb:.2f}", f"{ours_s / theirs_s:.2f}")],
                ("library", "notebook MB", "wall s"))
    print(f"after: {load_average()}")


if __name__ == "__main__":
    main()
