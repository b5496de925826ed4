"""Finding and reading the fMRIPrep (and tedana) confounds files of an image.

The rules are nilearn 0.14's: the confounds TSV sits next to the image and
shares a subset of its BIDS entities with ``desc-confounds`` and the suffix
``_timeseries.tsv`` (fMRIPrep >= 20.2) or ``_regressors.tsv``; the longest
matching name wins and two matches are an error. The JSON sidecar has the
same name with ``.json``.
"""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import pandas as pd

from brainxr.errors import InputFileError

# what a valid image name must contain, per kind of input
IMAGE_PATTERNS = {
    "aroma": "_desc-smoothAROMAnonaggr_bold",
    "nii.gz": "(_space-.*)?_desc-preproc_bold.nii.gz",
    "dtseries.nii": "(_space-.*)?_bold.dtseries.nii",
    "tedana": "_desc-optcom_bold.nii.gz",
    "func.gii": "_hemi-[LR](_space-.*)?_bold.func.gii",
}

IMAGE_ERRORS = {
    "aroma": "Input must be desc-smoothAROMAnonaggr_bold for full ICA-AROMA strategy.",
    "nii.gz": "Invalid file type for the selected 'nii.gz' method.",
    "dtseries.nii": "Invalid file type for the selected 'dtseries.nii' method",
    "tedana": "Input must be the ~desc-optcom_bold.nii.gz file for tedana strategy. Other files like "
    "~desc-denoised_bold.nii.gz are not supported or have already been denoised.",
    "func.gii": "need fMRIprep output with extension func.gii",
}


def bids_entities(path) -> dict[str, str | None]:
    """The ``key-value`` entities of a BIDS file name, in file-name order."""
    parts = Path(path).name.split("_")
    entities = {}
    for part in parts[:-1]:
        key, _, label = part.partition("-")
        entities[key] = label if "-" in part else None
    return entities


def is_gifti_pair(img_files) -> bool:
    """True for a ``[left, right]`` pair of ``.func.gii`` paths (one image)."""
    if not isinstance(img_files, (list, tuple)) or len(img_files) != 2:
        return False
    return all(isinstance(f, (str, Path)) and str(f).endswith("func.gii") for f in img_files)


def as_image_list(img_files) -> tuple[list, bool]:
    """Normalise ``img_files`` to a list of images; True if one image was given."""
    if isinstance(img_files, (str, Path)):
        return [str(img_files)], True
    if is_gifti_pair(img_files):
        return [[str(f) for f in img_files]], True
    if isinstance(img_files, (list, tuple)):
        if len(img_files) == 0:
            raise ValueError("img_files is empty: give the path of at least one fMRIPrep image")
        images = [[str(f) for f in img] if isinstance(img, (list, tuple)) else str(img) for img in img_files]
        return images, len(images) == 1
    raise ValueError(f"img_files must be a path or a list of paths, got {type(img_files).__name__}")


def check_image_name(image, full_aroma: bool, tedana: bool) -> None:
    """Raise if the image is not an fMRIPrep output the strategy can use."""
    if isinstance(image, list):
        kind, names = "func.gii", image
    elif full_aroma:
        kind, names = "aroma", [image]
    elif tedana:
        kind, names = "tedana", [image]
    else:
        kind, names = ".".join(image.split(".")[-2:]), [image]
    if kind not in IMAGE_PATTERNS:
        raise InputFileError(image, "Unsupported input: expected a .nii.gz, .dtseries.nii or .func.gii fMRIPrep output")
    if not all(re.search(IMAGE_PATTERNS[kind], name) for name in names):
        raise InputFileError(names[0], IMAGE_ERRORS[kind])


def _candidate_names(image: str, descs: list[str], suffixes: list[str]) -> list[str]:
    entities = bids_entities(image)
    names = []
    for desc in descs:
        variant = dict(entities, desc=desc)
        subsets = {
            subset for n in range(1, len(variant) + 1) for subset in itertools.combinations(variant, n) if "desc" in subset
        }
        stems = ["_".join(f"{key}-{variant[key]}" for key in subset) for subset in subsets]
        names.extend(stem + suffix for suffix in suffixes for stem in stems)
    # longer names keep more of the image's entities: they come first
    return sorted(names, key=len, reverse=True)


def find_confounds_file(image, tedana: bool = False):
    """The confounds TSV of an image (for tedana: its mixing and metrics TSVs).

    Raises
    ------
    InputFileError
        No confounds file, or more than one.
    """
    image_path = image[0] if isinstance(image, list) else image
    folder = Path(image_path).parent
    if tedana:
        candidates = _candidate_names(image_path, ["ICA", "tedana"], ["_mixing.tsv", "_metrics.tsv"])
    else:
        candidates = _candidate_names(image_path, ["confounds"], ["_timeseries.tsv", "_regressors.tsv"])
    found = [str(folder / name) for name in candidates if (folder / name).is_file()]
    if not found:
        raise InputFileError(
            image_path,
            "Could not find associated confound file. The functional derivatives should exist under "
            "the same parent directory.",
        )
    if tedana:
        if len(found) != 2:
            listing = "\n\t".join(found)
            raise InputFileError(
                image_path,
                f"Found {len(found)} confound files (expected 2 for TEDANA):\n\t{listing}\n\nTEDANA should "
                "produce exactly two confound files:\n- mixing.tsv\n- table_status.tsv",
            )
        return found
    if len(found) > 1:
        listing = "\n\t".join(found)
        raise InputFileError(image_path, f"Found more than one confound file:\n\t{listing}")
    return found[0]


def _is_camel_case(name: str) -> bool:
    return name != name.lower() and name != name.upper() and "_" not in name


def read_confounds_table(path) -> pd.DataFrame:
    """Read an fMRIPrep confounds TSV (n/a as NaN), rejecting fMRIPrep < 1.2 files."""
    table = pd.read_csv(path, delimiter="\t", encoding="utf-8")
    if any(_is_camel_case(str(column)) for column in table.columns):
        raise InputFileError(
            path,
            "The confound file contains header in camel case. This is likely the output from 1.0.x "
            f"and 1.1.x series. We only support fmriprep outputs >= 1.2.0.{table.columns}",
        )
    try:
        float(table.columns[0])
    except ValueError:
        return table
    raise InputFileError(path, "The confound file contains no header. Is this an old version fMRIprep output?")


def read_tedana_tables(paths: list[str]) -> dict[str, pd.DataFrame]:
    """Read tedana's ``mixing`` and ``metrics`` tables."""
    tables = {
        kind: pd.read_csv(next(path for path in paths if kind in Path(path).name), delimiter="\t", encoding="utf-8")
        for kind in ("mixing", "metrics")
    }
    if not (
        any(str(column).startswith("ICA_") for table in tables.values() for column in table.columns)
        or any("Component" in table.columns for table in tables.values())
    ):
        raise InputFileError(
            paths[0],
            "The confound file does not contain the expected columns for TEDANA output. Expected "
            "'ICA_xx' for mixing.tsv and 'Component' for the metrics.tsv columns.",
        )
    return tables


def sidecar_path(confounds_file) -> Path:
    """The JSON sidecar of a confounds TSV."""
    return Path(confounds_file).with_suffix(".json")


def read_confounds_metadata(path) -> dict | None:
    """The confounds JSON as a dict, or None if there is no such file."""
    path = Path(path)
    if not path.is_file():
        return None
    with path.open("rb") as file:
        return json.load(file)
