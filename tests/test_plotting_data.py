"""Shared inputs of the plotting, view and reporting tests (imported by them).

Fixed brain-shaped inputs come from nilearn's packaged MNI152 tissue maps (a
test dependency), so image baselines do not move when brainxr's synthetic
template is refined.
"""

import shutil
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
NILEARN_DATA = Path(__import__("nilearn").__file__).parent / "datasets" / "data"


def _downsampled(name: str, step: int):
    img = nib.load(NILEARN_DATA / name)
    data = ndimage.uniform_filter(np.asarray(img.dataobj, dtype=np.float32), step)[::step, ::step, ::step]
    affine = img.affine.copy()
    affine[:3, :3] *= step
    return data, affine


def nilearn_brain_mask(step: int = 4) -> nib.Nifti1Image:
    """A brain mask (gray + white matter) from nilearn's MNI152 maps, on a ``step`` mm grid."""
    gray, affine = _downsampled("mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz", step)
    white, _ = _downsampled("mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz", step)
    return nib.Nifti1Image(((gray + white) > 0.25 * 255).astype(np.uint8), affine)


def nilearn_t1(step: int = 4) -> nib.Nifti1Image:
    """nilearn's MNI152 T1 on a ``step`` mm grid."""
    data, affine = _downsampled("mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz", step)
    return nib.Nifti1Image(data, affine)


def blob_map(reference: nib.Nifti1Image, centres=((0, -52, 18),), widths=(10.0,), signs=(1.0,)) -> nib.Nifti1Image:
    """A sum of signed Gaussian blobs (world centres in mm) on the grid of ``reference``."""
    shape = reference.shape[:3]
    ijk = np.indices(shape).reshape(3, -1)
    world = (reference.affine[:3, :3] @ ijk + reference.affine[:3, 3:4]).T
    data = np.zeros(len(world))
    for centre, width, sign in zip(centres, widths, signs):
        data += sign * np.exp(-((world - np.asarray(centre)) ** 2).sum(axis=1) / (2 * width**2))
    return nib.Nifti1Image(data.reshape(shape).astype(np.float32), reference.affine)


def random_connectome(n_nodes: int = 20, seed: int = 0):
    """A symmetric weight matrix with a unit diagonal and node coordinates inside the brain."""
    rng = np.random.default_rng(seed)
    coords = rng.uniform([-60, -90, -30], [60, 50, 60], (n_nodes, 3))
    weights = rng.normal(size=(n_nodes, n_nodes))
    weights = (weights + weights.T) / 2
    np.fill_diagonal(weights, 1.0)
    return weights, coords


@pytest.fixture(scope="session")
def brain_mask():
    return nilearn_brain_mask(4)


@pytest.fixture(scope="session")
def t1():
    return nilearn_t1(4)


@pytest.fixture(scope="session")
def browser():
    """Headless Chromium driven by selenium, offline flags, fresh profile."""
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("Chromium and chromedriver are not installed (apt-get install chromium chromium-driver)")
    from selenium import webdriver  # a test dependency: fail, do not skip, when it is missing
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="brainxr-chromium-")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={profile}", "--window-size=900,700", "--enable-unsafe-swiftshader"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def test_nilearn_brain_mask_is_brain_sized():
    mask = nilearn_brain_mask(4)
    voxels = int(np.asarray(mask.dataobj).sum())
    # about 1.2 litres of brain at 64 mm^3 per voxel
    assert 12_000 < voxels < 30_000
    assert np.allclose(np.diag(mask.affine)[:3], 4)


def test_blob_map_peaks_at_its_centre(t1):
    img = blob_map(t1, centres=[(0, -52, 18)])
    peak = np.unravel_index(np.argmax(img.get_fdata()), img.shape)
    world = img.affine[:3, :3] @ peak + img.affine[:3, 3]
    assert np.allclose(world, (0, -52, 18), atol=4)
