"""brainxr.interfaces.fmriprep against nilearn.interfaces.fmriprep on nilearn's fixtures."""

import os
import json
import warnings

import numpy as np
import pandas as pd
import pytest
from nilearn.interfaces import fmriprep as nilearn_fmriprep
from nilearn.interfaces.fmriprep.tests._testing import create_tmp_filepath, get_legal_confound

from brainxr.errors import InputFileError
from brainxr.interfaces.fmriprep import load_confounds, load_confounds_strategy, select_confounds
from brainxr.interfaces.fmriprep.files import read_confounds_table

VERSIONS = ["1.2.x", "1.4.x", "21.x.x"]


def _quiet(function, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return function(*args, **kwargs)


def assert_same_output(result, expected):
    """Same columns (names and order), values and sample mask as nilearn."""
    confounds, sample_mask = result
    expected_confounds, expected_mask = expected
    if expected_mask is None:
        assert sample_mask is None
    else:
        np.testing.assert_array_equal(sample_mask, expected_mask)
    if expected_confounds is None:
        assert confounds is None
        return
    assert list(confounds.columns) == list(expected_confounds.columns)
    assert confounds.shape == expected_confounds.shape
    np.testing.assert_allclose(
        confounds.to_numpy(dtype=float), expected_confounds.to_numpy(dtype=float), rtol=1e-12, atol=1e-12
    )


@pytest.fixture(params=VERSIONS)
def image(request, tmp_path):
    path, _ = create_tmp_filepath(tmp_path, copy_confounds=True, copy_json=True, fmriprep_version=request.param)
    return path


STRATEGIES = [
    dict(strategy=("motion",), motion="basic"),
    dict(strategy=("motion",), motion="power2"),
    dict(strategy=("motion",), motion="derivatives"),
    dict(strategy=("motion",), motion="full"),
    dict(strategy=("high_pass",)),
    dict(strategy=("wm_csf",), wm_csf="full"),
    dict(strategy=("wm_csf",), wm_csf="derivatives"),
    dict(strategy=("global_signal",), global_signal="power2"),
    dict(strategy=("global_signal",), global_signal="full"),
    dict(strategy=("motion", "high_pass", "wm_csf"), demean=False),
    dict(strategy=("motion", "scrub"), scrub=5, fd_threshold=0.15),
    dict(strategy=("motion", "scrub"), scrub=0, fd_threshold=0.15, std_dvars_threshold=3),
    dict(strategy=("motion", "scrub"), scrub=0, fd_threshold=4, std_dvars_threshold=10),
    dict(strategy=("motion", "scrub", "high_pass"), scrub=3, fd_threshold=0.2, demean=False),
    dict(strategy=("ica_aroma",), ica_aroma="basic"),
    dict(strategy=()),
]


@pytest.mark.parametrize("options", STRATEGIES, ids=lambda o: "-".join(o["strategy"]) + str(len(o)))
def test_load_confounds_equals_nilearn(image, options):
    if "ica_aroma" in options["strategy"] and "sub-21" in os.path.basename(image):
        # nilearn's 21.x fixture has no aroma columns: both refuse
        with pytest.raises(ValueError, match="ica_aroma"):
            nilearn_fmriprep.load_confounds(image, **options)
        with pytest.raises(ValueError, match=r"ica_aroma \(no aroma_motion_XX column\)"):
            load_confounds(image, **options)
        return
    expected = _quiet(nilearn_fmriprep.load_confounds, image, **options)
    # min_volumes=0: nilearn's behaviour when scrubbing removes every volume
    # (nilearn's 21.x fixture): a warning and an empty sample mask
    assert_same_output(_quiet(load_confounds, image, **options, min_volumes=0), expected)


@pytest.mark.parametrize("compcor", ["anat_combined", "anat_separated", "temporal", "temporal_anat_combined", "temporal_anat_separated"])
@pytest.mark.parametrize("n_compcor", ["all", 1, 3])
def test_compcor_equals_nilearn(image, compcor, n_compcor):
    options = dict(strategy=("high_pass", "motion", "compcor"), compcor=compcor, n_compcor=n_compcor)
    assert_same_output(load_confounds(image, **options), nilearn_fmriprep.load_confounds(image, **options))


@pytest.mark.parametrize("denoise_strategy", ["simple", "scrubbing", "compcor"])
@pytest.mark.parametrize("overrides", [{}, {"global_signal": "full"}, {"motion": "basic", "demean": False}])
def test_presets_equal_nilearn(tmp_path, denoise_strategy, overrides):
    # 1.4.x: nilearn's 21.x fixture scrubs every volume (tested below)
    image, _ = create_tmp_filepath(tmp_path, copy_confounds=True, copy_json=True)
    expected = _quiet(nilearn_fmriprep.load_confounds_strategy, image, denoise_strategy, **overrides)
    assert_same_output(_quiet(load_confounds_strategy, image, denoise_strategy, **overrides), expected)


def test_ica_aroma_preset_equals_nilearn(tmp_path):
    image, _ = create_tmp_filepath(tmp_path, image_type="ica_aroma", copy_confounds=True, copy_json=True)
    expected = nilearn_fmriprep.load_confounds_strategy(image, "ica_aroma")
    assert_same_output(load_confounds_strategy(image, "ica_aroma"), expected)
    assert_same_output(
        load_confounds(image, strategy=("ica_aroma",)), nilearn_fmriprep.load_confounds(image, strategy=("ica_aroma",))
    )
    with pytest.raises(InputFileError, match="desc-smoothAROMAnonaggr_bold"):
        load_confounds(image.replace("smoothAROMAnonaggr", "preproc"), strategy=("ica_aroma",))


def test_preset_warns_about_unused_parameters(tmp_path):
    image, _ = create_tmp_filepath(tmp_path, copy_confounds=True, copy_json=True)
    with pytest.warns(UserWarning, match=r"not needed for the selected strategy 'simple': \['scrub'\]"):
        load_confounds_strategy(image, "simple", scrub=3)
    with pytest.raises(ValueError, match="denoise_strategy must be one of"):
        load_confounds_strategy(image, "aggressive")


@pytest.mark.parametrize("tedana", ["aggressive", "non-aggressive"])
def test_tedana_equals_nilearn(tmp_path, tedana):
    image, _ = create_tmp_filepath(tmp_path, image_type="tedana", copy_confounds=True)
    expected = nilearn_fmriprep.load_confounds(image, strategy=("tedana",), tedana=tedana)
    assert_same_output(load_confounds(image, strategy=("tedana",), tedana=tedana), expected)
    with pytest.warns(UserWarning, match="TEDANA strategy"):
        load_confounds(image, strategy=("tedana", "motion"), tedana=tedana)


@pytest.mark.parametrize("image_type", ["regular", "native", "res", "den", "part", "cifti", "gifti"])
def test_several_images_and_naming_variants(tmp_path, image_type):
    files = []
    for i in range(2):
        path, _ = create_tmp_filepath(
            tmp_path,
            bids_fields={"entities": {"sub": f"test{i + 1}", "ses": "test", "task": "testimg", "run": "01"}},
            image_type=image_type,
            copy_confounds=True,
            copy_json=True,
        )
        files.append(path)
    result = load_confounds(files)
    expected = nilearn_fmriprep.load_confounds(files)
    assert isinstance(result[0], list) and len(result[0]) == 2
    for one, other in zip(zip(*result), zip(*expected)):
        assert_same_output(one, other)
    # a single image (or a one-item list) gives a single output
    assert isinstance(load_confounds(files[0])[0], pd.DataFrame)
    assert isinstance(load_confounds([files[0]])[0], pd.DataFrame)


def test_file_errors(tmp_path):
    image, confounds_file = create_tmp_filepath(tmp_path, copy_confounds=True, fmriprep_version="1.4.x")
    with pytest.raises(InputFileError, match="Unsupported input"):
        load_confounds(str(confounds_file))

    legal, _ = get_legal_confound()
    duplicate = tmp_path / "sub-14x_task-test_desc-confounds_regressors.tsv"
    legal.to_csv(duplicate, sep="\t", index=False)
    with pytest.raises(InputFileError, match="more than one"):
        load_confounds(image)
    duplicate.unlink()

    np.savetxt(confounds_file, np.random.default_rng(0).random((30, 20)), delimiter="\t")
    with pytest.raises(InputFileError, match="contains no header"):
        load_confounds(image)

    camel = legal.copy()
    camel.columns = ["".join(part.title() for part in c.split("_")) for c in legal.columns]
    camel.to_csv(confounds_file, sep="\t", index=False)
    with pytest.raises(InputFileError, match="header in camel case"):
        load_confounds(image)

    lonely = tmp_path / "sub-02_task-rest_space-MNI152NLin2009cAsym_desc-preproc_bold.nii.gz"
    lonely.touch()
    with pytest.raises(InputFileError, match="Could not find associated confound file") as error:
        load_confounds(str(lonely))
    assert error.value.path == str(lonely)


def test_compcor_needs_json_and_high_pass(tmp_path):
    image, _ = create_tmp_filepath(tmp_path, copy_confounds=True, copy_json=False)
    with pytest.raises(InputFileError, match="json.*CompCor"):
        load_confounds(image, strategy=("high_pass", "compcor"))
    with pytest.raises(ValueError, match="`high_pass` must be included"):
        load_confounds(image, strategy=("motion", "compcor"))
    # without compcor the JSON is not needed
    assert load_confounds(image, strategy=("motion",))[0].shape == (30, 24)


@pytest.mark.parametrize(
    "options, match",
    [
        (dict(strategy="motion"), "strategy needs to be a tuple or list"),
        (dict(strategy=("motion", "aroma")), "strategy must be one of"),
        (dict(strategy=("motion",), motion="cubic"), "motion must be one of"),
        (dict(strategy=("wm_csf",), wm_csf="all"), "wm_csf must be one of"),
        (dict(strategy=("high_pass", "compcor"), compcor="anat"), "compcor must be one of"),
        (dict(strategy=("high_pass", "compcor"), n_compcor=0), "n_compcor must be 'all' or a positive integer"),
        (dict(strategy=("ica_aroma",), ica_aroma="invalid"), "ica_aroma must be one of"),
        (dict(strategy=("scrub",), scrub=-1), "scrub must be a non-negative integer"),
    ],
)
def test_bad_strategy(image, options, match):
    with pytest.raises(ValueError, match=match):
        load_confounds(image, **options)


def test_missing_columns_are_named(tmp_path):
    image, confounds_file = create_tmp_filepath(tmp_path, copy_confounds=True, copy_json=True)
    table = read_confounds_table(confounds_file)
    table.drop(columns=["trans_x_power2", "rot_z_derivative1", "csf", "white_matter"]).to_csv(
        confounds_file, sep="\t", index=False
    )
    with pytest.raises(InputFileError, match=r"motion: trans_x_power2, rot_z_derivative1; wm_csf: csf, white_matter") as error:
        load_confounds(image)
    assert str(confounds_file) in str(error.value)
    # the same with a table in memory
    with pytest.raises(ValueError, match=r"lacks what this strategy needs: global_signal: global_signal\. You may"):
        select_confounds(table.drop(columns=["global_signal"]), strategy=("global_signal",), global_signal="basic")
    with pytest.raises(ValueError, match=r"scrub.*needs the confounds columns \['std_dvars'\]"):
        select_confounds(table.drop(columns=["std_dvars"]), strategy=("scrub",))
    with pytest.raises(ValueError, match="ica_aroma"):
        select_confounds(table.drop(columns=[c for c in table.columns if "aroma" in c]), strategy=("ica_aroma",), ica_aroma="basic")


def test_compcor_without_cosine_columns_is_an_error(tmp_path):
    table, metadata = get_legal_confound()
    no_cosine = table.drop(columns=[c for c in table.columns if "cosine" in c])
    with pytest.raises(ValueError, match="needs fMRIPrep's cosine_XX high-pass regressors"):
        select_confounds(no_cosine, metadata, strategy=("high_pass", "compcor"))


def test_compcor_honours_retained(tmp_path):
    table, metadata = get_legal_confound(fmriprep_version="21.x.x")
    metadata = json.loads(json.dumps(metadata))
    metadata["a_comp_cor_02"]["Retained"] = False
    confounds, _ = select_confounds(table, metadata, strategy=("high_pass", "compcor"))
    assert [c for c in confounds.columns if "comp_cor" in c] == ["a_comp_cor_00", "a_comp_cor_01", "a_comp_cor_03", "a_comp_cor_04"]


def test_scrubbing_that_leaves_too_few_volumes(tmp_path):
    table, _ = get_legal_confound()
    options = dict(strategy=("motion", "scrub"), scrub=0, fd_threshold=0.15)
    _, sample_mask = select_confounds(table, **options)
    assert len(sample_mask) == 24
    with pytest.raises(ValueError, match="censoring leaves 24 of 30 volumes, fewer than min_volumes=25"):
        select_confounds(table, **options, min_volumes=25)
    # every volume scrubbed: nilearn warns and returns an empty mask, here it is an error
    with pytest.raises(ValueError, match="censoring leaves 0 of 30 volumes"):
        _quiet(select_confounds, table, strategy=("scrub",), fd_threshold=0.0, std_dvars_threshold=0.0)


def test_no_non_steady_state_gives_no_mask(tmp_path):
    table, _ = get_legal_confound(non_steady_state=False)
    confounds, sample_mask = select_confounds(table, strategy=("motion",))
    assert sample_mask is None
    assert confounds.shape == (30, 24)
    np.testing.assert_allclose(confounds.mean().to_numpy(), 0, atol=1e-10)
