"""brainxr.provenance: the attributes that say what made a result."""

import json

import numpy as np
import pytest

from brainxr import provenance
from brainxr.regions import Spheres, load_labels_atlas


def _labels(values):
    import nibabel as nib

    return load_labels_atlas(nib.Nifti1Image(np.asarray(values, dtype=np.int16), np.eye(4)))


def test_attrs_are_json_and_decode_back():
    atlas = provenance.atlas_record(_labels(np.arange(8).reshape(2, 2, 2) % 3))
    attrs = provenance.provenance_attrs(confounds_strategy="simple", confounds_options={"motion": "basic"},
                                        clean={"low_pass": 0.08, "t_r": np.float64(2.0)}, atlas=atlas)
    assert set(attrs) == set(provenance.PROVENANCE_KEYS)
    assert all(isinstance(value, str) for value in attrs.values())
    decoded = provenance.read_provenance(attrs)
    assert decoded["brainxr_version"] == provenance.brainxr_version() != "unknown"
    # the preset resolved to every selection parameter, the user's option included
    assert decoded["confounds_strategy"]["name"] == "simple"
    assert decoded["confounds_strategy"]["options"]["motion"] == "basic"
    assert decoded["confounds_strategy"]["options"]["wm_csf"] == "basic"
    assert decoded["confounds_strategy"]["options"]["strategy"] == ["high_pass", "motion", "wm_csf"]
    assert decoded["clean"] == {"low_pass": 0.08, "t_r": 2.0}
    assert decoded["atlas"]["kind"] == "labels" and decoded["atlas"]["n_regions"] == 2
    assert provenance.carried(dict(attrs, kind="correlation")) == attrs


def test_no_strategy_and_no_cleaning_are_null():
    attrs = provenance.provenance_attrs()
    assert json.loads(attrs["confounds_strategy"]) is None and json.loads(attrs["clean"]) is None
    components = provenance.confounds_strategy_record(["motion", "wm_csf"], {"motion": "basic"})
    assert components["name"] == ["motion", "wm_csf"] and components["options"]["motion"] == "basic"


def test_atlas_checksum_identifies_the_regions():
    values = np.arange(27).reshape(3, 3, 3) % 4
    same = provenance.atlas_record(_labels(values))["sha256"]
    assert provenance.atlas_record(_labels(values.copy()))["sha256"] == same
    changed = values.copy()
    changed[0, 0, 0] = 3
    assert provenance.atlas_record(_labels(changed))["sha256"] != same
    spheres = provenance.atlas_record(Spheres([(0, 0, 0), (10, 0, 0)], radius=4))
    assert spheres["kind"] == "spheres" and spheres["n_regions"] == 2
    assert provenance.atlas_record(Spheres([(0, 0, 0), (10, 0, 0)], radius=5))["sha256"] != spheres["sha256"]
    with pytest.raises(TypeError, match="LabelsAtlas, MapsAtlas or Spheres"):
        provenance.atlas_record("atlas.nii.gz")


def test_atlas_from_a_file_is_named_by_it(tmp_path):
    import nibabel as nib

    path = tmp_path / "tpl-MNI_atlas-Toy_dseg.nii.gz"
    nib.save(nib.Nifti1Image((np.arange(8).reshape(2, 2, 2) % 3).astype(np.int16), np.eye(4)), path)
    record = provenance.atlas_record(load_labels_atlas(path))
    assert record["name"] == path.name and record["source"] == str(path)
