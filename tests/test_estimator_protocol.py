"""brainxr's estimators are scikit-learn estimators that import scikit-learn on first use (``brainxr._estimator``).

Each use of scikit-learn's protocol is made first in a fresh interpreter
(before anything imported scikit-learn, so it is that use that puts
``BaseEstimator`` in place) and must give what the same use gives here,
where scikit-learn is imported: ``repr`` (its pretty printer, long reprs
wrapped), ``get_params`` / ``set_params``, ``clone``, tags, the HTML repr,
``dir``, metadata routing, a Pipeline, a GridSearchCV, pickling,
``NotFittedError``.
"""

from __future__ import annotations

import json
import pickle
import re
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest
from sklearn.base import BaseEstimator, clone
from sklearn.utils import get_tags

from brainxr import connectome, decomposition, maskers
from brainxr._estimator import Estimator, TransformerEstimator, constructor_parameters
from brainxr.maskers._base import BaseMasker
from brainxr.datasets import load_synthetic_labels_atlas, load_synthetic_mni152_brain_mask

#: what each fresh interpreter does first, then prints (a JSON string); ``m`` is a labels masker
#: given many parameters (its repr is long enough to be wrapped), ``bold`` a 4D image path
FIRST_USES = {
    "repr": "out = repr(m)",
    "get_params": "out = repr(sorted(m.get_params().items()))",
    "set_params": "m.set_params(smoothing_fwhm=4.0, t_r=3.0); out = repr(m)",
    "clone": "from sklearn.base import clone; out = repr(clone(m))",
    "get_tags": "from sklearn.utils import get_tags; out = repr(get_tags(m))",
    "html": "out = m._repr_mimebundle_()",
    "dir": "out = sorted(dir(m))",
    "metadata": "out = repr(m.get_metadata_routing())",
    "set_request": (  # the attribute is looked up first; calling it needs routing enabled
        "request = m.set_transform_request\nimport sklearn\n"
        "with sklearn.config_context(enable_metadata_routing=True):\n"
        "    out = repr(request(confounds=True).get_metadata_routing())"
    ),
    "pipeline": (
        "from sklearn.decomposition import PCA; from sklearn.pipeline import make_pipeline; "
        "out = make_pipeline(m, PCA(n_components=2)).fit_transform(bold).round(6).tolist()"
    ),
    "not_fitted": (
        "try:\n    m.transform(bold)\nexcept Exception as error:\n"
        "    out = [type(error).__module__, type(error).__name__, str(error)]"
    ),
    "grid_search": (
        "from brainxr.connectome import ConnectivityMeasure\n"
        "from sklearn.model_selection import GridSearchCV\n"
        "from sklearn.pipeline import Pipeline\n"
        "from sklearn.svm import LinearSVC\n"
        "rng = np.random.default_rng(0)\n"
        "X = [rng.normal(size=(30, 5)) for _ in range(12)]; y = [0, 1] * 6\n"
        "pipe = Pipeline([('connectivity', ConnectivityMeasure(vectorize=True)), ('svc', LinearSVC(random_state=0))])\n"
        "search = GridSearchCV(pipe, {'connectivity__kind': ['correlation', 'tangent']}, cv=3).fit(X, y)\n"
        "out = [search.best_params_, np.round(search.cv_results_['mean_test_score'], 8).tolist()]"
    ),
}

PREAMBLE = """
import json, sys
import numpy as np
from brainxr.maskers import NiftiLabelsMasker
labels, bold = sys.argv[1], sys.argv[2]
m = NiftiLabelsMasker(labels, labels=["Background"] + [f"region {i}" for i in range(1, 21)], standardize="zscore_sample",
                      detrend=True, smoothing_fwhm=6.0, strategy="median", memory_level=2, verbose=0, t_r=2.0,
                      resampling_target="labels", keep_masked_labels=False)
before = "sklearn" in sys.modules
"""
EPILOGUE = """
from sklearn.base import BaseEstimator
print(json.dumps({"before": before, "isinstance": isinstance(m, BaseEstimator), "out": out}))
"""


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    folder = tmp_path_factory.mktemp("protocol")
    atlas = load_synthetic_labels_atlas(resolution=4, n_regions=20)
    brain_mask = load_synthetic_mni152_brain_mask(resolution=4)
    rng = np.random.default_rng(0)
    values = rng.normal(size=brain_mask.shape + (12,)) + 100 * np.asarray(brain_mask.dataobj)[..., None]
    img = nib.Nifti1Image(values.astype(np.float32), brain_mask.affine)
    img.header.set_zooms((4.0, 4.0, 4.0, 2.0))
    nib.save(img, folder / "bold.nii.gz")
    nib.save(atlas.maps, folder / "labels.nii.gz")
    return str(folder / "labels.nii.gz"), str(folder / "bold.nii.gz")


def _here(code: str, paths) -> object:
    """``code`` run in this process (scikit-learn imported, the base long in place)."""
    scope = {"sys": sys}
    exec(PREAMBLE.replace("labels, bold = sys.argv[1], sys.argv[2]", f"labels, bold = {paths[0]!r}, {paths[1]!r}")
         + code, scope)
    return json.loads(json.dumps(scope["out"]))


def _normalized(value):
    # the HTML repr numbers its containers per process (sk-container-id-N) and gives each a random id
    if isinstance(value, dict):
        return {key: _normalized(item) for key, item in value.items()}
    if isinstance(value, str):
        return re.sub(r"(id-|#)\d+|[0-9a-f]{32}|\b\w{8,}(?=\" type=\"checkbox)", "N", value)
    return value


