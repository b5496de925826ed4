"""Downloaders for the public data of nilearn's example workflows.

Same names, parameters and returned keys as nilearn 0.14's fetchers, so that
an example switches by changing its import:

- :func:`fetch_development_fmri`: movie-watching fMRI of children and adults
  (OpenNeuro ds000228, fMRIPrep, 4 mm), from OSF;
- :func:`fetch_adhd`: 40 resting-state subjects of ADHD-200, from NITRC;
- :func:`fetch_atlas_msdl`: the MSDL probabilistic atlas, from Inria;
- :func:`fetch_atlas_harvard_oxford`: the Harvard-Oxford atlases of FSL, from NITRC;
- :func:`fetch_atlas_schaefer_2018` (CBIG repository), :func:`fetch_atlas_difumo`
  (OSF), :func:`fetch_atlas_yeo_2011` (FreeSurfer), :func:`fetch_atlas_aal`
  (GIN, OSF copy as fallback), :func:`fetch_atlas_basc_multiscale_2015`
  (figshare): parcellations, with nilearn 0.14.1's signatures and returns;
- :func:`fetch_coords_power_2011`, :func:`fetch_coords_dosenbach_2010`: seed
  coordinates shipped with brainxr (tables from nilearn, BSD-3 licence).

Downloads go through :mod:`brainxr.datasets._download` (caching, checksums,
mirror URL, clear errors).
"""

from __future__ import annotations

import numbers
import warnings
from importlib import resources
from pathlib import Path
from xml.etree import ElementTree

import nibabel as nib
import numpy as np
import pandas as pd
from brainxr.datasets._bunch import Bunch

from brainxr.datasets._download import (
    DownloadError,
    _known_hash,
    dataset_dir,
    download,
    fetch_archive_members,
    resolve_url,
)

OSF_URL = "https://osf.io/"
NITRC_URL = "https://www.nitrc.org/frs/download.php/"
INRIA_URL = "https://team.inria.fr/parietal/files/2015/01/"

_DESCRIPTIONS = {
    "development_fmri": (
        "Movie-watching fMRI of 122 children (3-12 years) and 33 adults (OpenNeuro ds000228, "
        "Richardson et al. 2018), preprocessed with fMRIPrep and downsampled to 4 mm, TR 2 s "
        "(https://osf.io/5hju4/)."
    ),
    "adhd": (
        "Resting-state fMRI of 40 subjects of the ADHD-200 sample (NITRC), preprocessed "
        "(slice timing, motion correction, MNI registration), with nuisance regressors."
    ),
    "msdl_atlas": (
        "MSDL: multi-subject dictionary learning atlas of 39 probabilistic resting-state "
        "regions (Varoquaux et al. 2011), with region names, networks and coordinates."
    ),
    "harvard_oxford": (
        "Harvard-Oxford cortical and subcortical structural atlases of FSL (Makris 2006, "
        "Desikan 2006, Frazier 2005, Goldstein 2007), maximum-probability and probabilistic."
    ),
    "power_2011": "264 seed coordinates (MNI, mm) of Power et al. (2011), Neuron 72(4):665-678.",
    "dosenbach_2010": (
        "160 seed coordinates (MNI, mm) of Dosenbach et al. (2010), Science 329:1358-1361, "
        "in 6 networks."
    ),
}

_HARVARD_OXFORD_ATLASES = tuple(
    f"{kind}-{variant}-{res}"
    for kind in ("cort", "cortl", "sub")
    for variant in ("maxprob-thr0", "maxprob-thr25", "maxprob-thr50", "prob")
    for res in ("1mm", "2mm")
)

ADHD_IDS = (
    "0010042", "0010064", "0010128", "0021019", "0023008", "0023012", "0027011", "0027018",
    "0027034", "0027037", "1019436", "1206380", "1418396", "1517058", "1552181", "1562298",
    "1679142", "2014113", "2497695", "2950754", "3007585", "3154996", "3205761", "3520880",
    "3624598", "3699991", "3884955", "3902469", "3994098", "4016887", "4046678", "4134561",
    "4164316", "4275075", "6115230", "7774305", "8409791", "8697774", "9744150", "9750701",
)
# NITRC download ids of the ADHD archives, in the order of ADHD_IDS
_ADHD_NITRC_IDS = tuple(range(7782, 7822))

DEVELOPMENT_REDUCED_CONFOUNDS = (
    "trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z", "framewise_displacement",
    "a_comp_cor_00", "a_comp_cor_01", "a_comp_cor_02", "a_comp_cor_03", "a_comp_cor_04",
    "a_comp_cor_05", "csf", "white_matter",
)


