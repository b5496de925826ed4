"""Benchmark: the cohort engine from 100 to 100,000 runs, beside nilearn's per-run loop.

A few synthetic fMRIPrep runs are ingested once; cohorts of N runs are then
made cheaply from them (:func:`brainxr.testing.replicate_cohort`: array files
hard-linked, new subject names, every run's confounds scaled by its own
small noise so nothing deduplicates). For N = 100,000 only the runs'
metadata is written: that cohort is for graph building only, and any read of
its arrays would fail.

The pipeline is the one a user writes::

    cohort = brainxr.open_cohort(store)
    signals = cohort.extract(atlas, confounds_strategy="simple", clean=CLEAN)
    correlation = connectivity(signals, kind="correlation")
    covariance = connectivity(signals, kind="covariance")
    write = write_connectomes({"correlation": ..., "covariance": ...}, store, name, compute=False)
    # compute: the write (one pass over the bold data), then from the store
    mean_connectome(correlation).compute(); tangent_space(covariance) (+ its write)

Each measurement runs in a fresh process and prints, per N: ``open_cohort``
time; graph build time of the lazy pipeline (extract + confounds strategy +
clean + per-run correlation and covariance + their write); tasks and layers
of that graph; bytes of graph sent to a distributed scheduler (measured on
the ``update-graph`` message for the distributed runs, the same serialization
computed otherwise); client peak RSS during the build and RSS after it;
compute time (the write, then the group mean and the tangent space from the
store) with the threaded scheduler (2 threads) and with a cluster of 2
single-threaded worker processes (``distributed.deploy.subprocess.SubprocessCluster``:
LocalCluster's layout, with the scheduler in its own process so that its
memory can be read); peak RSS of client, scheduler and each worker. Peak RSS
is the process's own ``VmHWM`` (reset through ``/proc/self/clear_refs``
between stages), never ``ru_maxrss`` (which a child inherits from its
parent across exec).

nilearn's per-run loop runs at N = 100 on the same runs (bold symlinked to
the synthetic files, each replica's varied confounds written as its TSV):
``NiftiLabelsMasker`` (fit once) + ``load_confounds_strategy`` per run, then
``ConnectivityMeasure`` correlation and tangent; the per-run correlations
and the geometric means of both sides are compared. The end-to-end table
sets nilearn's time per run beside brainxr's open + build + compute for
each N and scheduler (the cluster's start counted for the distributed rows;
their peak is the largest of the client's and the workers' own).

``--out-of-core`` runs the memory proof instead: 2 mm runs replicated to at
least 10 GB of decompressed bold, extract + clean + connectivity + group
mean on ``LocalCluster(n_workers=2, threads_per_worker=1,
memory_limit="1GiB")``; it prints the data size, the memory limit, the peak
RSS of each worker and whether a worker was restarted.

Run ``python benchmarks/scale.py`` (``--help``: sizes, resolution, volumes).
Replicated cohorts are kept in ``--data`` between runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import REPO, print_table  # noqa: E402

CLEAN = {"detrend": True, "standardize": "zscore_sample", "low_pass": 0.08, "high_pass": 0.009}


# -- memory of a process (its own peak, never ru_maxrss) ------------------------------


def memory(pid="self") -> dict:
    """``VmHWM`` (peak) and ``VmRSS`` of a process, in MB."""
    values = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(("VmHWM:", "VmRSS:")):
                values[line.split(":")[0]] = int(line.split()[1]) / 1024
    return {"peak_mb": values.get("VmHWM", 0.0), "rss_mb": values.get("VmRSS", 0.0)}


def reset_peak(pid="self") -> None:
    """Reset ``VmHWM`` to the current RSS (Linux ``clear_refs``)."""
    with open(f"/proc/{pid}/clear_refs", "w") as clear:
        clear.write("5")


def load() -> str:
    return "load average " + " ".join(f"{value:.2f}" for value in os.getloadavg())


# -- data ------------------------------------------------------------------------------


def base_cohort(data: Path, resolution: float, volumes: int, n_base: int):
    """The synthetic runs and their ingested store (made once, kept in ``data``)."""
    from brainxr.datasets import make_synthetic_cohort

    import brainxr

    from brainxr.store import BOLD_COMPRESSORS, FORMAT_VERSION

    # the store format and the bold codec are in the name: cohorts kept from an older brainxr are never measured
    blosc = BOLD_COMPRESSORS[0]
    codec = f"{blosc.cname.value}-{blosc.shuffle.value}"
    root = data / f"base-r{resolution:g}-v{volumes}-n{n_base}-format{FORMAT_VERSION}-{codec}"
    done = root / "ready.json"
    if not done.exists():
        shutil.rmtree(root, ignore_errors=True)
        print(f"generating {n_base} synthetic runs ({resolution:g} mm, {volumes} volumes) in {root} ...", flush=True)
        synthetic = make_synthetic_cohort(root / "derivatives", n_subjects=n_base, n_volumes=volumes,
                                          resolution=resolution, seed=11)
        brainxr.ingest(synthetic.root, root / "base.zarr", n_workers=2, progress=False)
        done.write_text(json.dumps({
            "atlas": str(synthetic.atlas_labels_img), "lut": str(synthetic.atlas_labels_tsv),
            "runs": [{"bold": str(run.bold), "mask": str(run.mask), "confounds_json": str(run.confounds_json)}
                     for run in synthetic.runs],
        }))
    info = json.loads(done.read_text())
    info["store"] = str(root / "base.zarr")
    info["root"] = str(root)
    return info


def replicated(info: dict, n_runs: int, arrays: bool = True) -> Path:
    """A store of ``n_runs`` runs replicated from the base store (kept once made)."""
    from brainxr.testing import replicate_cohort

    target = Path(info["root"]) / f"cohort-{n_runs}{'' if arrays else '-metadata'}.zarr"
    marker = target.with_suffix(".ready")
    if not marker.exists():
        shutil.rmtree(target, ignore_errors=True)
        started = time.perf_counter()
        replicate_cohort(info["store"], target, n_runs, arrays=arrays)
        marker.write_text(str(time.perf_counter() - started))
        print(f"replicated {n_runs} runs in {float(marker.read_text()):.0f} s ({target})", flush=True)
    return target


def nilearn_inputs(info: dict, n_runs: int) -> Path:
    """fMRIPrep-like files of the first ``n_runs`` replicas: bold and mask symlinked, varied confounds TSV."""
    import numpy as np

    from brainxr import store as cohort_store
    from brainxr.testing import replicate_cohort

    folder = Path(info["root"]) / f"nilearn-{n_runs}"
    marker = folder / "ready"
    if marker.exists():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    # the replicas' confounds exactly as the store holds them
    scratch = Path(info["root"]) / f"nilearn-{n_runs}.zarr"
    shutil.rmtree(scratch, ignore_errors=True)
    keys = replicate_cohort(info["store"], scratch, n_runs)
    base_keys = sorted(cohort_store.runs_table(info["store"]).index)
    for index, key in enumerate(keys):
        source = info["runs"][sorted(range(len(info["runs"])), key=lambda i: Path(info["runs"][i]["bold"]).name)
                              [index % len(base_keys)]]
        table, _ = cohort_store.read_confounds(scratch, key)
        func = folder / f"sub-{index:06d}" / "func"
        func.mkdir(parents=True)
        subject = Path(source["bold"]).name.split("_")[0]
        rename = lambda name: name.replace(subject, f"sub-{index:06d}")  # noqa: E731
        bold = func / rename(Path(source["bold"]).name)
        bold.symlink_to(source["bold"])
        (func / rename(Path(source["mask"]).name)).symlink_to(source["mask"])
        confounds = func / rename(Path(source["confounds_json"]).name)
        confounds.symlink_to(source["confounds_json"])
        table.to_csv(confounds.with_suffix(".tsv"), sep="\t", index=False, na_rep="n/a")
        assert np.isfinite(table.to_numpy()[1:, :]).any()
    shutil.rmtree(scratch)
    marker.write_text("ok")
    return folder


# -- the measured sides (each in its own process) --------------------------------------


def graph_bytes(collection) -> int:
    """Bytes of the graph message a distributed client sends (the client's own serialization)."""
    from dask._expr import FinalizeCompute
    from dask.base import collections_to_expr
    from distributed.protocol import serialize, to_serialize
    from distributed.utils import nbytes

    expr = FinalizeCompute(collections_to_expr([collection], True)).optimize()
    header, frames = serialize(to_serialize(expr), on_error="raise")
    return sum(map(nbytes, [header] + frames))


def child_brainxr(args) -> dict:
    started = time.perf_counter()
    import dask
    import numpy as np

    import brainxr
    from brainxr.connectome import connectivity, mean_connectome, open_connectomes, tangent_space, write_connectomes
    from brainxr.regions import load_labels_atlas

    atlas = load_labels_atlas(args.atlas, lut=args.lut)
    result = {"imports_s": time.perf_counter() - started, "baseline_rss_mb": memory()["rss_mb"]}
    reset_peak()
    started = time.perf_counter()
    cohort = brainxr.open_cohort(args.store)
    result["open_s"] = time.perf_counter() - started
    result["n_runs"] = len(cohort)

    started = time.perf_counter()
    signals = cohort.extract(atlas, confounds_strategy="simple", clean=CLEAN)
    correlation = connectivity(signals, kind="correlation")
    covariance = connectivity(signals, kind="covariance")
    name = f"scale-{args.scheduler}"
    write = write_connectomes({"correlation": correlation, "covariance": covariance}, args.output, name,
                              mode="w", compute=False)
    result["build_s"] = time.perf_counter() - started
    after_build = memory()
    result["client_build_peak_mb"] = after_build["peak_mb"]
    result["client_after_build_mb"] = after_build["rss_mb"]
    graph = write.__dask_graph__()
    result["layers"] = len(graph.layers)
    result["tasks"] = len(graph)
    if args.scheduler == "none":
        result["graph_mb"] = graph_bytes(write) / 2**20
        return result

    reset_peak()
    cluster = client = None
    sent = []
    if args.scheduler == "distributed":
        from distributed import Client
        from distributed.deploy.subprocess import SubprocessCluster
        from distributed.utils import nbytes

        cluster_started = time.perf_counter()
        cluster = SubprocessCluster(n_workers=2, threads_per_worker=1, dashboard_address=":0")
        client = Client(cluster)
        result["cluster_start_s"] = time.perf_counter() - cluster_started
        send = client._send_to_scheduler

        def counting_send(message):
            if message.get("op") == "update-graph":
                serialized = message["expr_ser"]
                sent.append(sum(map(nbytes, [serialized.header, *serialized.frames])))
            return send(message)

        client._send_to_scheduler = counting_send
        client.run(reset_peak)
        client.run_on_scheduler(reset_peak)
        context = dask.config.set()
    else:
        context = dask.config.set(scheduler="threads", num_workers=2)
    with context:
        started = time.perf_counter()
        dask.compute(write)
        result["write_s"] = time.perf_counter() - started
        result["graph_mb"] = (sent[0] if sent else graph_bytes(write)) / 2**20
        group = mean_connectome(open_connectomes(args.output, name, kind="correlation")).compute()
        tangent = tangent_space(open_connectomes(args.output, name, kind="covariance"))
        write_connectomes(tangent["tangent"], args.output, f"{name}-tangent", mode="w")
        result["compute_s"] = time.perf_counter() - started
    result["client_compute_peak_mb"] = memory()["peak_mb"]
    if client is not None:
        workers = client.run(memory)
        result["worker_peak_mb"] = [value["peak_mb"] for value in workers.values()]
        result["scheduler_peak_mb"] = client.run_on_scheduler(memory)["peak_mb"]
        client.close()
        cluster.close()
    # saved per N: the comparisons below pair results of the same cohort
    np.save(Path(args.save) / f"{name}-{result['n_runs']}-mean.npy", group.values)
    np.save(Path(args.save) / f"{name}-{result['n_runs']}-gmean.npy", tangent["mean"].values)
    if args.compare_runs:
        values = open_connectomes(args.output, name, kind="correlation").isel(run=slice(0, args.compare_runs))
        np.save(Path(args.save) / f"{name}-{result['n_runs']}-first.npy", values.values)
    return result


def child_nilearn(args) -> dict:
    started = time.perf_counter()
    import warnings

    import numpy as np
    from nilearn.connectome import ConnectivityMeasure
    from nilearn.interfaces.fmriprep import load_confounds_strategy
    from nilearn.maskers import NiftiLabelsMasker

    import brainxr

    warnings.simplefilter("ignore")
    mask = brainxr.open_cohort(args.store).mask_img
    bolds = sorted(Path(args.inputs).glob("sub-*/func/*_desc-preproc_bold.nii.gz"))
    result = {"imports_s": time.perf_counter() - started}
    reset_peak()
    started = time.perf_counter()
    masker = NiftiLabelsMasker(args.atlas, lut=args.lut, mask_img=mask, t_r=2.0, **CLEAN).fit()
    signals = []
    for bold in bolds:
        confounds, sample_mask = load_confounds_strategy(str(bold), denoise_strategy="simple")
        signals.append(masker.transform(str(bold), confounds=confounds, sample_mask=sample_mask))
    result["extract_s"] = time.perf_counter() - started
    correlation = ConnectivityMeasure(kind="correlation")
    correlations = correlation.fit_transform(signals)
    tangent = ConnectivityMeasure(kind="tangent")
    tangent.fit_transform(signals)
    result["compute_s"] = time.perf_counter() - started
    result["peak_mb"] = memory()["peak_mb"]
    result["n_runs"] = len(bolds)
    np.save(Path(args.save) / "nilearn-first.npy", correlations)
    np.save(Path(args.save) / "nilearn-gmean.npy", tangent.mean_)
    return result


def child_out_of_core(args) -> dict:
    import dask
    import numpy as np
    from distributed import Client, LocalCluster

    import brainxr
    from brainxr.connectome import connectivity, mean_connectome, open_connectomes, write_connectomes
    from brainxr.regions import load_labels_atlas

    atlas = load_labels_atlas(args.atlas, lut=args.lut)
    cohort = brainxr.open_cohort(args.store)
    result = {"n_runs": len(cohort), "memory_limit": "1GiB"}
    result["bold_gb"] = float(sum(
        cohort.runs["n_volumes"].to_numpy(dtype=np.int64)) * cohort.grid.n_voxels * 4 / 1e9)
    with LocalCluster(n_workers=2, threads_per_worker=1, memory_limit="1GiB", dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        pids = client.run(os.getpid)
        client.run(reset_peak)
        started = time.perf_counter()
        signals = cohort.extract(atlas, confounds_strategy="simple", clean=CLEAN)
        correlation = connectivity(signals, kind="correlation")
        with dask.config.set():
            write_connectomes({"correlation": correlation}, args.store, "outofcore", mode="w")
            group = mean_connectome(open_connectomes(args.store, "outofcore", kind="correlation")).compute()
        result["compute_s"] = time.perf_counter() - started
        workers = client.run(memory)
        result["worker_peak_mb"] = [value["peak_mb"] for value in workers.values()]
        result["workers_restarted"] = sorted(set(pids.values()) - set(client.run(os.getpid).values())) != []
        result["finite_group"] = bool(np.isfinite(group.values).all())
    return result


# -- driver ----------------------------------------------------------------------------


def run_child(mode: str, **options) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--child", mode]
    for key, value in options.items():
        command += [f"--{key.replace('_', '-')}", str(value)]
    completed = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    for line in completed.stdout.splitlines():
        if line.startswith("@@RESULT@@"):
            return json.loads(line[len("@@RESULT@@"):])
    raise RuntimeError(f"{mode} child failed:\n{completed.stdout[-3000:]}\n{completed.stderr[-6000:]}")


def fmt(value, digits=1):
    if value is None:
        return "-"
    if isinstance(value, list):
        return "/".join(fmt(v, 0) for v in value)
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def main_scale(args):
    import numpy as np

    info = base_cohort(args.data, args.resolution, args.volumes, args.base_runs)
    save = Path(tempfile.mkdtemp(prefix="brainxr-scale-"))
    sizes = [int(n) for n in args.sizes.split(",") if n]
    build_only = [int(n) for n in args.build_only.split(",") if n]
    print(f"cohort runs: {args.base_runs} synthetic runs ({args.resolution:g} mm, {args.volumes} volumes) "
          f"replicated; pipeline: extract(labels, confounds 'simple', clean {CLEAN}) -> correlation + covariance "
          "-> write -> group mean + tangent", flush=True)
    print(load(), flush=True)
    rows = []
    results = {}
    for n_runs in sizes + build_only:
        compute = n_runs in sizes
        store = replicated(info, n_runs, arrays=compute or n_runs <= args.arrays_max)
        options = dict(store=store, atlas=info["atlas"], lut=info["lut"], save=save, output=store,
                       compare_runs=args.nilearn if n_runs == args.nilearn else 0)
        schedulers = ["threads", "distributed"] if compute and n_runs <= args.distributed_max else (
            ["threads"] if compute else ["none"])
        for scheduler in schedulers:
            before = load()
            result = run_child("brainxr", scheduler=scheduler, **options)
            results[(n_runs, scheduler)] = result
            rows.append((
                n_runs, scheduler, fmt(result["open_s"], 2), fmt(result["build_s"], 2), result["tasks"],
                result["layers"], fmt(result["graph_mb"], 2), fmt(result["client_build_peak_mb"], 0),
                fmt(result["client_after_build_mb"], 0), fmt(result.get("compute_s")),
                fmt(result.get("client_compute_peak_mb"), 0), fmt(result.get("scheduler_peak_mb"), 0),
                fmt(result.get("worker_peak_mb")), before.split("average ")[1],
            ))
            print("  ".join(str(x) for x in rows[-1]), flush=True)
    print_table(
        "brainxr cohort pipeline (MB are VmHWM peaks / VmRSS; graph MB: the update-graph message of a "
        "distributed client)",
        rows,
        ("N", "scheduler", "open s", "build s", "tasks", "layers", "graph MB", "client build peak MB",
         "client after build MB", "compute s", "client compute peak MB", "scheduler peak MB", "worker peaks MB",
         "load before"),
    )
    for n_runs in sizes:
        threads, distributed = results.get((n_runs, "threads")), results.get((n_runs, "distributed"))
        if threads and distributed:
            difference = np.abs(np.load(save / f"scale-threads-{n_runs}-mean.npy")
                                - np.load(save / f"scale-distributed-{n_runs}-mean.npy"))
            print(f"N={n_runs}: distributed / threads compute time = "
                  f"{distributed['compute_s'] / threads['compute_s']:.2f}; group mean max |difference| "
                  f"{np.nanmax(difference):.1e}")

    if args.nilearn:
        inputs = nilearn_inputs(info, args.nilearn)
        before = load()
        nilearn = run_child("nilearn", store=replicated(info, args.nilearn), atlas=info["atlas"], lut=info["lut"],
                            inputs=inputs, save=save)
        ours = results[(args.nilearn, "threads")]
        per_run = nilearn["compute_s"] / nilearn["n_runs"]
        rows = [("nilearn per-run loop", nilearn["n_runs"], fmt(nilearn["compute_s"]), fmt(per_run, 3),
                 fmt(nilearn["peak_mb"], 0), before.split("average ")[1])]
        for n_runs, scheduler in [(n, s) for s in ("threads", "distributed") for n in sizes if (n, s) in results]:
            result = results[(n_runs, scheduler)]
            # a user of LocalCluster also waits for its 2 worker processes to start
            total = result["open_s"] + result["build_s"] + result["compute_s"] + result.get("cluster_start_s", 0.0)
            peak = max(result["client_build_peak_mb"], result["client_compute_peak_mb"], *result.get("worker_peak_mb", []))
            what = "open + build + compute" + (" + cluster start" if scheduler == "distributed" else "")
            rows.append((f"brainxr ({scheduler}), {what}", n_runs, fmt(total), fmt(total / n_runs, 3), fmt(peak, 0),
                         f"{per_run * n_runs / total:.1f}x nilearn" + (" (nilearn projected linearly from "
                                                                       f"N={nilearn['n_runs']})" if n_runs != nilearn["n_runs"] else "")))
        print_table("end to end from the store (nilearn: NiftiLabelsMasker + load_confounds_strategy + "
                    "ConnectivityMeasure correlation + tangent)", rows,
                    ("", "N", "s", "s per run", "peak MB", "ratio / load"))
        first_ours = np.load(save / f"scale-threads-{args.nilearn}-first.npy")
        first_nilearn = np.load(save / "nilearn-first.npy")
        gmean = np.abs(np.load(save / f"scale-threads-{args.nilearn}-gmean.npy") - np.load(save / "nilearn-gmean.npy"))
        print(f"same numbers at N={args.nilearn}: per-run correlations max |brainxr - nilearn| = "
              f"{np.nanmax(np.abs(first_ours - first_nilearn)):.1e}; geometric mean (tangent) max |difference| = "
              f"{np.nanmax(gmean):.1e}")
        del ours
    print(load())
    shutil.rmtree(save, ignore_errors=True)


def main_out_of_core(args):
    info = base_cohort(args.data, 2, args.ooc_volumes, args.ooc_base_runs)
    bytes_per_run = None
    from brainxr import store as cohort_store

    table = cohort_store.runs_table(info["store"])
    import brainxr

    n_voxels = brainxr.open_cohort(info["store"]).grid.n_voxels
    bytes_per_run = float(table["n_volumes"].mean()) * n_voxels * 4
    n_runs = int(-(-args.ooc_gb * 1e9 // bytes_per_run))
    store = replicated(info, n_runs)
    print(load(), flush=True)
    result = run_child("out-of-core", store=store, atlas=info["atlas"], lut=info["lut"])
    print_table(
        "out of core: extract + clean + correlation + group mean on LocalCluster(n_workers=2, "
        "threads_per_worker=1, memory_limit='1GiB')",
        [(result["n_runs"], f"{result['bold_gb']:.1f}", "2 x 1 GiB", fmt(result["compute_s"]),
          fmt(result["worker_peak_mb"]), result["workers_restarted"], result["finite_group"])],
        ("runs", "decompressed bold GB", "worker memory", "s", "worker peaks MB", "worker restarted",
         "group mean finite"),
    )
    print(load())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100,1000,10000", help="N computed end to end")
    parser.add_argument("--build-only", default="100000", help="N for graph building only")
    parser.add_argument("--distributed-max", type=int, default=1000,
                        help="largest N also computed on 2 worker processes")
    parser.add_argument("--arrays-max", type=int, default=10000,
                        help="build-only cohorts larger than this hold the runs' metadata only")
    parser.add_argument("--nilearn", type=int, default=100, help="N of nilearn's per-run loop (0: skip)")
    parser.add_argument("--resolution", type=float, default=4)
    parser.add_argument("--volumes", type=int, default=150)
    parser.add_argument("--base-runs", type=int, default=6)
    parser.add_argument("--out-of-core", action="store_true", help="run the out-of-core proof instead")
    parser.add_argument("--ooc-gb", type=float, default=10.5, help="decompressed bold of the out-of-core cohort")
    parser.add_argument("--ooc-volumes", type=int, default=200)
    parser.add_argument("--ooc-base-runs", type=int, default=4)
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "brainxr-scale-data")
    # child options
    parser.add_argument("--child", help=argparse.SUPPRESS)
    for option in ("store", "atlas", "lut", "save", "output", "scheduler", "inputs"):
        parser.add_argument(f"--{option}", help=argparse.SUPPRESS)
    parser.add_argument("--compare-runs", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child = {"brainxr": child_brainxr, "nilearn": child_nilearn, "out-of-core": child_out_of_core}[args.child]
        print("@@RESULT@@" + json.dumps(child(args)), flush=True)
        return
    args.data.mkdir(parents=True, exist_ok=True)
    if args.out_of_core:
        main_out_of_core(args)
    else:
        main_scale(args)


if __name__ == "__main__":
    main()
