"""A small TemplateFlow cache for tests, laid out exactly as TemplateFlow lays it out.

The file names, folders and TSV columns are TemplateFlow's; the contents are
the synthetic template and atlases of :mod:`brainxr.datasets` at a coarse
resolution (so the files stay small). ``template_description.json`` files
make the folders templates for the client; ``TEMPLATEFLOW_AUTOUPDATE=0``
keeps it from looking for an update.
"""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from brainxr.datasets import load_synthetic_mni152_brain_mask, load_synthetic_mni152_template
from brainxr.datasets.atlas import load_synthetic_labels_atlas, load_synthetic_maps_atlas

#: voxel size (mm) of every image of the test cache, whatever its ``res-`` index says
VOXEL_SIZE = 6
SCHAEFER = ("100Parcels7Networks", "200Parcels7Networks", "100Parcels17Networks")
DIFUMO = {"64dimensions": 64}
HARVARD_OXFORD = {"HOCPA": 48, "HOSPA": 20}


def _save(img, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(img, str(path))


def _description(folder: Path, identifier: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "template_description.json").write_text(json.dumps({
        "Identifier": identifier, "Name": f"{identifier} (brainxr test stand-in)", "BIDSVersion": "1.1.0",
        "License": "See LICENSE file", "res": {"02": {"origin": [-96.0, -132.0, -78.0], "zooms": [2.0] * 3}},
    }, indent=2))


def _schaefer_names(n_regions: int, n_networks: int) -> list[str]:
    networks = ["Vis", "SomMot", "DorsAttn", "SalVentAttn", "Limbic", "Cont", "Default"]
    names = []
    for hemisphere in ("LH", "RH"):
        for index in range(n_regions // 2):
            names.append(f"{n_networks}Networks_{hemisphere}_{networks[index % 7]}_{index + 1}")
    return names


def _template_files(folder: Path, template: str) -> None:
    for res in ("01", "02"):
        stem = f"tpl-{template}_res-{res}"
        _save(load_synthetic_mni152_template(VOXEL_SIZE), folder / f"{stem}_T1w.nii.gz")
        mask = load_synthetic_mni152_brain_mask(VOXEL_SIZE)
        _save(nib.Nifti1Image(np.asarray(mask.dataobj).astype(np.uint8), mask.affine), folder / f"{stem}_desc-brain_mask.nii.gz")


def _nilearn_mni152(root: Path) -> None:
    """nilearn's MNI152 (ICBM 2009a symmetric, 1 mm) as TemplateFlow's ``MNI152NLin2009aSym``.

    The files are those nilearn ships in its package (so brainxr's templates
    and masks can be compared with nilearn's exactly); the brain mask is the
    skull-stripped T1's support.
    """
    import nilearn.datasets

    data = Path(nilearn.datasets.__file__).parent / "data"
    template = "MNI152NLin2009aSym"
    folder = root / f"tpl-{template}"
    _description(folder, template)
    t1 = nib.load(data / "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz")
    _save(t1, folder / f"tpl-{template}_res-1_T1w.nii.gz")
    mask = (np.asanyarray(t1.dataobj) > 0).astype(np.uint8)
    _save(nib.Nifti1Image(mask, t1.affine), folder / f"tpl-{template}_res-1_desc-brain_mask.nii.gz")
    for label, name in (("GM", "gm"), ("WM", "wm")):
        _save(nib.load(data / f"mni_icbm152_{name}_tal_nlin_sym_09a_converted.nii.gz"),
              folder / f"tpl-{template}_res-1_label-{label}_probseg.nii.gz")


def build_templateflow_home(root) -> Path:
    """Write the cache under ``root``; returns ``root``."""
    root = Path(root)
    _nilearn_mni152(root)
    for template in ("MNI152NLin2009cAsym", "MNI152NLin6Asym"):
        folder = root / f"tpl-{template}"
        _description(folder, template)
        _template_files(folder, template)
        for desc in SCHAEFER:
            n_regions, n_networks = int(desc.split("Parcels")[0]), int(desc.split("Parcels")[1].split("Networks")[0])
            atlas = load_synthetic_labels_atlas(VOXEL_SIZE, n_regions=n_regions)
            _save(atlas.maps, folder / f"tpl-{template}_res-01_atlas-Schaefer2018_desc-{desc}_dseg.nii.gz")
            _save(atlas.maps, folder / f"tpl-{template}_res-02_atlas-Schaefer2018_desc-{desc}_dseg.nii.gz")
            table = pd.DataFrame({"index": np.arange(1, n_regions + 1), "name": _schaefer_names(n_regions, n_networks),
                                  "color": ["#781286"] * n_regions})
            table.to_csv(folder / f"tpl-{template}_atlas-Schaefer2018_desc-{desc}_dseg.tsv", sep="\t", index=False)
        for desc, n_maps in DIFUMO.items():
            maps = load_synthetic_maps_atlas(VOXEL_SIZE, n_maps=n_maps).maps
            for res in ("02", "03"):
                _save(maps, folder / f"tpl-{template}_res-{res}_atlas-DiFuMo_desc-{desc}_probseg.nii.gz")
            table = pd.DataFrame({"index": np.arange(1, n_maps + 1),
                                  "name": [f"DiFuMo component {i}" for i in range(1, n_maps + 1)]})
            table.to_csv(folder / f"tpl-{template}_atlas-DiFuMo_desc-{desc}_probseg.tsv", sep="\t", index=False)
        for atlas_name, n_regions in HARVARD_OXFORD.items():
            labels = load_synthetic_labels_atlas(VOXEL_SIZE, n_regions=n_regions)
            for threshold in ("th0", "th25", "th50"):
                _save(labels.maps, folder / f"tpl-{template}_res-02_atlas-{atlas_name}_desc-{threshold}_dseg.nii.gz")
            probabilities = load_synthetic_maps_atlas(VOXEL_SIZE, n_maps=n_regions).maps
            _save(probabilities, folder / f"tpl-{template}_res-02_atlas-{atlas_name}_probseg.nii.gz")
            if template == "MNI152NLin6Asym":  # as in TemplateFlow: Harvard-Oxford's tables live in NLin6Asym only
                table = pd.DataFrame({"index": np.arange(1, n_regions + 1),
                                      "name": [f"{atlas_name} structure {i}" for i in range(1, n_regions + 1)]})
                table.to_csv(folder / f"tpl-{template}_atlas-{atlas_name}_dseg.tsv", sep="\t", index=False)
    return root