def _package_table(name):
    with resources.files("brainxr.datasets").joinpath("data", name).open("r") as stream:
        return pd.read_csv(stream)


def _check_n_subjects(n_subjects, maximum, name="n_subjects"):
    """nilearn's rule: None or out of range -> all subjects (out of range with a warning)."""
    if n_subjects is None:
        return maximum
    if isinstance(n_subjects, bool) or not isinstance(n_subjects, numbers.Integral):
        raise TypeError(f"{name} must be an integer or None, got {n_subjects!r}")
    if n_subjects > maximum or n_subjects < 1:
        warnings.warn(
            f"Wrong value for {name}={n_subjects}: there are {maximum} subjects; using {maximum}.",
            stacklevel=3,
        )
        return maximum
    return int(n_subjects)


# ------------------------------------------------------------ development fMRI


def _development_participants(folder, url, verbose):
    relative = "yr3av/download"
    path = download(
        resolve_url(OSF_URL, relative, url), folder / "participants.tsv",
        known_hash=_known_hash(relative), verbose=verbose,
    )
    columns = ["participant_id", "Age", "AgeGroup", "Child_Adult", "Gender", "Handedness"]
    try:
        return pd.read_table(path, usecols=columns)
    except (ValueError, pd.errors.ParserError) as error:
        path.unlink(missing_ok=True)
        raise DownloadError(
            resolve_url(OSF_URL, relative, url),
            f"participants.tsv lacks the expected columns {columns} ({error}); it was deleted",
        ) from error


def _reduce_confounds(paths, keep):
    reduced = []
    for path in paths:
        out = Path(str(path).replace("desc-confounds", "desc-reducedConfounds"))
        if not out.is_file():
            table = pd.read_csv(path, sep="\t")
            missing = [column for column in keep if column not in table.columns]
            if missing:
                raise ValueError(f"{path}: confounds file lacks the columns {missing}")
            table[list(keep)].to_csv(out, sep="\t", index=False, na_rep="n/a")
        reduced.append(str(out))
    return reduced


def fetch_development_fmri(
    n_subjects=None,
    reduce_confounds=True,
    data_dir=None,
    resume=True,
    verbose=1,
    age_group="both",
    url=None,
):
    """Fetch the movie-watching brain development fMRI dataset (nilearn-compatible).

    Parameters
    ----------
    n_subjects : int or None, default=None
        Number of subjects (of 155; None for all). With ``age_group="both"``
        the proportion of children and adults of the full sample is kept
        (one adult for 1 subject, one of each for 2), as in nilearn.
    reduce_confounds : bool, default=True
        Also write and return ``desc-reducedConfounds_regressors.tsv`` files
        keeping 6 motion parameters, framewise displacement, 6 aCompCor
        components, CSF and white matter.
    data_dir : str or pathlib.Path, optional
        Data folder (default ``$BRAINXR_DATA`` or ``~/brainxr_data``).
    resume : bool, default=True
        Accepted for nilearn compatibility (interrupted downloads never stay).
    verbose : int, default=1
    age_group : {"both", "child", "adult"}
    url : str, optional
        Base URL replacing ``https://osf.io/`` (a mirror with the same layout).

    Returns
    -------
    sklearn.utils.Bunch
        ``func`` (list of paths), ``confounds`` (list of paths),
        ``phenotypic`` (DataFrame), ``description``, ``t_r`` (2).
    """
    if age_group not in ("both", "child", "adult"):
        raise ValueError(f"age_group must be 'both', 'child' or 'adult', got {age_group!r}")
    folder = dataset_dir("development_fmri", data_dir) / "development_fmri"
    folder.mkdir(exist_ok=True)
    participants = _development_participants(folder, url, verbose)

    groups = participants["Child_Adult"].to_list()
    n_child = groups.count("child") if age_group != "adult" else 0
    n_adult = groups.count("adult") if age_group != "child" else 0
    n_subjects = _check_n_subjects(n_subjects, n_child + n_adult)
    fraction = n_subjects / (n_child + n_adult)
    want_child, want_adult = int(np.round(fraction * n_child)), int(np.round(fraction * n_adult))
    if age_group != "child" and n_subjects == 1:
        want_adult, want_child = 1, 0
    if age_group == "both" and n_subjects == 2:
        want_adult, want_child = 1, 1
    child_ids = participants.loc[participants["Child_Adult"] == "child", "participant_id"][:want_child]
    adult_ids = participants.loc[participants["Child_Adult"] == "adult", "participant_id"][:want_adult]
    selected = participants[participants["participant_id"].isin(np.hstack([adult_ids, child_ids]))]
    selected = selected.sort_values(by=["Child_Adult"])

    keys = _package_table("development_fmri.csv").set_index("participant_id")
    funcs, confounds = [], []
    for participant in selected["participant_id"]:
        if participant not in keys.index:
            raise ValueError(f"no download key for participant {participant!r} in development_fmri.csv")
        key_confounds, key_bold = keys.loc[participant, "key_r"], keys.loc[participant, "key_b"]
        confounds_rel, bold_rel = f"download/{key_confounds}/", f"download/{key_bold}/"
        confounds.append(
            str(
                download(
                    resolve_url(OSF_URL, confounds_rel, url),
                    folder / f"{participant}_task-pixar_desc-confounds_regressors.tsv",
                    known_hash=_known_hash(confounds_rel), verbose=verbose,
                )
            )
        )
        funcs.append(
            str(
                download(
                    resolve_url(OSF_URL, bold_rel, url),
                    folder / f"{participant}_task-pixar_space-MNI152NLin2009cAsym_desc-preproc_bold.nii.gz",
                    known_hash=_known_hash(bold_rel), verbose=verbose,
                )
            )
        )
    if reduce_confounds:
        confounds = _reduce_confounds(confounds, DEVELOPMENT_REDUCED_CONFOUNDS)
    return Bunch(
        func=funcs,
        confounds=confounds,
        phenotypic=selected,
        description=_DESCRIPTIONS["development_fmri"],
        t_r=2,
    )


