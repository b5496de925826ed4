"""Downloaders against a local HTTP server serving stand-ins laid out like the real archives.

Nothing here touches the internet: every URL points at 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import io
import socket
import subprocess
import sys
import tarfile
import threading
import warnings
import zipfile
from pathlib import Path
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from brainxr.datasets import (
    DownloadError,
    fetch_adhd,
    fetch_atlas_harvard_oxford,
    fetch_atlas_msdl,
    fetch_coords_dosenbach_2010,
    fetch_coords_power_2011,
    fetch_development_fmri,
    get_data_dir,
    load_synthetic_labels_atlas,
    load_synthetic_maps_atlas,
    make_synthetic_cohort,
)
from brainxr.datasets import _download
from brainxr.datasets.fetchers import ADHD_IDS, DEVELOPMENT_REDUCED_CONFOUNDS

# ------------------------------------------------------------------ the server


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server API)
        server = self.server
        path = self.path.split("?")[0]
        server.requests.append(path)
        body = server.routes.get(path)
        if body is None:
            self.send_error(404)
            return
        if path in server.truncated:
            # announce the whole file, send half of it, then hang up
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    """A local server: ``routes`` maps URL paths to bytes; ``requests`` logs every GET."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.routes, httpd.requests, httpd.truncated = {}, [], set()
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    httpd.base = f"http://127.0.0.1:{httpd.server_address[1]}/"
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture()
def mirror(server, monkeypatch, tmp_path):
    """Point every fetcher at the local server and a fresh data folder."""
    monkeypatch.setenv("BRAINXR_DATASETS_URL", server.base)
    monkeypatch.setenv("BRAINXR_DATA", str(tmp_path / "data"))
    server.routes.clear()
    server.requests.clear()
    server.truncated.clear()
    return server


def _tar_bytes(members):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, payload in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return buffer.getvalue()


def _nifti_bytes(img, gz=True):
    buffer = io.BytesIO()
    file_map = img.make_file_map({"image": buffer, "header": buffer})
    img.to_file_map(file_map)
    raw = buffer.getvalue()
    if not gz:
        return raw
    import gzip

    return gzip.compress(raw, mtime=0)


# ------------------------------------------------------------- the stand-ins


@pytest.fixture(scope="module")
def harvard_oxford_standin():
    """48 bilateral labels (synthetic homotopic parcels merged), stored LAS like FSL's files."""
    atlas = load_synthetic_labels_atlas(resolution=4, n_regions=96)
    data = np.asarray(atlas.maps.dataobj).astype(np.int16)
    merged = np.where(data > 48, data - 48, data).astype(np.int16)
    affine = atlas.maps.affine.copy()
    las_affine = affine.copy()
    las_affine[0, 0] = -affine[0, 0]
    las_affine[0, 3] = affine[0, 3] + affine[0, 0] * (data.shape[0] - 1)
    las = nib.Nifti1Image(merged[::-1], las_affine)
    names = [f"Synthetic region {i}" for i in range(1, 49)]
    names[3] = "Lateral Ventrical"
    xml = "<atlas><data>" + "".join(
        f'<label index="{i}" x="0" y="0" z="0">{name}</label>' for i, name in enumerate(names)
    ) + "</data></atlas>"
    members = {
        "data/atlases/HarvardOxford/HarvardOxford-cort-maxprob-thr25-2mm.nii.gz": _nifti_bytes(las),
        "data/atlases/HarvardOxford/HarvardOxford-sub-maxprob-thr25-2mm.nii.gz": _nifti_bytes(las),
        "data/atlases/HarvardOxford-Cortical.xml": xml.encode(),
        "data/atlases/HarvardOxford-Subcortical.xml": xml.encode(),
    }
    return {"archive": _tar_bytes(members), "ras_data": merged, "affine": affine, "names": names}


@pytest.fixture(scope="module")
def msdl_standin():
    maps = load_synthetic_maps_atlas(resolution=8, n_maps=6)
    table = maps.lut.rename(columns={"network": "net name"})[["x", "y", "z", "name", "net name"]]
    table["name"] = " " + table["name"]  # the real file has padded names
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("MSDL_rois/msdl_rois.nii", _nifti_bytes(maps.maps, gz=False))
        archive.writestr("MSDL_rois/msdl_rois_labels.csv", table.to_csv(index=False))
    return {"archive": buffer.getvalue(), "maps": maps}


