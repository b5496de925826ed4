"""Templates and atlases through TemplateFlow's client, on a local cache and a local server."""

from __future__ import annotations

import shutil
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import nibabel as nib
import numpy as np
import pytest

from brainxr.datasets.templateflow import (
    TemplateFlowError,
    available_atlases,
    fetch_atlas,
    get_template,
    load_atlas,
    templateflow_client,
)
from brainxr.regions import LabelsAtlas, MapsAtlas


def test_get_template_mask(templateflow_home):
    path = get_template("MNI152NLin2009cAsym", resolution=2, desc="brain", suffix="mask")
    assert path == templateflow_home / "tpl-MNI152NLin2009cAsym" / "tpl-MNI152NLin2009cAsym_res-02_desc-brain_mask.nii.gz"
    assert nib.load(path).get_fdata().any()
    t1w = get_template("MNI152NLin2009cAsym", resolution=1)  # desc=None: the T1w without desc only
    assert t1w.name == "tpl-MNI152NLin2009cAsym_res-01_T1w.nii.gz"


def test_get_template_errors(templateflow_home):
    with pytest.raises(TemplateFlowError, match=r"no template 'MNI152NLin2009bAsym'.*MNI152NLin2009cAsym, MNI152NLin6Asym"):
        get_template("MNI152NLin2009bAsym", resolution=2)
    with pytest.raises(TemplateFlowError, match=r"no file in TemplateFlow; mask files of MNI152NLin6Asym: .*res-01_desc-brain_mask"):
        get_template("MNI152NLin6Asym", resolution=7, desc="brain", suffix="mask")


def test_schaefer_variants(templateflow_home):
    atlas, fetched = load_atlas("Schaefer2018", "200Parcels7Networks")
    assert isinstance(atlas, LabelsAtlas) and atlas.n_regions == 200
    assert fetched.label == "Schaefer2018200Parcels7Networks" and fetched.kind == "dseg" and fetched.resolution == 2
    assert list(atlas.regions["name"][:2]) == ["7Networks_LH_Vis_1", "7Networks_LH_SomMot_2"]
    _, networks17 = load_atlas("Schaefer2018", "100Parcels17Networks", resolution=1)
    assert networks17.resolution == 1 and networks17.regions["name"][0].startswith("17Networks")


def test_difumo_maps_closest_resolution(templateflow_home):
    atlas, fetched = load_atlas("DiFuMo", "64dimensions", resolution=2)
    assert isinstance(atlas, MapsAtlas) and atlas.n_regions == 64
    assert fetched.kind == "probseg" and fetched.resolution == 2
    assert fetched.image.name == "tpl-MNI152NLin2009cAsym_res-02_atlas-DiFuMo_desc-64dimensions_probseg.nii.gz"
    assert fetch_atlas("DiFuMo", "64dimensions", resolution=4).resolution == 3


def test_harvard_oxford_tables_from_nlin6(templateflow_home):
    atlas, fetched = load_atlas("HarvardOxfordSubcortical", "th25")
    assert fetched.name == "HOSPA" and fetched.table.parent.name == "tpl-MNI152NLin6Asym"
    assert fetched.image.parent.name == "tpl-MNI152NLin2009cAsym"
    assert atlas.regions["name"][0] == "HOSPA structure 1"
    maps, probseg = load_atlas("HOCPA", suffix="probseg")
    assert isinstance(maps, MapsAtlas) and probseg.kind == "probseg" and maps.n_regions == 48


def test_atlas_errors_list_the_choices(templateflow_home):
    with pytest.raises(TemplateFlowError, match=r"Schaefer2018:100Parcels8Networks in MNI152NLin2009cAsym: not found; "
                                                r"variants of Schaefer2018: Schaefer2018:100Parcels17Networks, "
                                                r"Schaefer2018:100Parcels7Networks, Schaefer2018:200Parcels7Networks"):
        fetch_atlas("Schaefer2018", "100Parcels8Networks")
    with pytest.raises(TemplateFlowError, match=r"atlas Shaefer2018 .*not found; atlases of MNI152NLin2009cAsym: DiFuMo:64dimensions"):
        fetch_atlas("Shaefer2018")
    with pytest.raises(TemplateFlowError, match=r"HOSPA:th30 .*not found; variants of HOSPA: HOSPA, HOSPA:th0, HOSPA:th25, HOSPA:th50$"):
        fetch_atlas("HarvardOxfordSubcortical", "th30")
    assert fetch_atlas("HOSPA").kind == "probseg"  # without desc, only the maps


def test_available_atlases(templateflow_home):
    listed = available_atlases("MNI152NLin6Asym")
    assert "Schaefer2018:100Parcels7Networks" in listed and "HOCPA:th25" in listed and "DiFuMo:64dimensions" in listed


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture()
def templateflow_server(templateflow_home, tmp_path):
    """A local copy of the cache served over HTTP as TemplateFlow's S3 bucket, and an empty-file skeleton of it."""
    served = tmp_path / "bucket"
    shutil.copytree(templateflow_home, served)
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(served)))
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    skeleton = tmp_path / "skeleton"
    for path in served.rglob("*"):
        target = skeleton / path.relative_to(served)
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        elif path.name == "template_description.json":
            shutil.copy(path, target)
        else:  # TemplateFlow's skeleton: every file present, empty until fetched
            target.touch()
    yield skeleton, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_download_through_the_client(templateflow_server):
    skeleton, url = templateflow_server
    client = templateflow_client(skeleton, s3_root=url, autoupdate=False)
    atlas, fetched = load_atlas("Schaefer2018", "100Parcels7Networks", client=client)
    assert fetched.image.stat().st_size > 0 and fetched.table.stat().st_size > 0
    assert atlas.n_regions == 100
    mask = get_template("MNI152NLin2009cAsym", resolution=2, desc="brain", suffix="mask", client=client)
    assert np.asarray(nib.load(mask).dataobj).any()
    # files not asked for stay empty placeholders
    assert (skeleton / "tpl-MNI152NLin6Asym" / "tpl-MNI152NLin6Asym_res-02_T1w.nii.gz").stat().st_size == 0


def test_failed_download_is_named(templateflow_server):
    skeleton, _ = templateflow_server
    client = templateflow_client(skeleton, s3_root="http://127.0.0.1:9", autoupdate=False, timeout=2)
    with pytest.raises(TemplateFlowError, match=r"could not download tpl-MNI152NLin2009cAsym_res-02_atlas-DiFuMo"):
        fetch_atlas("DiFuMo", "64dimensions", client=client)