# ------------------------------------------------------------------------ ADHD


def fetch_adhd(n_subjects=30, data_dir=None, url=None, resume=True, verbose=1):
    """Fetch the ADHD-200 resting-state sample of 40 subjects (nilearn-compatible).

    Parameters
    ----------
    n_subjects : int or None, default=30
        Number of subjects (of 40; None for all).
    data_dir : str or pathlib.Path, optional
    url : str, optional
        Base URL replacing ``https://www.nitrc.org/frs/download.php/``.
    resume : bool, default=True
    verbose : int, default=1

    Returns
    -------
    sklearn.utils.Bunch
        ``func`` and ``confounds`` (lists of paths), ``phenotypic``
        (DataFrame of the selected subjects), ``description``, ``t_r`` (2.0).
    """
    n_subjects = _check_n_subjects(n_subjects, len(ADHD_IDS))
    folder = dataset_dir("adhd", data_dir)
    metadata_rel = "7781/adhd40_metadata.tgz"
    (phenotypic_path,) = fetch_archive_members(
        resolve_url(NITRC_URL, metadata_rel, url), "adhd40_metadata.tgz",
        ["ADHD200_40subs_motion_parameters_and_phenotypics.csv"], folder,
        known_hash=_known_hash(metadata_rel), verbose=verbose,
    )
    phenotypic = pd.read_csv(phenotypic_path)
    phenotypic["Subject"] = phenotypic["Subject"].apply(lambda subject: f"{int(subject):07d}")
    ids = ADHD_IDS[:n_subjects]
    phenotypic = phenotypic[phenotypic["Subject"].isin(ids)]

    funcs, confounds = [], []
    for subject, nitrc_id in zip(ids, _ADHD_NITRC_IDS):
        relative = f"{nitrc_id}/adhd40_{subject}.tgz"
        func, regressors = fetch_archive_members(
            resolve_url(NITRC_URL, relative, url), f"adhd40_{subject}.tgz",
            [
                f"data/{subject}/{subject}_rest_tshift_RPI_voreg_mni.nii.gz",
                f"data/{subject}/{subject}_regressors.csv",
            ],
            folder, known_hash=_known_hash(relative), verbose=verbose,
        )
        funcs.append(str(func))
        confounds.append(str(regressors))
    return Bunch(
        func=funcs,
        confounds=confounds,
        phenotypic=phenotypic,
        description=_DESCRIPTIONS["adhd"],
        t_r=2.0,
    )


# ------------------------------------------------------------------------ MSDL