@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory):
    cohort = make_synthetic_cohort(
        tmp_path_factory.mktemp("standin"), n_subjects=1, n_volumes=40, resolution=8,
        n_regions=20, n_maps=4, n_dummy_scans=1,
    )
    run = cohort.runs[0]
    # like the real files, enough aCompCor components for the reduced confounds
    assert set(DEVELOPMENT_REDUCED_CONFOUNDS) <= set(pd.read_csv(run.confounds, sep="\t").columns)
    return {"bold": run.bold.read_bytes(), "confounds": run.confounds.read_bytes()}


@pytest.fixture()
def serve_msdl(mirror, msdl_standin):
    mirror.routes["/MSDL_rois.zip"] = msdl_standin["archive"]
    return mirror


@pytest.fixture()
def serve_harvard_oxford(mirror, harvard_oxford_standin):
    mirror.routes["/9902/HarvardOxford.tgz"] = harvard_oxford_standin["archive"]
    return mirror


def _development_participants():
    keys = pd.read_csv(
        __import__("importlib").resources.files("brainxr.datasets").joinpath("data", "development_fmri.csv")
    )
    ids = keys["participant_id"].to_list()
    # 3 adults and 6 children, as in the real table (adults are sub-pixar123 and up)
    adults, children = ids[-3:], ids[:6]
    rows = [(pid, 25.0, "Adult", "adult", "F", "R") for pid in adults]
    rows += [(pid, 6.0, "6yo", "child", "M", "R") for pid in children]
    table = pd.DataFrame(rows, columns=["participant_id", "Age", "AgeGroup", "Child_Adult", "Gender", "Handedness"])
    table["extra"] = 1
    return table, keys.set_index("participant_id")


@pytest.fixture()
def serve_development(mirror, synthetic_run):
    participants, keys = _development_participants()
    mirror.routes["/yr3av/download"] = participants.to_csv(sep="\t", index=False).encode()
    for pid in participants["participant_id"]:
        mirror.routes[f"/download/{keys.loc[pid, 'key_r']}/"] = synthetic_run["confounds"]
        mirror.routes[f"/download/{keys.loc[pid, 'key_b']}/"] = synthetic_run["bold"]
    return mirror


@pytest.fixture()
def serve_adhd(mirror, synthetic_run):
    phenotypic = pd.DataFrame({"Subject": [int(i) for i in ADHD_IDS], "adhd": np.arange(40) % 2})
    mirror.routes["/7781/adhd40_metadata.tgz"] = _tar_bytes(
        {"ADHD200_40subs_motion_parameters_and_phenotypics.csv": phenotypic.to_csv(index=False).encode()}
    )
    regressors = b"motion1,motion2\n0.1,0.2\n0.3,0.4\n"
    for subject, nitrc in zip(ADHD_IDS[:3], range(7782, 7785)):
        mirror.routes[f"/{nitrc}/adhd40_{subject}.tgz"] = _tar_bytes(
            {
                f"data/{subject}/{subject}_rest_tshift_RPI_voreg_mni.nii.gz": synthetic_run["bold"],
                f"data/{subject}/{subject}_regressors.csv": regressors,
            }
        )
    return mirror


# -------------------------------------------------------------------- tests


def test_data_dir_from_argument_environment_and_home(monkeypatch, tmp_path):
    monkeypatch.delenv("BRAINXR_DATA", raising=False)
    assert get_data_dir() == (__import__("pathlib").Path.home() / "brainxr_data")
    monkeypatch.setenv("BRAINXR_DATA", str(tmp_path / "env"))
    assert get_data_dir() == tmp_path / "env"
    assert get_data_dir(tmp_path / "arg") == tmp_path / "arg"


def test_msdl_download_layout_and_values(serve_msdl, msdl_standin):
    atlas = fetch_atlas_msdl()
    maps = msdl_standin["maps"]
    assert atlas.atlas_type == "probabilistic"
    assert atlas.maps.endswith("msdl_atlas/MSDL_rois/msdl_rois.nii")
    assert atlas.labels == maps.labels  # padding stripped
    assert atlas.networks == maps.networks
    np.testing.assert_allclose(atlas.region_coords, maps.lut[["x", "y", "z"]].to_numpy())
    np.testing.assert_array_equal(nib.load(atlas.maps).get_fdata(), maps.maps.get_fdata())
    assert set(atlas) >= {"maps", "labels", "region_coords", "networks", "description", "atlas_type"}
    assert serve_msdl.requests == ["/MSDL_rois.zip"]


