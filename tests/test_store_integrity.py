"""Store integrity (issue 10): run names, store creation, locks, checksums, verify and repair."""

import shutil

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import brainxr
from brainxr import store as cohort_store
from brainxr.errors import IngestError
from conftest import write_tiny_run


def _snapshot(folder):
    """Every file under a folder with its bytes."""
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


HOSTILE_NAMES = [
    "..nii.gz", "...nii.gz", ".nii.gz", "....nii.gz", "*.nii.gz", "sub-*_task-rest_bold.nii.gz",
    "zarr.json.nii.gz", "a b.nii.gz", "x%2F..nii.gz", "q?.nii.gz", "h#1.nii.gz", "c:d.nii.gz", "[ab].nii.gz",
    "-rf.nii.gz", "~.nii.gz", "sub-01_task-a%2Fb_bold.nii.gz", "sub-01_task-%2E%2E_bold.nii.gz",
]


def test_no_file_name_makes_ingest_remove_anything_outside_its_run(tmp_path):
    source = tmp_path / "derivatives"
    write_tiny_run(source, "01")
    store = tmp_path / "c.zarr"
    brainxr.ingest(source, store, progress=False)
    (tmp_path / "neighbour.txt").write_text("not the store's")
    before = _snapshot(tmp_path)
    hostile = tmp_path / "hostile"
    hostile.mkdir()
    template = next(source.rglob("*_desc-preproc_bold.nii.gz"))
    files = []
    for name in HOSTILE_NAMES:
        shutil.copy(template, hostile / name)
        files.append(hostile / name)
    with pytest.raises(IngestError) as caught:
        brainxr.ingest(files, store, progress=False)
    assert len(caught.value.failures) == len(HOSTILE_NAMES)
    for err in caught.value.failures.values():
        assert "cannot name a run in a cohort store" in str(err)
    after = _snapshot(tmp_path)
    assert {k: v for k, v in after.items() if k.parts[0] != "hostile"} == before
    assert list(brainxr.open_cohort(store)) == ["sub-01_task-rest"]


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=0, max_size=40))
def test_a_run_path_is_always_a_direct_child_of_runs(key):
    try:
        cohort_store.validate_run_key(key)
    except ValueError as err:
        assert repr(key) in str(err)
        with pytest.raises(ValueError):
            cohort_store.run_path("/store", key)
        return
    path = cohort_store.run_path("/store", key)
    assert str(path.parent) == "/store/runs" and path.name == key and key not in (".", "..", "zarr.json")