def fetch_atlas_msdl(data_dir=None, url=None, resume=True, verbose=1):
    """Fetch the MSDL probabilistic atlas (nilearn-compatible).

    Parameters
    ----------
    data_dir : str or pathlib.Path, optional
    url : str, optional
        Base URL replacing ``https://team.inria.fr/parietal/files/2015/01/``.
    resume : bool, default=True
    verbose : int, default=1

    Returns
    -------
    sklearn.utils.Bunch
        ``maps`` (path of the 4D image), ``labels`` (39 names),
        ``region_coords`` (list of ``[x, y, z]``), ``networks``,
        ``description``, ``atlas_type`` ("probabilistic"), ``template``.
    """
    relative = "MSDL_rois.zip"
    labels_path, maps_path = fetch_archive_members(
        resolve_url(INRIA_URL, relative, url), "MSDL_rois.zip",
        ["MSDL_rois/msdl_rois_labels.csv", "MSDL_rois/msdl_rois.nii"],
        dataset_dir("msdl_atlas", data_dir), known_hash=_known_hash(relative), verbose=verbose,
    )
    table = pd.read_csv(labels_path)
    return Bunch(
        maps=str(maps_path),
        labels=[name.strip() for name in table["name"]],
        description=_DESCRIPTIONS["msdl_atlas"],
        atlas_type="probabilistic",
        template="MNI?",
        region_coords=table[["x", "y", "z"]].to_numpy().tolist(),
        networks=[name.strip() for name in table["net name"]],
    )


# -------------------------------------------------------------- Harvard-Oxford


def _symmetric_split(data, names):
    """nilearn's split of every region crossing the midline into Left/Right parts."""
    labels = np.unique(data)
    middle = data.shape[0] // 2
    left, right = data.copy(), data.copy()
    left[middle:] = 0
    right[:middle] = 0
    new = data.copy()
    new_names = [names[0]]
    new_label = 0
    for label, name in zip(labels[1:], names[1:]):
        new_label += 1
        n_left, n_right = (left == label).sum(), (right == label).sum()
        total = float(n_left + n_right)
        if n_left / total < 0.05 or n_right / total < 0.05:
            new[data == label] = new_label
            new_names.append(name)
            continue
        new[left == label] = new_label
        new_names.append(f"Left {name}")
        new_label += 1
        new[right == label] = new_label
        new_names.append(f"Right {name}")
    return new, new_names


def fetch_atlas_harvard_oxford(
    atlas_name, data_dir=None, symmetric_split=False, resume=True, verbose=1, url=None
):
    """Fetch a Harvard-Oxford atlas of FSL (nilearn-compatible).

    Parameters
    ----------
    atlas_name : str
        ``"{cort,cortl,sub}-{maxprob-thr0,maxprob-thr25,maxprob-thr50,prob}-{1mm,2mm}"``,
        e.g. ``"cort-maxprob-thr25-2mm"``.
    data_dir : str or pathlib.Path, optional
    symmetric_split : bool, default=False
        Split regions crossing the midline into left and right parts
        (maximum-probability atlases only).
    resume : bool, default=True
    verbose : int, default=1
    url : str, optional
        Base URL replacing ``https://www.nitrc.org/frs/download.php/``.

    Returns
    -------
    sklearn.utils.Bunch
        ``maps`` (Nifti1Image, reoriented to a positive-diagonal affine),
        ``labels`` ("Background" first), ``filename``, ``lut`` (DataFrame
        ``index, name``; deterministic atlases), ``description``,
        ``atlas_type``, ``template`` ("MNI152NLin6Asym").
    """
    if atlas_name not in _HARVARD_OXFORD_ATLASES:
        raise ValueError(
            f"atlas_name must be one of {', '.join(_HARVARD_OXFORD_ATLASES)}; got {atlas_name!r}"
        )
    atlas_type = "probabilistic" if "-prob-" in atlas_name else "deterministic"
    if atlas_type == "probabilistic" and symmetric_split:
        raise ValueError("Region splitting not supported for probabilistic atlases")
    if symmetric_split:
        atlas_name = atlas_name.replace("cort-max", "cortl-max")
    if atlas_name.startswith("sub-"):
        label_file, lateralized = "HarvardOxford-Subcortical.xml", False
    elif atlas_name.startswith("cortl"):
        label_file, lateralized = "HarvardOxford-Cortical-Lateralized.xml", True
    else:
        label_file, lateralized = "HarvardOxford-Cortical.xml", False

    relative = "9902/HarvardOxford.tgz"
    members = [
        f"data/atlases/HarvardOxford/HarvardOxford-{atlas_name}.nii.gz",
        f"data/atlases/{label_file}",
    ]
    atlas_path, labels_path = fetch_archive_members(
        resolve_url(NITRC_URL, relative, url), "HarvardOxford.tgz", members,
        dataset_dir("fsl", data_dir), known_hash=_known_hash(relative), verbose=verbose,
    )
    names = {0: "Background"}
    entries = ElementTree.parse(labels_path).findall(".//label")
    for entry in entries:
        index = int(entry.get("index")) + 1
        if index in names:
            raise ValueError(f"{labels_path}: duplicate index {index} ({names[index]!r}, {entry.text!r})")
        names[index] = entry.text.replace("Ventrical", "Ventricle").replace("Operculum", "Opercular").strip()
    if sorted(names) != list(range(len(entries) + 1)):
        raise ValueError(f"{labels_path}: label indices are not 0..{len(entries)}")
    names = [names[index] for index in sorted(names)]

    img = nib.as_closest_canonical(nib.load(atlas_path))
    if symmetric_split and not lateralized:
        data, names = _symmetric_split(np.asarray(img.dataobj), names)
        img = nib.Nifti1Image(data, img.affine, img.header)
    bunch = Bunch(
        maps=img,
        labels=names,
        description=_DESCRIPTIONS["harvard_oxford"],
        atlas_type=atlas_type,
        filename=str(atlas_path),
        template="MNI152NLin6Asym",
    )
    if atlas_type == "deterministic":
        bunch.lut = pd.DataFrame({"index": np.arange(len(names)), "name": names})
    return bunch


