"""Benchmark: write one synthetic fMRIPrep run, beside nibabel saving the same image.

brainxr's side is a whole ``make_synthetic_cohort`` call for one run: signal
model, BOLD image streamed block by block through ISA-L (level 1, background
thread), brain mask, every fMRIPrep confound (CompCor, DVARS...), atlases and
ground truth. The template and atlases are built before the clock (they are
cached per process; their one-off cost is printed separately).

The reference is the non-streaming way to write the same BOLD image: the
whole 4D array of on-disk values in memory (loaded before the clock) saved
with ``nibabel.save`` to ``.nii.gz`` (nibabel's gzip). It does less work (no
signal model, no confounds), so the ratio shows what the streaming writer
costs or saves; peak memory is the process's resident peak, the array
included for nibabel.

Run ``python benchmarks/synthetic_cohort.py`` (defaults: 2 mm x 300 volumes
and 4 mm x 168 volumes; ``--help`` for options).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import measure, print_table  # noqa: E402

WARM_CACHES = """
import time
from brainxr.datasets import make_synthetic_cohort, load_synthetic_mni152_template
from brainxr.datasets import load_synthetic_labels_atlas, load_synthetic_maps_atlas
started = time.perf_counter()
load_synthetic_mni152_template({resolution}); load_synthetic_labels_atlas({resolution}); load_synthetic_maps_atlas({resolution})
setup_s = time.perf_counter() - started
"""


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="2:300,4:168", help="resolution:volumes pairs, comma separated")
    parser.add_argument("--dtype", default="float32", choices=("float32", "int16"))
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "brainxr-synthetic-bench")
    args = parser.parse_args(argv)

    rows = []
    for pair in args.sizes.split(","):
        resolution, volumes = float(pair.split(":")[0]), int(pair.split(":")[1])
        root = args.out / f"r{resolution:g}-v{volumes}"
        ours = measure(
            WARM_CACHES.format(resolution=resolution),
            f"""
            cohort = make_synthetic_cohort({str(root)!r}, n_subjects=1, n_volumes={volumes},
                                           resolution={resolution}, dtype={args.dtype!r}, overwrite=True)
            run = cohort.runs[0]
            result = {{"bold": run.bold.stat().st_size, "confounds": run.confounds.stat().st_size,
                       "bold_path": str(run.bold), "setup_s": setup_s}}
            """,
        )
        bold = ours["result"]["bold_path"]
        reference = measure(
            f"""
            import nibabel as nib, numpy as np
            source = nib.load({bold!r})
            array = np.asanyarray(source.dataobj.get_unscaled())  # the on-disk values (float32 or int16)
            """,
            f"""
            nib.save(nib.Nifti1Image(array, source.affine, source.header), {str(root / 'nibabel.nii.gz')!r})
            result = {{"bytes": array.nbytes}}
            """,
        )
        raw_mb = reference["result"]["bytes"] / 2**20
        rows.append((
            f"{resolution:g} mm x {volumes}",
            f"{raw_mb:.0f}",
            f"{ours['result']['bold'] / 2**20:.1f}",
            f"{ours['result']['confounds'] / 2**10:.0f}",
            f"{ours['result']['setup_s']:.1f}",
            f"{ours['wall_s']:.1f}",
            f"{reference['wall_s']:.1f}",
            f"{ours['wall_s'] / reference['wall_s']:.2f}",
            f"{ours['peak_mb']:.0f}",
            f"{reference['peak_mb']:.0f}",
            f"{ours['peak_mb'] / reference['peak_mb']:.2f}",
        ))
    print_table(
        f"one synthetic run ({args.dtype}): brainxr make_synthetic_cohort vs nibabel.save of the same image",
        rows,
        ("size", "raw MB", "bold.nii.gz MB", "confounds KB", "template+atlas s", "brainxr s", "nibabel s",
         "time ratio", "brainxr peak MB", "nibabel peak MB", "memory ratio"),
    )


if __name__ == "__main__":
    main()