def test_second_call_makes_no_request(serve_msdl):
    first = fetch_atlas_msdl()
    n_requests = len(serve_msdl.requests)
    second = fetch_atlas_msdl()
    assert len(serve_msdl.requests) == n_requests == 1
    assert first.maps == second.maps
    # the archive itself is not kept once unpacked
    assert not (get_data_dir() / "msdl_atlas" / "MSDL_rois.zip").exists()


def test_url_argument_overrides_environment(serve_msdl, monkeypatch):
    monkeypatch.setenv("BRAINXR_DATASETS_URL", "http://127.0.0.1:9/unused/")
    atlas = fetch_atlas_msdl(url=serve_msdl.base)
    assert len(atlas.labels) == 6


def test_harvard_oxford_is_reoriented_and_labelled(serve_harvard_oxford, harvard_oxford_standin):
    atlas = fetch_atlas_harvard_oxford("cort-maxprob-thr25-2mm")
    assert atlas.atlas_type == "deterministic"
    assert atlas.template == "MNI152NLin6Asym"
    assert atlas.labels[0] == "Background" and len(atlas.labels) == 49
    assert atlas.labels[4] == "Lateral Ventricle"  # FSL's typo fixed, as nilearn does
    assert np.all(np.diag(atlas.maps.affine)[:3] > 0)
    np.testing.assert_allclose(atlas.maps.affine, harvard_oxford_standin["affine"])
    np.testing.assert_array_equal(np.asarray(atlas.maps.dataobj), harvard_oxford_standin["ras_data"])
    assert list(atlas.lut.columns) == ["index", "name"] and atlas.lut["name"].iloc[0] == "Background"
    assert atlas.filename.endswith("fsl/data/atlases/HarvardOxford/HarvardOxford-cort-maxprob-thr25-2mm.nii.gz")


def test_harvard_oxford_symmetric_split_doubles_bilateral_regions(serve_harvard_oxford):
    atlas = fetch_atlas_harvard_oxford("sub-maxprob-thr25-2mm", symmetric_split=True)
    data = np.asarray(atlas.maps.dataobj)
    assert len(atlas.labels) == 1 + 2 * 48
    assert atlas.labels[1] == "Left Synthetic region 1" and atlas.labels[2] == "Right Synthetic region 1"
    middle = data.shape[0] // 2
    assert set(np.unique(data[:middle])) - {0} <= set(range(1, 97, 2))  # left labels are odd
    assert set(np.unique(data[middle:])) - {0} <= set(range(2, 97, 2))


def test_harvard_oxford_bad_arguments(mirror):
    with pytest.raises(ValueError, match="atlas_name must be one of"):
        fetch_atlas_harvard_oxford("cort-maxprob-thr99-2mm")
    with pytest.raises(ValueError, match="not supported for probabilistic"):
        fetch_atlas_harvard_oxford("cort-prob-2mm", symmetric_split=True)
    assert mirror.requests == []


def test_checksum_mismatch_is_a_clear_error_and_keeps_nothing(serve_msdl, monkeypatch):
    monkeypatch.setitem(_download.KNOWN_HASHES, "MSDL_rois.zip", "sha256:" + "0" * 64)
    with pytest.raises(DownloadError, match="checksum mismatch") as info:
        fetch_atlas_msdl()
    assert info.value.url == serve_msdl.base + "MSDL_rois.zip"
    assert not any((get_data_dir() / "msdl_atlas").rglob("*"))


def test_matching_checksum_is_accepted(serve_msdl, msdl_standin, monkeypatch):
    digest = hashlib.sha256(msdl_standin["archive"]).hexdigest()
    monkeypatch.setitem(_download.KNOWN_HASHES, "MSDL_rois.zip", f"sha256:{digest}")
    assert len(fetch_atlas_msdl().labels) == 6


def test_http_404_names_the_url(mirror):
    with pytest.raises(DownloadError, match="HTTP 404") as info:
        fetch_atlas_msdl()
    assert info.value.url == mirror.base + "MSDL_rois.zip"
    assert str(info.value).startswith(mirror.base + "MSDL_rois.zip")


def test_connection_refused_names_the_url(monkeypatch, tmp_path):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("BRAINXR_DATA", str(tmp_path))
    url = f"http://127.0.0.1:{port}/"
    with pytest.raises(DownloadError, match="could not connect") as info:
        fetch_atlas_msdl(url=url)
    assert info.value.url == url + "MSDL_rois.zip"