# ------------------------------------------------------------- seed coordinates


def fetch_coords_power_2011(legacy_format=False):
    """The 264 seeds of Power et al. (2011), nilearn-compatible.

    Parameters
    ----------
    legacy_format : bool, default=False
        Accepted for older nilearn code; only the DataFrame format exists.

    Returns
    -------
    sklearn.utils.Bunch
        ``rois``: DataFrame ``roi, x, y, z`` (mm); ``description``.
    """
    if legacy_format:
        raise ValueError("legacy_format=True (record arrays) is not supported; use the DataFrame")
    rois = _package_table("power_2011.csv")
    rois = rois.rename(columns={column: column.lower() for column in rois.columns})
    return Bunch(rois=rois, description=_DESCRIPTIONS["power_2011"])


def fetch_coords_dosenbach_2010(ordered_regions=True, legacy_format=False):
    """The 160 seeds of Dosenbach et al. (2010), nilearn-compatible.

    Parameters
    ----------
    ordered_regions : bool, default=True
        Sort by network, name and y.
    legacy_format : bool, default=False
        Accepted for older nilearn code; only the DataFrame format exists.

    Returns
    -------
    sklearn.utils.Bunch
        ``rois`` (DataFrame ``x, y, z``), ``labels`` ("name number"),
        ``networks`` (Series), ``description``.
    """
    if legacy_format:
        raise ValueError("legacy_format=True (record arrays) is not supported; use the DataFrame")
    table = _package_table("dosenbach_2010.csv")
    if ordered_regions:
        table = table.sort_values(by=["network", "name", "y"])
    labels = [f"{name} {number}" for name, number in zip(table["name"], table["number"])]
    return Bunch(
        rois=table[["x", "y", "z"]],
        labels=labels,
        networks=table["network"],
        description=_DESCRIPTIONS["dosenbach_2010"],
    )


# ---------------------------------------------------------------- parcellations

GITHUB_RAW_URL = "https://raw.githubusercontent.com/"
SCHAEFER_PATH = ("ThomasYeoLab/CBIG/v0.14.3-Update_Yeo2011_Schaefer2018_labelname/stable_projects/"
                 "brain_parcellation/Schaefer2018_LocalGlobal/Parcellations/MNI/")
DIFUMO_OSF_IDS = {64: "pqu9r", 128: "wjvd5", 256: "3vrct", 512: "9b76y", 1024: "34792"}
FREESURFER_FTP_URL = "ftp://surfer.nmr.mgh.harvard.edu/"
YEO_PATH = "pub/data/Yeo_JNeurophysiol11_MNI152.zip"
GIN_URL = "https://www.gin.cnrs.fr/"
AAL_BACKUP_OSF_IDS = {"3v2": "6jngh", "SPM12": "s94qg", "SPM8": "rkpeh", "SPM5": "948y2"}
FIGSHARE_URL = "https://ndownloader.figshare.com/files/"
BASC_RESOLUTIONS = (7, 12, 20, 36, 64, 122, 197, 325, 444)

_DESCRIPTIONS.update({
    "schaefer_2018": "Schaefer et al. (2018) local-global cortical parcellations, 100 to 1000 parcels in the 7 or 17 "
                     "networks of Yeo et al. (2011), in FSL's MNI152 space (Cereb Cortex 28:3095).",
    "difumo_atlases": "DiFuMo: dictionaries of functional modes (Dadi et al. 2020, NeuroImage 221:117126), 64 to 1024 "
                      "probabilistic components learned on 2192 task and rest fMRI sessions.",
    "yeo_2011": "Yeo et al. (2011) 7 and 17 resting-state networks (J Neurophysiol 106:1125), thin and thick (liberal) "
                "masks, in FreeSurfer-conformed MNI152 space.",
    "aal": "AAL: automated anatomical labelling (Tzourio-Mazoyer et al. 2002; AAL3, Rolls et al. 2020), SPM 12 version.",
    "basc_multiscale_2015": "BASC multiscale functional parcellations of the Cambridge sample (Bellec et al. 2010; "
                            "Urchs et al. 2019), 7 to 444 parcels, symmetric or asymmetric.",
})


