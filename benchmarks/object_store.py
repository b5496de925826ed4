"""Benchmark: cohort stores and sources on object storage (an S3 API) beside the local disk.

An S3 API server (moto's server mode, ``tests/s3_server.py``) runs on
127.0.0.1 in this process; each measured side runs in its own fresh process
(``_harness.py``) and reaches it through the standard environment
(``AWS_ENDPOINT_URL``...), as it would reach a real S3 service. Printed:

1. ingest throughput (MB/s of decompressed BOLD, runs/s) from local files
   into a local store and from S3 into S3;
2. extraction throughput (``cohort.extract(atlas)``, MB/s of stored BOLD
   read, runs/s) from the local store and from the S3 store;
3. reading every bold chunk of the S3 store through Zarr's ``FsspecStore``
   (s3fs, brainxr's choice) and Zarr's ``ObjectStore`` (obstore, not a
   brainxr dependency: that row needs ``pip install obstore``), each
   client made and connected before the clock (in the other rows, a fresh
   process pays for making its S3 client, about a second);
4. the number of requests ``open_cohort`` sends, counted at the server, and
   its wall time, for stores of 100 and 10,000 runs (metadata only).

moto is a Python server on the same two cores as the client: S3 figures
show the cost of the protocol and of the request pattern, not of a real
service's bandwidth.

Run ``python benchmarks/object_store.py`` (defaults: 8 runs of 4 mm x 100
volumes; ``--help``).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))
from _harness import load_average, measure, print_table  # noqa: E402
from s3_server import S3Server  # noqa: E402

_INGEST = """
    report = brainxr.ingest({source!r}, {store!r}, n_workers={workers}, progress=False, client=False)
    assert not report.failed, report.failed
    result = {{"bytes": report.decompressed_bytes, "runs": len(report.ingested)}}
    """

_EXTRACT = """
    cohort = brainxr.open_cohort({store!r})
    atlas = load_labels_atlas({atlas!r}, lut={lut!r})
    signals = cohort.extract(atlas).compute(scheduler="threads", num_workers={workers})
    table = cohort.runs
    result = {{"bytes": int((table["n_volumes"] * cohort.grid.n_voxels * 4).sum()), "runs": len(cohort)}}
    """

_READ_SETUP = """
import zarr
from brainxr import store as cohort_store
contents = cohort_store.read_store({store!r})
if {backend!r} == "obstore":
    from obstore.store import S3Store
    from zarr.storage import ObjectStore
    bucket, prefix = {store!r}[len("s3://"):].split("/", 1)
    zstore = ObjectStore(S3Store(bucket, prefix=prefix, client_options={{"allow_http": True}}), read_only=True)
else:
    zstore = contents.location.zarr_store(read_only=True)