def test_truncated_transfer_leaves_no_file(serve_msdl):
    serve_msdl.truncated.add("/MSDL_rois.zip")
    with pytest.raises(DownloadError, match="MSDL_rois.zip"):
        fetch_atlas_msdl()
    assert not any((get_data_dir() / "msdl_atlas").rglob("*.zip"))
    serve_msdl.truncated.clear()
    assert len(fetch_atlas_msdl().labels) == 6  # the next call starts afresh


def test_corrupt_archive_is_retried_then_reported(mirror):
    mirror.routes["/9902/HarvardOxford.tgz"] = b"this is not a gzipped tar archive" * 10
    with pytest.raises(DownloadError, match="corrupt or truncated"):
        fetch_atlas_harvard_oxford("cort-maxprob-thr25-2mm")
    assert mirror.requests == ["/9902/HarvardOxford.tgz"] * 2  # deleted and downloaded once more
    assert not (get_data_dir() / "fsl" / "HarvardOxford.tgz").exists()


def test_archive_without_the_member_is_reported(mirror):
    mirror.routes["/9902/HarvardOxford.tgz"] = _tar_bytes({"data/atlases/other.txt": b"x"})
    with pytest.raises(DownloadError, match="no member 'data/atlases/HarvardOxford/"):
        fetch_atlas_harvard_oxford("cort-maxprob-thr25-2mm")


def test_development_fmri_selection_files_and_reduced_confounds(serve_development, synthetic_run):
    data = fetch_development_fmri(n_subjects=2)
    assert data.t_r == 2
    assert list(data.phenotypic["Child_Adult"]) == ["adult", "child"]
    assert len(data.func) == len(data.confounds) == 2
    pid = data.phenotypic["participant_id"].iloc[0]
    assert data.func[0].endswith(
        f"development_fmri/development_fmri/{pid}_task-pixar_space-MNI152NLin2009cAsym_desc-preproc_bold.nii.gz"
    )
    assert open(data.func[0], "rb").read() == synthetic_run["bold"]
    reduced = pd.read_csv(data.confounds[0], sep="\t")
    assert data.confounds[0].endswith(f"{pid}_task-pixar_desc-reducedConfounds_regressors.tsv")
    assert list(reduced.columns) == list(DEVELOPMENT_REDUCED_CONFOUNDS)
    full = pd.read_csv(synthetic_run_confounds_path(data.confounds[0]), sep="\t")
    pd.testing.assert_frame_equal(reduced, full[list(DEVELOPMENT_REDUCED_CONFOUNDS)])
    n_requests = len(serve_development.requests)
    fetch_development_fmri(n_subjects=2)
    assert len(serve_development.requests) == n_requests == 5  # participants + 2 x (bold, confounds)


def synthetic_run_confounds_path(reduced_path):
    return reduced_path.replace("desc-reducedConfounds", "desc-confounds")


def test_development_fmri_proportions_and_age_groups(serve_development):
    both = fetch_development_fmri(n_subjects=3, reduce_confounds=False)
    assert list(both.phenotypic["Child_Adult"]) == ["adult", "child", "child"]
    assert all(path.endswith("desc-confounds_regressors.tsv") for path in both.confounds)
    children = fetch_development_fmri(n_subjects=2, age_group="child", reduce_confounds=False)
    assert set(children.phenotypic["Child_Adult"]) == {"child"}
    with pytest.warns(UserWarning, match="n_subjects=50"):
        everyone = fetch_development_fmri(n_subjects=50, age_group="adult", reduce_confounds=False)
    assert len(everyone.func) == 3
    with pytest.raises(ValueError, match="age_group"):
        fetch_development_fmri(age_group="teen")


def test_adhd_archives_and_phenotypic(serve_adhd, synthetic_run):
    data = fetch_adhd(n_subjects=3)
    assert data.t_r == 2.0
    assert list(data.phenotypic["Subject"]) == list(ADHD_IDS[:3])
    assert data.func[1].endswith(f"adhd/data/{ADHD_IDS[1]}/{ADHD_IDS[1]}_rest_tshift_RPI_voreg_mni.nii.gz")
    assert data.confounds[2].endswith(f"adhd/data/{ADHD_IDS[2]}/{ADHD_IDS[2]}_regressors.csv")
    assert open(data.func[0], "rb").read() == synthetic_run["bold"]
    n_requests = len(serve_adhd.requests)
    assert n_requests == 4
    fetch_adhd(n_subjects=3)
    assert len(serve_adhd.requests) == n_requests