def _check_choice(value, allowed, name):
    if value not in allowed:
        raise ValueError(f"{name} must be one of {list(allowed)}, got {value!r}")


def _hex_colour(red, green, blue) -> list[str]:
    return [f"#{int(r):02x}{int(g):02x}{int(b):02x}" for r, g, b in zip(red, green, blue)]


def _freesurfer_lut(lut: pd.DataFrame) -> pd.DataFrame:
    """nilearn's FreeSurfer-style table: a Background row first, ``r, g, b`` as a hex ``color``."""
    lut = pd.concat([pd.DataFrame([[0, "Background", 0, 0, 0, 0]], columns=lut.columns), lut], ignore_index=True)
    lut["color"] = _hex_colour(lut["r"], lut["g"], lut["b"])
    return lut.drop(columns=["r", "g", "b", "fs"])


def fetch_atlas_schaefer_2018(n_rois=400, yeo_networks=7, resolution_mm=1, data_dir=None, base_url=None,
                              resume=True, verbose=1):
    """Fetch a Schaefer 2018 cortical parcellation (nilearn-compatible).

    Parameters
    ----------
    n_rois : {100, 200, ..., 1000}, default=400
    yeo_networks : {7, 17}, default=7
    resolution_mm : {1, 2}, default=1
    data_dir : str or pathlib.Path, optional
    base_url : str, optional
        Folder URL replacing the CBIG repository's (a mirror with its file names).
    resume : bool, default=True
    verbose : int, default=1

    Returns
    -------
    sklearn.utils.Bunch
        ``maps`` (path), ``labels`` ("Background" first), ``lut``
        (DataFrame ``index, name, color``), ``description``,
        ``atlas_type`` ("deterministic"), ``template`` ("MNI152NLin6Asym").
    """
    _check_choice(n_rois, range(100, 1100, 100), "n_rois")
    _check_choice(yeo_networks, (7, 17), "yeo_networks")
    _check_choice(resolution_mm, (1, 2), "resolution_mm")
    folder = dataset_dir("schaefer_2018", data_dir)
    base = base_url or resolve_url(GITHUB_RAW_URL, SCHAEFER_PATH)
    names = (f"Schaefer2018_{n_rois}Parcels_{yeo_networks}Networks_order.txt",
             f"Schaefer2018_{n_rois}Parcels_{yeo_networks}Networks_order_FSLMNI152_{resolution_mm}mm.nii.gz")
    labels_file, atlas_file = (
        download(base.rstrip("/") + "/" + name, folder / name, known_hash=_known_hash(name), verbose=verbose)
        for name in names
    )
    lut = pd.read_csv(labels_file, delimiter="\t", names=["index", "name", "r", "g", "b", "fs"])
    lut = _freesurfer_lut(lut)
    return Bunch(maps=str(atlas_file), labels=list(lut["name"]), description=_DESCRIPTIONS["schaefer_2018"], lut=lut,
                 atlas_type="deterministic", template="MNI152NLin6Asym")


def fetch_atlas_difumo(dimension=64, resolution_mm=2, data_dir=None, resume=True, verbose=1, url=None):
    """Fetch a DiFuMo probabilistic atlas (nilearn-compatible).

    Parameters
    ----------
    dimension : {64, 128, 256, 512, 1024}, default=64
    resolution_mm : {2, 3}, default=2
    data_dir : str or pathlib.Path, optional
    resume : bool, default=True
    verbose : int, default=1
    url : str, optional
        Base URL replacing ``https://osf.io/`` (brainxr's addition, for mirrors).

    Returns
    -------
    sklearn.utils.Bunch
        ``maps`` (path of the 4D image), ``labels`` (DataFrame of the
        components: ``component, difumo_names, yeo_networks7, ...``, lower
        case), ``description``, ``atlas_type`` ("probabilistic"),
        ``template`` ("MNI152NLin6Asym").
    """
    _check_choice(dimension, tuple(DIFUMO_OSF_IDS), "dimension")
    _check_choice(resolution_mm, (2, 3), "resolution_mm")
    folder = dataset_dir("difumo_atlases", data_dir)
    relative = f"{DIFUMO_OSF_IDS[dimension]}/download"
    labels_file, maps_file = fetch_archive_members(
        resolve_url(OSF_URL, relative, url), f"difumo_{dimension}.zip",
        [f"{dimension}/labels_{dimension}_dictionary.csv", f"{dimension}/{resolution_mm}mm/maps.nii.gz"],
        folder, known_hash=_known_hash(relative), verbose=verbose,
    )
    if not (folder / "README.md").exists():
        download(resolve_url(OSF_URL, "4k9bf/download", url), folder / "README.md",
                 known_hash=_known_hash("4k9bf/download"), verbose=verbose)
    labels = pd.read_csv(labels_file)
    labels = labels.rename(columns={column: column.lower() for column in labels.columns})
    return Bunch(maps=str(maps_file), labels=labels, description=_DESCRIPTIONS["difumo_atlases"],
                 atlas_type="probabilistic", template="MNI152NLin6Asym")


