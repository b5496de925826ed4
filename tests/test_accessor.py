"""The .brain accessor calls brainxr's functions with the DataArray."""

import matplotlib.pyplot as plt
import nibabel as nib
import numpy as np
import pytest
import xarray as xr

import brainxr


def test_accessor_round_trip_and_properties(tmp_path):
    affine = np.diag([3.0, 3.0, 3.0, 1.0])
    data = np.random.default_rng(0).normal(size=(6, 7, 5, 4)).astype(np.float32)
    img = nib.Nifti1Image(data, affine)
    img.header.set_zooms((3, 3, 3, 1.5))
    nib.save(img, str(tmp_path / "bold.nii.gz"))
    mask = np.zeros((6, 7, 5), np.uint8)
    mask[1:5, 1:6, 1:4] = 1
    bold = brainxr.open_nifti(tmp_path / "bold.nii.gz")
    assert bold.brain.t_r == 1.5
    np.testing.assert_array_equal(bold.brain.affine, affine)
    masked = bold.brain.apply_mask(nib.Nifti1Image(mask, affine))
    assert masked.dims == ("time", "voxel")
    out = masked.brain.unmask().brain.to_nifti(tmp_path / "out.nii.gz")
    np.testing.assert_array_equal(nib.load(str(out)).get_fdata(), data * mask[..., None])
    with pytest.raises(AttributeError, match="plot_everything"):
        masked.brain.plot_everything()
    assert "plot_connectome" in dir(masked.brain)


def test_accessor_plots_a_labeled_connectome():
    regions = ["a", "b", "c"]
    conn = xr.DataArray(
        np.array([[1.0, 0.5, -0.2], [0.5, 1.0, 0.1], [-0.2, 0.1, 1.0]]),
        dims=("region", "region_"),
        coords={"region": regions, "region_": regions, "x": ("region", [-40.0, 0.0, 40.0]),
                "y": ("region", [0.0, -50.0, 10.0]), "z": ("region", [10.0, 20.0, 30.0])},
    )
    display = conn.brain.plot_connectome(edge_threshold=0.3)
    display.close()
    figure = plt.figure()
    conn.brain.plot_matrix(figure=figure)
    labels = [t.get_text() for t in figure.axes[0].get_yticklabels()]
    assert labels == regions
    plt.close(figure)


def test_accessor_methods_are_explicit_and_documented():
    import inspect

    from brainxr.accessor import BrainAccessor, BrainDatasetAccessor

    for cls in (BrainAccessor, BrainDatasetAccessor):
        members = {name: member for name, member in inspect.getmembers(cls) if not name.startswith("_")}
        assert members, cls
        for name, member in members.items():
            doc = (member.fget if isinstance(member, property) else member).__doc__
            assert doc and doc.strip(), f"{cls.__name__}.{name} has no docstring"
    assert "__getattr__" not in BrainAccessor.__dict__
    assert list(inspect.signature(BrainAccessor.apply_mask).parameters) == ["self", "mask", "voxel_chunks"]


def test_dataset_accessor_of_a_cohort_run(tmp_path):
    from conftest import write_tiny_run

    write_tiny_run(tmp_path / "derivatives", "01")
    brainxr.ingest(tmp_path / "derivatives", tmp_path / "cohort.zarr", progress=False)
    cohort = brainxr.open_cohort(tmp_path / "cohort.zarr")
    run = cohort["sub-01_task-rest"]
    assert run.brain.t_r == 2.0 and run.brain.run == "sub-01_task-rest"
    assert run.brain.entities["sub"] == "01"
    np.testing.assert_array_equal(run.brain.affine, cohort.grid.affine)
    table = run.brain.confounds_table()
    assert list(table.columns) == ["trans_x", "csf", "white_matter", "framewise_displacement"] and len(table) == 30
    valid_bold = run.brain.valid_bold()
    assert valid_bold.dims == ("time", "voxel") and valid_bold.chunks is not None
    # the accessor gives back new objects; the run is left as it was
    assert run.brain.write_t_r(1.0).brain.t_r == 1.0 and run.brain.t_r == 2.0
