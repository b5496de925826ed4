"""nilearn's own DictLearning is unstable at float32 rounding level: a test that proves it.

Seed 002 asks for nilearn's components "in the same order": this test shows
what nilearn itself gives when its input moves by one float32 ulp (the last
bit of half of the voxel values of each run, a change far below any
scanner's precision). On a synthetic cohort (6 runs, 6 mm x 80 volumes, 5
components, ``random_state=0``), nilearn's components come back in another
order, and some maps move (measured with nilearn 0.14.1 / scikit-learn
1.9.1: matched |cosine| 0.93-0.998, permutation [2, 3, 1, 0, 4]). The
order of nilearn's components is therefore not a property of the data, and
brainxr is compared with nilearn by matched maps (see
docs/architecture.md, "Differences from nilearn").
"""

import warnings

import nibabel as nib
import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

pytestmark = pytest.mark.slow


def _matched(first, second):
    """|cosine| of Hungarian-matched components, and the permutation of ``second`` that matches ``first``."""
    first = first / np.linalg.norm(first, axis=1, keepdims=True)
    second = second / np.linalg.norm(second, axis=1, keepdims=True)
    similarity = np.abs(first @ second.T)
    rows, columns = linear_sum_assignment(-similarity)
    return similarity[rows, columns], columns


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    from brainxr.datasets import make_synthetic_cohort

    root = tmp_path_factory.mktemp("unstable")
    cohort = make_synthetic_cohort(root / "cohort", n_subjects=6, n_volumes=80, resolution=6, seed=1)
    rng = np.random.default_rng(0)
    paths, perturbed = [str(path) for path in cohort.func], []
    for path in paths:
        image = nib.load(path)
        data = np.asanyarray(image.dataobj).astype(np.float32)
        # one float32 ulp up on a random half of the values
        data = np.where(rng.random(data.shape) < 0.5, np.nextafter(data, np.float32(np.inf)), data)
        target = root / f"perturbed_{len(perturbed)}.nii.gz"
        nib.save(nib.Nifti1Image(data.astype(np.float32), image.affine, image.header), target)
        perturbed.append(str(target))
    return paths, perturbed


def test_nilearn_dict_learning_moves_under_a_float32_ulp(runs):
    from nilearn.decomposition import DictLearning

    paths, perturbed = runs
    options = {"n_components": 5, "smoothing_fwhm": 6.0, "random_state": 0, "standardize": "zscore_sample"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = DictLearning(**options).fit(paths).components_
        moved = DictLearning(**options).fit(perturbed).components_
    similarity, order = _matched(reference, moved)
    # the same maps, mostly, but not in the same order: nilearn's order is not reproducible at rounding level
    assert not np.array_equal(order, np.arange(5)) or similarity.min() < 0.99
    assert similarity.max() > 0.9