def fetch_atlas_yeo_2011(data_dir=None, url=None, resume=True, verbose=1, n_networks=7, thickness="thick"):
    """Fetch the Yeo 2011 resting-state networks (nilearn-compatible).

    Parameters
    ----------
    data_dir : str or pathlib.Path, optional
    url : str, optional
        URL of ``Yeo_JNeurophysiol11_MNI152.zip`` (default: FreeSurfer's FTP server).
    resume : bool, default=True
    verbose : int, default=1
    n_networks : {7, 17}, default=7
    thickness : {"thin", "thick"}, default="thick"

    Returns
    -------
    sklearn.utils.Bunch
        ``maps`` (path), ``labels`` ("Background" first), ``lut``
        (``index, name, color``), ``description``, ``atlas_type``
        ("deterministic"), ``template`` ("MNI152NLin6Asym"), ``anat`` (the
        FreeSurfer-conformed MNI152 T1 path).
    """
    _check_choice(n_networks, (7, 17), "n_networks")
    _check_choice(thickness, ("thin", "thick"), "thickness")
    keys = ("thin_7", "thick_7", "thin_17", "thick_17", "colors_7", "colors_17", "anat")
    basenames = (
        "Yeo2011_7Networks_MNI152_FreeSurferConformed1mm.nii.gz",
        "Yeo2011_7Networks_MNI152_FreeSurferConformed1mm_LiberalMask.nii.gz",
        "Yeo2011_17Networks_MNI152_FreeSurferConformed1mm.nii.gz",
        "Yeo2011_17Networks_MNI152_FreeSurferConformed1mm_LiberalMask.nii.gz",
        "Yeo2011_7Networks_ColorLUT.txt",
        "Yeo2011_17Networks_ColorLUT.txt",
        "FSL_MNI152_FreeSurferConformed_1mm.nii.gz",
    )
    files = fetch_archive_members(
        url or resolve_url(FREESURFER_FTP_URL, YEO_PATH), "Yeo_JNeurophysiol11_MNI152.zip", [f"Yeo_JNeurophysiol11_MNI152/{name}" for name in basenames],
        dataset_dir("yeo_2011", data_dir), known_hash=_known_hash("Yeo_JNeurophysiol11_MNI152.zip"), verbose=verbose,
    )
    paths = dict(zip(keys, map(str, files)))
    lut = pd.read_csv(paths[f"colors_{n_networks}"], sep=r"\s+", names=["index", "name", "r", "g", "b", "fs"],
                      header=0)
    lut = _freesurfer_lut(lut)
    return Bunch(maps=paths[f"{thickness}_{n_networks}"], labels=lut["name"].to_list(),
                 description=_DESCRIPTIONS["yeo_2011"], template="MNI152NLin6Asym", lut=lut,
                 atlas_type="deterministic", anat=paths["anat"])


def _aal_files(version, url):
    """(archive URL, archive name, members) of an AAL version on the GIN server (or at ``url``)."""
    if version == "SPM12":
        return (url or resolve_url(GIN_URL, "AAL_files/aal_for_SPM12.tar.gz"), "aal_for_SPM12.tar.gz",
                ["aal/atlas/AAL.nii", "aal/atlas/AAL.xml"])
    if version == "3v2":
        return (url or resolve_url(GIN_URL, "wp-content/uploads/AAL3v2_for_SPM12.tar.gz"), "AAL3v2_for_SPM12.tar.gz",
                ["AAL3/AAL3v1.nii", "AAL3/AAL3v1.xml"])
    return (url or resolve_url(GIN_URL, f"wp-content/uploads/aal_for_{version}.zip"), f"aal_for_{version}.zip",
            [f"aal_for_{version}/ROI_MNI_V4.nii", f"aal_for_{version}/ROI_MNI_V4.txt"])


