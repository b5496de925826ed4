"""The compiled kernels are cached on disk: only the first process compiles.

Each case runs the sparse estimators in fresh interpreters and lists the
brainxr functions numba had to compile (a load from the cache compiles
nothing).
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import brainxr

pytestmark = pytest.mark.slow

_FIT_AND_LIST_COMPILES = """
import json, warnings
import numpy as np
from numba.core import event

compiled = []

class Compiles(event.Listener):
    def on_start(self, event):
        pass

    def on_end(self, event):
        function = event.data["dispatcher"].py_func
        compiled.append(f"{function.__module__}.{function.__name__}")

event.register("numba:compile", Compiles())
import brainxr
from brainxr.connectome import GraphicalLassoCV, GroupSparseCovarianceCV

warnings.simplefilter("ignore")
signals = np.random.default_rng(0).standard_normal((40, 8))
GraphicalLassoCV(alphas=3, n_refinements=2, cv=2).fit(signals)
GroupSparseCovarianceCV(alphas=3, n_refinements=1, cv=2).fit([signals[:20], signals[20:]])
print(json.dumps({"package": brainxr.__file__,
                  "compiled": sorted({name for name in compiled if name.startswith("brainxr.")})}))
"""


def _fresh_process(env, cwd):
    completed = subprocess.run(
        [sys.executable, "-c", _FIT_AND_LIST_COMPILES],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _environment(**variables):
    env = {key: value for key, value in os.environ.items() if not key.startswith("NUMBA_")}
    env.update(variables)
    return env


def test_a_fresh_process_loads_the_kernels_from_the_cache(tmp_path):
    env = _environment(NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    first = _fresh_process(env, tmp_path)
    assert {"brainxr.connectome._quic._cd_sweeps", "brainxr.connectome._group_bcd._bcd_sweep"} <= set(
        first["compiled"]
    )
    assert list((tmp_path / "cache").rglob("*.nbi"))
    assert _fresh_process(env, tmp_path)["compiled"] == []


def test_a_read_only_installation_caches_in_the_user_cache_directory(tmp_path):
    """Where numba cannot write next to the package (``__pycache__`` cannot be
    created, as in a read-only site-packages), it caches in the user's cache
    directory (``$XDG_CACHE_HOME/numba``), and the next process loads from there."""
    installed = tmp_path / "site-packages"
    shutil.copytree(
        Path(brainxr.__file__).parent, installed / "brainxr",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    for package in (installed / "brainxr").rglob("__init__.py"):
        (package.parent / "__pycache__").write_text("not a directory: nothing can be written here")
    user_cache = tmp_path / "user-cache"
    env = _environment(PYTHONPATH=str(installed), XDG_CACHE_HOME=str(user_cache), PYTHONDONTWRITEBYTECODE="1")
    first = _fresh_process(env, tmp_path)
    assert Path(first["package"]).is_relative_to(installed)
    assert "brainxr.connectome._quic._cd_sweeps" in first["compiled"]
    assert list((user_cache / "numba").rglob("*.nbi"))
    assert not list(installed.rglob("*.nbi"))
    assert _fresh_process(env, tmp_path)["compiled"] == []