def test_adhd_matches_nilearn_on_the_same_mirror(serve_adhd, tmp_path):
    nilearn_datasets = pytest.importorskip("nilearn.datasets")
    ours = fetch_adhd(n_subjects=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = nilearn_datasets.fetch_adhd(n_subjects=2, data_dir=tmp_path / "nilearn", url=serve_adhd.base, verbose=0)
    assert {"func", "confounds", "phenotypic", "t_r"} <= set(ours) & set(theirs)
    assert [p.split("adhd/")[1] for p in ours.func] == [str(p).split("adhd/")[1] for p in theirs.func]
    assert [p.split("adhd/")[1] for p in ours.confounds] == [str(p).split("adhd/")[1] for p in theirs.confounds]
    pd.testing.assert_frame_equal(
        ours.phenotypic.reset_index(drop=True), theirs.phenotypic.reset_index(drop=True)
    )


def test_coordinates_match_nilearn():
    nilearn_datasets = pytest.importorskip("nilearn.datasets")
    power, theirs = fetch_coords_power_2011(legacy_format=False), nilearn_datasets.fetch_coords_power_2011()
    assert power.rois.shape == (264, 4)
    pd.testing.assert_frame_equal(power.rois, theirs.rois)
    dosenbach = fetch_coords_dosenbach_2010()
    theirs = nilearn_datasets.fetch_coords_dosenbach_2010()
    pd.testing.assert_frame_equal(dosenbach.rois, theirs.rois)
    assert list(dosenbach.labels) == list(theirs.labels)
    assert list(dosenbach.networks) == list(theirs.networks)
    unordered = fetch_coords_dosenbach_2010(ordered_regions=False)
    assert unordered.labels[0] == "vmPFC 1" and len(unordered.labels) == 160
    with pytest.raises(ValueError, match="legacy_format"):
        fetch_coords_power_2011(legacy_format=True)


# ------------------------------------------------------ parcellation fetchers


def _schaefer_labels(n_rois, networks):
    rows = [f"{i}\t{networks}Networks_{'LH' if i <= n_rois // 2 else 'RH'}_Vis_{i}\t{i % 256}\t{(3 * i) % 256}\t"
            f"{(7 * i) % 256}\t0" for i in range(1, n_rois + 1)]
    return ("\n".join(rows) + "\n").encode()


def test_schaefer_2018_equals_nilearn(mirror, tmp_path):
    from nilearn.datasets import fetch_atlas_schaefer_2018 as nilearn_fetch

    from brainxr.datasets import fetch_atlas_schaefer_2018
    from brainxr.datasets.fetchers import SCHAEFER_PATH

    labels_img = load_synthetic_labels_atlas(resolution=8, n_regions=100).maps
    for name, body in {"Schaefer2018_100Parcels_7Networks_order.txt": _schaefer_labels(100, 7),
                       "Schaefer2018_100Parcels_7Networks_order_FSLMNI152_2mm.nii.gz": _nifti_bytes(labels_img)}.items():
        mirror.routes[f"/{SCHAEFER_PATH}{name}"] = body
    ours = fetch_atlas_schaefer_2018(n_rois=100, resolution_mm=2)
    theirs = nilearn_fetch(n_rois=100, resolution_mm=2, data_dir=tmp_path / "nilearn", base_url=mirror.base + SCHAEFER_PATH,
                           verbose=0)
    assert ours.labels == list(theirs.labels) and ours.labels[0] == "Background"
    pd.testing.assert_frame_equal(ours.lut, theirs.lut)
    assert (ours.atlas_type, ours.template) == (theirs.atlas_type, theirs.template)
    np.testing.assert_array_equal(nib.load(ours.maps).get_fdata(), nib.load(theirs.maps).get_fdata())
    with pytest.raises(ValueError, match="n_rois must be one of"):
        fetch_atlas_schaefer_2018(n_rois=150)


def _yeo_archive():
    labels = load_synthetic_labels_atlas(resolution=8, n_regions=18).maps
    members = {}
    for networks in (7, 17):
        for suffix in ("", "_LiberalMask"):
            members[f"Yeo_JNeurophysiol11_MNI152/Yeo2011_{networks}Networks_MNI152_FreeSurferConformed1mm{suffix}.nii.gz"] = \
                _nifti_bytes(labels)
        lut = "0     NONE                            0   0   0   0\n" + "".join(
            f"{i:<5} {networks}Networks_{i:<20} {10 * i:>3} {20 * i % 256:>3} {30 * i % 256:>3}   0\n"
            for i in range(1, networks + 1))
        members[f"Yeo_JNeurophysiol11_MNI152/Yeo2011_{networks}Networks_ColorLUT.txt"] = lut.encode()
    members["Yeo_JNeurophysiol11_MNI152/FSL_MNI152_FreeSurferConformed_1mm.nii.gz"] = _nifti_bytes(labels)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, payload in members.items():
            archive.writestr(name, payload)
    return buffer.getvalue()


@pytest.mark.parametrize("n_networks, thickness", [(7, "thick"), (17, "thin")])
def test_yeo_2011_equals_nilearn(mirror, tmp_path, n_networks, thickness):
    from nilearn.datasets import fetch_atlas_yeo_2011 as nilearn_fetch

    from brainxr.datasets import fetch_atlas_yeo_2011

    mirror.routes["/pub/data/Yeo_JNeurophysiol11_MNI152.zip"] = _yeo_archive()
    ours = fetch_atlas_yeo_2011(n_networks=n_networks, thickness=thickness)
    assert mirror.requests == ["/pub/data/Yeo_JNeurophysiol11_MNI152.zip"]
    fetch_atlas_yeo_2011(n_networks=n_networks, thickness=thickness)  # cached: no second download
    assert len(mirror.requests) == 1
    theirs = nilearn_fetch(data_dir=tmp_path / "nilearn", url=mirror.base + "pub/data/Yeo_JNeurophysiol11_MNI152.zip",
                           n_networks=n_networks, thickness=thickness, verbose=0)
    assert ours.labels == list(theirs.labels) and len(ours.labels) == n_networks + 1
    pd.testing.assert_frame_equal(ours.lut, theirs.lut)
    assert Path(ours.maps).name == Path(theirs.maps).name and Path(ours.anat).name == Path(theirs.anat).name
    assert (ours.template, ours.atlas_type) == (theirs.template, theirs.atlas_type)


def test_difumo(mirror):
    from brainxr.datasets import fetch_atlas_difumo

    maps = load_synthetic_maps_atlas(resolution=8, n_maps=4).maps
    table = pd.DataFrame({"Component": [1, 2, 3, 4], "Difumo_names": ["A", "B", "C", "D"],
                          "Yeo_networks7": ["Vis"] * 4, "GM": [0.5] * 4})
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("64/labels_64_dictionary.csv", table.to_csv(index=False))
        archive.writestr("64/2mm/maps.nii.gz", _nifti_bytes(maps))
        archive.writestr("64/3mm/maps.nii.gz", _nifti_bytes(maps))
    mirror.routes["/pqu9r/download"] = buffer.getvalue()
    mirror.routes["/4k9bf/download"] = b"# DiFuMo\n"
    atlas = fetch_atlas_difumo(dimension=64, resolution_mm=3)
    assert atlas.maps.endswith("difumo_atlases/64/3mm/maps.nii.gz")
    pd.testing.assert_frame_equal(atlas.labels, table.rename(columns=str.lower))
    assert (atlas.atlas_type, atlas.template) == ("probabilistic", "MNI152NLin6Asym")
    np.testing.assert_array_equal(nib.load(atlas.maps).get_fdata(), maps.get_fdata())
    with pytest.raises(ValueError, match="dimension must be one of"):
        fetch_atlas_difumo(dimension=65)


@pytest.mark.parametrize("version", ["3v2", "SPM12", "SPM8"])
def test_aal(mirror, version):
    from nilearn._utils.bids import generate_atlas_look_up_table

    from brainxr.datasets import fetch_atlas_aal
    from brainxr.datasets.fetchers import _aal_files

    labels_img = _nifti_bytes(load_synthetic_labels_atlas(resolution=8, n_regions=6).maps, gz=False)
    names, indices = [f"Region_{i}_L" for i in range(1, 7)], [str(2000 + 10 * i) for i in range(1, 7)]
    url, archive_name, members = _aal_files(version, None)
    if version in ("SPM12", "3v2"):
        xml = "<atlas><data>" + "".join(f"<label><index>{i}</index><name>{n}</name></label>"
                                        for i, n in zip(indices, names)) + "</data></atlas>"
        mirror.routes["/" + url.split(mirror.base)[1]] = _tar_bytes({members[0]: labels_img, members[1]: xml.encode()})
    else:
        text = "".join(f"{n[:4]}\t{n}\t{i}\n" for i, n in zip(indices, names))
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr(members[0], labels_img)
            archive.writestr(members[1], text)
        mirror.routes["/" + url.split(mirror.base)[1]] = buffer.getvalue()
    atlas = fetch_atlas_aal(version)
    assert atlas.labels == ["Background", *names] and atlas.indices == ["0", *indices]
    expected = generate_atlas_look_up_table("fetch_atlas_aal", index=np.array([int(i) for i in atlas.indices]),
                                            name=atlas.labels)
    pd.testing.assert_frame_equal(atlas.lut, expected)
    assert (atlas.atlas_type, atlas.template) == ("deterministic", "MNIColin27")
    assert atlas.description.count(version) == (0 if version in ("SPM12", "3v2") else 1)


def test_aal_falls_back_to_its_osf_copy(mirror):
    from brainxr.datasets import fetch_atlas_aal
    from brainxr.datasets.fetchers import _aal_files

    _, _, members = _aal_files("SPM12", None)
    xml = "<atlas><data><label><index>1</index><name>A</name></label></data></atlas>"
    mirror.routes["/s94qg/download"] = _tar_bytes({members[0]: _nifti_bytes(
        load_synthetic_labels_atlas(resolution=8, n_regions=2).maps, gz=False), members[1]: xml.encode()})
    atlas = fetch_atlas_aal("SPM12")  # the GIN path answers 404 on the mirror
    assert atlas.labels == ["Background", "A"] and mirror.requests[-1] == "/s94qg/download"


def test_basc_multiscale_2015(mirror):
    from nilearn._utils.bids import generate_atlas_look_up_table

    from brainxr.datasets import fetch_atlas_basc_multiscale_2015

    maps = _nifti_bytes(load_synthetic_labels_atlas(resolution=8, n_regions=12).maps)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("template_cambridge_basc_multiscale_nii_asym/"
                         "template_cambridge_basc_multiscale_asym_scale012.nii.gz", maps)
    mirror.routes["/1861820"] = buffer.getvalue()
    atlas = fetch_atlas_basc_multiscale_2015(resolution=12, version="asym")
    assert atlas.labels == ["Background"] + [str(i) for i in range(1, 13)]
    pd.testing.assert_frame_equal(atlas.lut, generate_atlas_look_up_table("fetch_atlas_basc_multiscale_2015",
                                                                          name=atlas.labels))
    assert atlas.template == "MNI152asym" and atlas.maps.endswith("scale012.nii.gz")
    with pytest.raises(ValueError, match="Requested resolution=13 not available"):
        fetch_atlas_basc_multiscale_2015(resolution=13)


def test_bunch_behaves_as_scikit_learns():
    """The fetchers' Bunch (no scikit-learn import) does what ``sklearn.utils.Bunch`` does."""
    import pickle

    from sklearn.utils import Bunch as SklearnBunch

    from brainxr.datasets._bunch import Bunch

    for make in (Bunch, SklearnBunch):
        bunch = make(maps="atlas.nii.gz", labels=["a", "b"])
        bunch.description = "text"
        bunch["extra"] = 1
        assert (bunch.maps, bunch["description"], bunch.extra) == ("atlas.nii.gz", "text", 1)
        assert sorted(dir(bunch)) == ["description", "extra", "labels", "maps"]
        assert dict(bunch) == {"maps": "atlas.nii.gz", "labels": ["a", "b"], "description": "text", "extra": 1}
        with pytest.raises(AttributeError, match="missing"):
            bunch.missing
        assert not hasattr(bunch, "missing")
        copy = pickle.loads(pickle.dumps(bunch))
        assert type(copy) is make and copy == bunch and copy.labels == ["a", "b"]


@pytest.mark.integration  # a fresh interpreter
def test_coordinate_fetchers_import_no_scikit_learn():
    script = (
        "import sys\nfrom brainxr import datasets\n"
        "power = datasets.fetch_coords_power_2011(); dosenbach = datasets.fetch_coords_dosenbach_2010()\n"
        "print(len(power.rois), len(dosenbach.rois), 'sklearn' in sys.modules)"
    )
    found = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert found.stdout.split() == ["264", "160", "False"]