def fetch_atlas_aal(version="3v2", data_dir=None, url=None, resume=True, verbose=1):
    """Fetch the AAL atlas (nilearn-compatible).

    Parameters
    ----------
    version : {"3v2", "SPM12", "SPM5", "SPM8"}, default="3v2"
    data_dir : str or pathlib.Path, optional
    url : str, optional
        URL of the version's archive (default: the GIN server; its OSF copy
        if the server cannot be reached, as nilearn).
    resume : bool, default=True
    verbose : int, default=1

    Returns
    -------
    sklearn.utils.Bunch
        ``maps`` (path), ``labels`` ("Background" first), ``indices`` (the
        label values as strings, "0" first), ``lut`` (``index, name``),
        ``description``, ``atlas_type`` ("deterministic"), ``template``
        ("MNIColin27").
    """
    _check_choice(version, ("SPM5", "SPM8", "SPM12", "3v2"), "version")
    folder = dataset_dir(f"aal_{version}", data_dir)
    archive_url, archive_name, members = _aal_files(version, url)
    try:
        atlas_img, labels_file = fetch_archive_members(archive_url, archive_name, members, folder,
                                                       known_hash=_known_hash(archive_name), verbose=verbose)
    except DownloadError:
        if url is not None:
            raise
        backup = resolve_url(OSF_URL, f"{AAL_BACKUP_OSF_IDS[version]}/download")
        atlas_img, labels_file = fetch_archive_members(backup, archive_name, members, folder,
                                                       known_hash=_known_hash(archive_name), verbose=verbose)
    description = _DESCRIPTIONS["aal"]
    labels, indices = ["Background"], ["0"]
    if version in ("SPM12", "3v2"):
        for label in ElementTree.parse(labels_file).getroot().iter("label"):
            index, name = label.find("index"), label.find("name")
            if index is None or name is None or index.text is None or name.text is None:
                continue
            indices.append(index.text)
            labels.append(name.text)
    else:
        for line in Path(labels_file).read_text().splitlines():
            if line.strip():
                _, name, index = line.strip().split("\t")
                indices.append(index)
                labels.append(name)
        description = description.replace("SPM 12", version)
    lut = pd.DataFrame({"index": [int(index) for index in indices], "name": labels})
    return Bunch(maps=str(atlas_img), labels=labels, description=description, lut=lut, atlas_type="deterministic",
                 template="MNIColin27", indices=indices)


def fetch_atlas_basc_multiscale_2015(data_dir=None, url=None, resume=True, verbose=1, resolution=7, version="sym"):
    """Fetch a BASC multiscale parcellation of the Cambridge sample (nilearn-compatible).

    Parameters
    ----------
    data_dir : str or pathlib.Path, optional
    url : str, optional
        URL of the version's zip archive (default: figshare).
    resume : bool, default=True
    verbose : int, default=1
    resolution : {7, 12, 20, 36, 64, 122, 197, 325, 444}, default=7
    version : {"sym", "asym"}, default="sym"

    Returns
    -------
    sklearn.utils.Bunch
        ``maps`` (path), ``labels`` ("Background", "1", ...), ``lut``
        (``index, name``), ``description``, ``atlas_type``
        ("deterministic"), ``template`` ("MNI152sym" or "MNI152asym").
    """
    _check_choice(version, ("sym", "asym"), "version")
    if resolution not in BASC_RESOLUTIONS:
        raise ValueError(f"Requested resolution={resolution} not available. Valid options: {set(BASC_RESOLUTIONS)}")
    file_number = "1861819" if version == "sym" else "1861820"
    folder_name = f"template_cambridge_basc_multiscale_nii_{version}"
    basename = f"template_cambridge_basc_multiscale_{version}_scale{resolution:03}.nii.gz"
    (maps,) = fetch_archive_members(
        url or resolve_url(FIGSHARE_URL, file_number), f"basc_multiscale_2015_{version}.zip",
        [f"{folder_name}/{basename}"], dataset_dir("basc_multiscale_2015", data_dir),
        known_hash=_known_hash(file_number), verbose=verbose,
    )
    labels = ["Background"] + [str(x) for x in range(1, resolution + 1)]
    lut = pd.DataFrame({"index": [0.0 if name == "Background" else float(name) for name in labels], "name": labels})
    return Bunch(maps=str(maps), labels=labels, description=_DESCRIPTIONS["basc_multiscale_2015"], lut=lut,
                 atlas_type="deterministic", template=f"MNI152{version}")