zarr.open_group(zstore, mode="r", zarr_format=3)  # the client is made and connected before the clock
"""

_READ_CHUNKS = """
    nbytes = 0
    for key in contents.runs:
        values = zarr.open_array(zstore, path=f"runs/{key}/bold", mode="r", zarr_format=3)[...]
        nbytes += values.nbytes
    result = {"bytes": nbytes, "runs": len(contents.runs)}
    """


def _rate(measured) -> tuple[str, str]:
    result = measured["result"]
    return f"{result['bytes'] / 2**20 / measured['wall_s']:.1f}", f"{result['runs'] / measured['wall_s']:.2f}"


def _metadata_store(server, fs, bucket: str, store_url: str, template: dict, n_runs: int) -> None:
    """A store of ``n_runs`` complete runs (metadata only), indexed, on S3."""
    from brainxr import store as cohort_store

    added = {}
    for n in range(n_runs):
        key = f"sub-{n:05d}_task-big"
        added[key] = dict(template["attributes"], entities={"sub": f"{n:05d}", "task": "big"})
    prefix = store_url[len("s3://"):]
    objects = {f"{prefix}/runs/{key}/zarr.json": json.dumps(dict(template, attributes=attrs)).encode()
               for key, attrs in added.items()}
    keys = list(objects)
    for start in range(0, len(keys), 1000):
        fs.pipe({key: objects[key] for key in keys[start:start + 1000]})
    cohort_store.update_index(store_url, add=added)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--volumes", type=int, default=100)
    parser.add_argument("--resolution", type=float, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--open-runs", type=int, nargs="+", default=[100, 10_000])
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "brainxr-benchmark-data")
    args = parser.parse_args(argv)
    print(f"brainxr object-store benchmark ({load_average()} at the start)")

    from brainxr.datasets import make_synthetic_cohort

    root = args.data / f"object-store-n{args.runs}-v{args.volumes}-r{args.resolution:g}"
    if not (root / "dataset_description.json").exists():
        print(f"generating {args.runs} synthetic runs in {root} ...", flush=True)
        make_synthetic_cohort(root, n_subjects=args.runs, n_volumes=args.volumes, resolution=args.resolution,
                              overwrite=True)
    atlas = str(next(root.glob("atlas/*_atlas-Synth_dseg.nii.gz")))
    lut = atlas.replace(".nii.gz", ".tsv")

    server = S3Server()
    os.environ.update(server.environment())
    import s3fs

    fs = s3fs.S3FileSystem(skip_instance_cache=True)
    bucket = f"brainxr-bench-{os.getpid()}"
    fs.mkdir(bucket)
    print("uploading the derivatives to the S3 server ...", flush=True)
    for subject in sorted(root.glob("sub-*")):
        fs.put(str(subject), f"{bucket}/derivatives/{subject.name}", recursive=True)
    fs.pipe(f"{bucket}/derivatives/dataset_description.json", (root / "dataset_description.json").read_bytes())
    scratch = Path(tempfile.mkdtemp(prefix="brainxr-object-store-bench-"))
    env = dict(os.environ)
    setup = "import brainxr, brainxr.ingestion, zarr, xarray, dask, s3fs\nfrom brainxr.regions import load_labels_atlas"
    local_store, s3_store = str(scratch / "local.zarr"), f"s3://{bucket}/cohort.zarr"
    try:
        ingest_local = measure(setup, _INGEST.format(source=str(root), store=local_store, workers=args.workers),
                               env=env)
        server.reset_requests()
        ingest_s3 = measure(setup, _INGEST.format(source=f"s3://{bucket}/derivatives", store=s3_store,
                                                  workers=args.workers), env=env)
        ingest_requests = len(server.requests)
        extract_local = measure(setup, _EXTRACT.format(store=local_store, atlas=atlas, lut=lut, workers=args.workers),
                                env=env)
        server.reset_requests()
        extract_s3 = measure(setup, _EXTRACT.format(store=s3_store, atlas=atlas, lut=lut, workers=args.workers),
                             env=env)
        extract_requests = len(server.requests)
        # obstore is not a brainxr dependency (FsspecStore is its choice): that row needs `pip install obstore`
        backends = ["fsspec"] + (["obstore"] if importlib.util.find_spec("obstore") else [])
        reads = {backend: measure(_READ_SETUP.format(store=s3_store, backend=backend), _READ_CHUNKS, env=env)
                 for backend in backends}

        rows = [
            ("ingest, local -> local", f"{ingest_local['wall_s']:.1f}", *_rate(ingest_local), "-",
             f"{ingest_local['peak_mb']:.0f}"),
            ("ingest, S3 -> S3", f"{ingest_s3['wall_s']:.1f}", *_rate(ingest_s3), str(ingest_requests),
             f"{ingest_s3['peak_mb']:.0f}"),
            ("extract, local store", f"{extract_local['wall_s']:.1f}", *_rate(extract_local), "-",
             f"{extract_local['peak_mb']:.0f}"),
            ("extract, S3 store", f"{extract_s3['wall_s']:.1f}", *_rate(extract_s3), str(extract_requests),
             f"{extract_s3['peak_mb']:.0f}"),
        ]
        rows += [(f"read every bold chunk from S3, Zarr {'FsspecStore (s3fs)' if b == 'fsspec' else 'ObjectStore (obstore)'}",
                  f"{m['wall_s']:.1f}", *_rate(m), "-", f"{m['peak_mb']:.0f}") for b, m in reads.items()]
        print_table(f"{args.runs} runs ({args.resolution:g} mm, {args.volumes} volumes), {args.workers} workers",
                    rows, ("", "wall s", "MB/s", "runs/s", "requests", "peak MB"))
        if "obstore" not in reads:
            print("Zarr ObjectStore (obstore) not measured: obstore is not installed (pip install obstore)")

        from brainxr import store as cohort_store

        template = json.loads(fs.cat(f"{bucket}/cohort.zarr/runs/{next(iter(cohort_store.read_index(s3_store)))}"
                                     f"/zarr.json"))
        rows = []
        for n_runs in args.open_runs:
            url = f"s3://{bucket}/open-{n_runs}.zarr"
            fs.copy(f"{bucket}/cohort.zarr/zarr.json", f"{bucket}/open-{n_runs}.zarr/zarr.json")
            fs.copy(f"{bucket}/cohort.zarr/mask", f"{bucket}/open-{n_runs}.zarr/mask", recursive=True)
            print(f"writing a store of {n_runs} runs (metadata only) ...", flush=True)
            _metadata_store(server, fs, bucket, url, template, n_runs)
            server.reset_requests()
            opened = measure(setup, f"""
                cohort = brainxr.open_cohort({url!r})
                result = len(cohort)
                """, env=env)
            assert opened["result"] == n_runs
            kinds = {}
            for method, _, query in server.requests:
                kind = "LIST" if "list-type" in query else method
                kinds[kind] = kinds.get(kind, 0) + 1
            rows.append((f"{n_runs} runs", str(len(server.requests)),
                         ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())), f"{opened['wall_s']:.2f}"))
        print_table("open_cohort on S3: requests counted at the server", rows,
                    ("store", "requests", "by kind", "wall s"))
    finally:
        import shutil

        shutil.rmtree(scratch, ignore_errors=True)
        server.stop()
    print(f"\n{load_average()} at the end")


if __name__ == "__main__":
    main()