@pytest.mark.integration  # fresh interpreters
@pytest.mark.parametrize("use", sorted(FIRST_USES))
def test_the_first_use_of_the_protocol_gives_what_scikit_learn_gives(use, paths):
    """Used first in a fresh interpreter, each protocol entry gives what it gives with scikit-learn in place."""
    script = PREAMBLE + FIRST_USES[use] + EPILOGUE
    found = subprocess.run([sys.executable, "-c", script, *paths], capture_output=True, text=True)
    assert found.returncode == 0, found.stderr
    first = json.loads(found.stdout.strip().splitlines()[-1])
    assert first["before"] is False  # nothing imported scikit-learn before this use
    # after it, a BaseEstimator; a Pipeline without memory fits its steps as given (no clone), and
    # NotFittedError imports sklearn.exceptions only: neither uses the protocol
    assert first["isinstance"] is (use not in {"pipeline", "not_fitted"})
    assert _normalized(first["out"]) == _normalized(_here(FIRST_USES[use], paths))


def test_once_in_place_the_methods_are_scikit_learns():
    """No placeholder is left in any class: repr, get_params, ... are BaseEstimator's own functions."""
    from brainxr._estimator import _BaseEstimatorPlaceholder, _TransformerMixinPlaceholder

    for estimator in _estimators():
        mro = type(estimator).__mro__
        assert _BaseEstimatorPlaceholder not in mro and _TransformerMixinPlaceholder not in mro
        for name in ("__repr__", "get_params", "set_params", "_get_param_names", "__sklearn_clone__", "_repr_mimebundle_"):
            ours, theirs = getattr(type(estimator), name), getattr(BaseEstimator, name)
            assert getattr(ours, "__func__", ours) is getattr(theirs, "__func__", theirs), name
    nested = decomposition.DictLearning(mask=maskers.MultiNiftiMasker(smoothing_fwhm=6.0), n_components=5)
    assert repr(nested) == "DictLearning(mask=MultiNiftiMasker(smoothing_fwhm=6.0), n_components=5)"


def test_a_pickle_made_before_scikit_learn_is_imported_loads_and_transforms(paths):
    """Pickling needs no scikit-learn: a masker fitted and pickled in a fresh interpreter works here."""
    script = PREAMBLE + "import pickle; m.fit(bold); sys.stdout.buffer.write(pickle.dumps((before, m, 'sklearn' in sys.modules)))"
    found = subprocess.run([sys.executable, "-c", script, *paths], capture_output=True, check=True)
    before, masker, imported = pickle.loads(found.stdout)
    assert (before, imported) == (False, False)
    expected = clone(masker).fit(paths[1])
    np.testing.assert_array_equal(masker.transform(paths[1]), expected.transform(paths[1]))
    assert masker.get_params() == expected.get_params()


def _estimators():
    return [
        maskers.NiftiMasker(smoothing_fwhm=4.0), maskers.MultiNiftiMasker(), maskers.NiftiLabelsMasker(strategy="median"),
        maskers.NiftiMapsMasker(), maskers.NiftiSpheresMasker(seeds=[(0, 0, 0)], radius=6.0),
        maskers.MultiNiftiLabelsMasker(), maskers.MultiNiftiMapsMasker(),
        connectome.ConnectivityMeasure(kind="tangent"), connectome.GroupSparseCovariance(alpha=0.2),
        connectome.GroupSparseCovarianceCV(), connectome.GraphicalLasso(alpha=0.2),
        connectome.GraphicalLassoCV(cv=3), decomposition.DictLearning(n_components=3),
        decomposition.CanICA(n_components=3), decomposition.MultiPCA(),
    ]


@pytest.mark.parametrize("estimator", _estimators(), ids=lambda estimator: type(estimator).__name__)
def test_every_estimator_is_a_scikit_learn_estimator_with_its_tags(estimator):
    """The same bases, tags and parameters as ``class X(TransformerMixin, BaseEstimator)`` gave them."""
    from sklearn.base import TransformerMixin

    assert isinstance(estimator, Estimator) and isinstance(estimator, BaseEstimator)
    is_transformer = isinstance(estimator, TransformerEstimator)
    assert isinstance(estimator, TransformerMixin) == is_transformer
    tags = get_tags(estimator)
    assert (tags.transformer_tags is not None) == (is_transformer or isinstance(estimator, BaseMasker))
    assert constructor_parameters(estimator) == estimator.get_params(deep=False)
    copy = clone(estimator)
    assert repr(copy) == repr(estimator) and copy is not estimator


@pytest.mark.integration  # a fresh interpreter
def test_connectivity_measure_fits_without_importing_scikit_learn():
    """ConnectivityMeasure (brainxr's covariance kernels) runs every kind without scikit-learn; NotFittedError is its."""
    script = """
import sys
import numpy as np
from brainxr.connectome import ConnectivityMeasure
rng = np.random.default_rng(0)
X = [rng.normal(size=(50, 6)) for _ in range(3)]
for kind in ["correlation", "partial correlation", "tangent", "covariance", "precision"]:
    ConnectivityMeasure(kind=kind).fit_transform(X)
print(sorted(name for name in ("sklearn", "scipy.stats") if name in sys.modules))
try:
    ConnectivityMeasure().transform(X)
except Exception as error:
    print(type(error).__module__, type(error).__name__)
"""
    found = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert found.strip().splitlines()[-2:] == ["[]", "sklearn.exceptions NotFittedError"]
