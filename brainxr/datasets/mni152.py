"""The real MNI152 templates, through TemplateFlow, processed as nilearn processes its own.

nilearn's default MNI152 is the ICBM 2009a nonlinear symmetric template
(TemplateFlow's ``MNI152NLin2009aSym``): a skull-stripped T1 image and gray /
white matter probability maps at 1 mm. :func:`load_mni152_template` and its
siblings read those files from TemplateFlow (its client and cache,
``$TEMPLATEFLOW_HOME``; :func:`brainxr.datasets.get_template`) and apply
nilearn 0.14.1's steps: float32, scaled to a maximum of 1, resampled to the
asked resolution over the template's bounding box (cubic), thresholded for
masks. With the same files the results are nilearn's exactly. fMRIPrep's
``MNI152NLin2009cAsym`` (or any TemplateFlow template with these files) is
one argument away: ``template="MNI152NLin2009cAsym"``.

Offline without a populated cache, the synthetic MNI152-like brain of
:mod:`brainxr.datasets.template` stands in, with a warning that says so: its
masks cannot match nilearn's.
"""

from __future__ import annotations

import functools
import os
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

#: nilearn's MNI152 (ICBM 2009a nonlinear symmetric)
DEFAULT_TEMPLATE = "MNI152NLin2009aSym"

# TemplateFlow queries of each image (at res-1)
_FILES = {
    "T1w": {"suffix": "T1w", "desc": None},
    "brain_mask": {"suffix": "mask", "desc": "brain"},
    "gm": {"suffix": "probseg", "desc": None, "label": "GM"},
    "wm": {"suffix": "probseg", "desc": None, "label": "WM"},
}


class TemplateFallbackWarning(UserWarning):
    """The real template could not be had: the synthetic MNI152-like brain stands in."""


def _check_resolution(resolution) -> float:
    resolution = 1 if resolution is None else resolution
    if isinstance(resolution, bool) or not isinstance(resolution, (int, float, np.integer, np.floating)) or resolution <= 0:
        raise ValueError(f"resolution must be a positive number of millimetres, got {resolution!r}")
    return float(resolution)


def _cached_file(template: str, kind: str) -> Path | None:
    """The file in TemplateFlow's cache, found by its TemplateFlow name (no client: its index takes seconds)."""
    root = Path(os.environ.get("TEMPLATEFLOW_HOME") or Path.home() / ".cache" / "templateflow")
    query = _FILES[kind]
    parts = [f"tpl-{template}", "res-{res}"]
    parts += [f"label-{query['label']}"] if "label" in query else []
    parts += [f"desc-{query['desc']}"] if query["desc"] else []
    pattern = "_".join(parts) + f"_{query['suffix']}.nii.gz"
    for res in ("1", "01"):
        path = root / f"tpl-{template}" / pattern.format(res=res)
        if path.is_file() and path.stat().st_size > 0:
            return path
    return None


def _templateflow_file(template: str, kind: str) -> Path:
    """The 1 mm file from TemplateFlow's cache, or through its client (which downloads what is missing)."""
    cached = _cached_file(template, kind)
    if cached is not None:
        return cached
    from brainxr.datasets._templateflow_client import get_template

    return get_template(template, resolution=1, **_FILES[kind])


@functools.lru_cache(maxsize=16)
def _scaled_1mm(template: str, kind: str) -> nib.Nifti1Image | None:
    """The 1 mm image of ``kind`` as nilearn prepares it (float32, maximum 1), or None offline."""
    try:
        path = _templateflow_file(template, kind)
        image = nib.load(path)
        data = np.asanyarray(image.dataobj).astype(np.float32)
        if kind == "T1w":
            # nilearn's T1 is skull-stripped: keep the template's brain
            mask = np.asanyarray(nib.load(_templateflow_file(template, "brain_mask")).dataobj) > 0
            data[~mask] = 0
    except Exception as error:  # no cache and no network: TemplateFlowError, OSError, the client's errors
        warnings.warn(
            f"The MNI152 template {template} ({kind}) is not available from TemplateFlow ({error}); using brainxr's "
            "synthetic MNI152-like brain instead, whose masks and figures differ from nilearn's. Set "
            "TEMPLATEFLOW_HOME to a TemplateFlow cache that holds it (or let the templateflow client download it).",
            TemplateFallbackWarning,
            stacklevel=4,
        )
        return None
    data /= data.max()
    data.setflags(write=False)
    header = image.header.copy()
    header.set_data_dtype(np.float32)
    return nib.Nifti1Image(data, image.affine, header=header)


def _on_resolution(image: nib.Nifti1Image, resolution: float) -> nib.Nifti1Image:
    """nilearn's ``resample_img(image, np.eye(3) * resolution)``: the bounding box at ``resolution`` mm, cubic."""
    if resolution == 1 and np.allclose(np.abs(np.diag(image.affine)[:3]), 1):
        return image
    from brainxr.image import resample_img
    from brainxr.nifti import from_nibabel

    target = np.eye(4)
    target[:3, :3] *= resolution
    transform = np.linalg.inv(target) @ image.affine
    corners = np.array([[i, j, k, 1] for i in (0, image.shape[0] - 1) for j in (0, image.shape[1] - 1)
                        for k in (0, image.shape[2] - 1)], dtype=float).T
    box = (transform @ corners)[:3]
    low, high = box.min(axis=1), box.max(axis=1)
    target[:3, 3] = target[:3, :3] @ low
    shape = tuple(int(np.ceil(extent)) + 1 for extent in high - low)
    resampled = resample_img(from_nibabel(image), target, shape, interpolation="continuous")
    return nib.Nifti1Image(np.asarray(resampled.values, dtype=np.float32), target)


@functools.lru_cache(maxsize=16)
def _template_image(template: str, kind: str, resolution: float) -> nib.Nifti1Image:
    """The prepared image, from brainxr's cache of resampled templates when there (a cubic resampling of the
    1 mm template takes seconds; the cache makes every later process read it in milliseconds)."""
    try:
        source = _templateflow_file(template, kind)
    except Exception:  # no cache and no network: the warning comes from _scaled_1mm
        source = None
    cached = None if source is None or resolution == 1 else _derived_path(source, kind, resolution)
    if cached is not None and cached.is_file():
        image = nib.load(cached)
        return nib.Nifti1Image(np.asanyarray(image.dataobj), image.affine, header=image.header)
    scaled = _scaled_1mm(template, kind)
    if scaled is None:
        return _synthetic(kind, resolution)
    image = _on_resolution(scaled, resolution)
    if cached is not None:
        _write_atomically(image, cached)
    return image


def _derived_path(source: Path, kind: str, resolution: float) -> Path:
    """Where the template prepared at ``resolution`` is kept: named by its source file's size and mtime."""
    from brainxr.datasets._download import get_data_dir

    stat = source.stat()
    stem = source.name.split(".nii")[0]
    return get_data_dir() / "mni152" / f"{stem}_{kind}_{resolution:g}mm_{stat.st_size}_{int(stat.st_mtime)}.nii"


def _write_atomically(image: nib.Nifti1Image, path: Path) -> None:
    """Write the prepared template (float32) where later processes find it; a read-only home is no error."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{os.getpid()}.{path.name}")
        header = image.header.copy()
        header.set_data_dtype(np.float32)
        nib.save(nib.Nifti1Image(np.asanyarray(image.dataobj, dtype=np.float32), image.affine, header=header), partial)
        os.replace(partial, path)
    except OSError:  # a read-only data folder: the template is prepared again next time
        pass


def _synthetic(kind: str, resolution: float) -> nib.Nifti1Image:
    from brainxr.datasets import template as synthetic

    if kind == "T1w":
        image = synthetic.load_synthetic_mni152_template(resolution)
    elif kind == "brain_mask":
        image = synthetic.load_synthetic_mni152_brain_mask(resolution)
    else:
        image = synthetic.load_synthetic_mni152_tissue_maps(resolution)[kind]
    data = np.asanyarray(image.dataobj).astype(np.float32)
    return nib.Nifti1Image(data / data.max(), image.affine, header=image.header)


def _copy(image: nib.Nifti1Image) -> nib.Nifti1Image:
    return nib.Nifti1Image(np.array(image.dataobj), image.affine, header=image.header)


def load_mni152_template(resolution=None, template: str = DEFAULT_TEMPLATE) -> nib.Nifti1Image:
    """The skull-stripped MNI152 T1 template, scaled to [0, 1] (nilearn's ``load_mni152_template``).

    Parameters
    ----------
    resolution : float, default=1
        Voxel size in mm: the 1 mm template resampled (cubic) over its
        bounding box, as nilearn does (2 mm: shape ``(99, 117, 95)``).
    template : str, default="MNI152NLin2009aSym"
        TemplateFlow template: nilearn's (ICBM 2009a symmetric) by default,
        ``"MNI152NLin2009cAsym"`` for fMRIPrep's.

    Returns
    -------
    nibabel.Nifti1Image
        float32. Offline without the template in the TemplateFlow cache: the
        synthetic MNI152-like brain, with a :class:`TemplateFallbackWarning`.
    """
    return _copy(_template_image(template, "T1w", _check_resolution(resolution)))


def load_mni152_gm_template(resolution=None, template: str = DEFAULT_TEMPLATE) -> nib.Nifti1Image:
    """The gray-matter probability template, scaled to [0, 1] (nilearn's ``load_mni152_gm_template``).

    Parameters
    ----------
    resolution : float, default=1
        Voxel size in mm (see :func:`load_mni152_template`).
    template : str, default="MNI152NLin2009aSym"
        TemplateFlow template (see :func:`load_mni152_template`).
    """
    return _copy(_template_image(template, "gm", _check_resolution(resolution)))


def load_mni152_wm_template(resolution=None, template: str = DEFAULT_TEMPLATE) -> nib.Nifti1Image:
    """The white-matter probability template, scaled to [0, 1] (nilearn's ``load_mni152_wm_template``).

    Parameters
    ----------
    resolution : float, default=1
        Voxel size in mm (see :func:`load_mni152_template`).
    template : str, default="MNI152NLin2009aSym"
        TemplateFlow template (see :func:`load_mni152_template`).
    """
    return _copy(_template_image(template, "wm", _check_resolution(resolution)))


def _mask_like(image: nib.Nifti1Image, mask: np.ndarray) -> nib.Nifti1Image:
    header = image.header.copy()
    header.set_data_dtype(np.int8)
    return nib.Nifti1Image(mask.astype(np.int8), image.affine, header=header)


def _closed_mask(image: nib.Nifti1Image, threshold: float, n_iter: int) -> nib.Nifti1Image:
    """Voxels of ``image`` above ``threshold``, binary-closed ``n_iter`` times (nilearn's gm/wm masks)."""
    return _mask_like(image, ndimage.binary_closing(np.asanyarray(image.dataobj) > threshold, iterations=n_iter))


def load_mni152_brain_mask(resolution=None, threshold: float = 0.2, template: str = DEFAULT_TEMPLATE) -> nib.Nifti1Image:
    """The MNI152 brain mask: the template above ``threshold`` (nilearn's ``load_mni152_brain_mask``).

    Parameters
    ----------
    resolution : float, default=1
        Voxel size in mm (see :func:`load_mni152_template`).
    threshold : float
        Probability (or intensity) above which a voxel is in the mask.
    template : str, default="MNI152NLin2009aSym"
        TemplateFlow template (see :func:`load_mni152_template`).

    Returns
    -------
    nibabel.Nifti1Image
        int8, 1 in the brain.
    """
    image = load_mni152_template(resolution, template)
    return _mask_like(image, np.asanyarray(image.dataobj) > threshold)


def load_mni152_gm_mask(resolution=None, threshold: float = 0.2, n_iter: int = 2,
                        template: str = DEFAULT_TEMPLATE) -> nib.Nifti1Image:
    """Gray matter above ``threshold``, closed ``n_iter`` times (nilearn's ``load_mni152_gm_mask``).

    Parameters
    ----------
    resolution : float, default=1
        Voxel size in mm (see :func:`load_mni152_template`).
    threshold : float
        Probability (or intensity) above which a voxel is in the mask.
    n_iter : int
        Iterations of the binary closing.
    template : str, default="MNI152NLin2009aSym"
        TemplateFlow template (see :func:`load_mni152_template`).
    """
    image = load_mni152_gm_template(resolution, template)
    return _closed_mask(image, threshold, n_iter)


def load_mni152_wm_mask(resolution=None, threshold: float = 0.2, n_iter: int = 2,
                        template: str = DEFAULT_TEMPLATE) -> nib.Nifti1Image:
    """White matter above ``threshold``, closed ``n_iter`` times (nilearn's ``load_mni152_wm_mask``).

    Parameters
    ----------
    resolution : float, default=1
        Voxel size in mm (see :func:`load_mni152_template`).
    threshold : float
        Probability (or intensity) above which a voxel is in the mask.
    n_iter : int
        Iterations of the binary closing.
    template : str, default="MNI152NLin2009aSym"
        TemplateFlow template (see :func:`load_mni152_template`).
    """
    image = load_mni152_wm_template(resolution, template)
    return _closed_mask(image, threshold, n_iter)


def template_for_mask(mask_type: str, template: str = DEFAULT_TEMPLATE) -> nib.Nifti1Image:
    """The 1 mm image that ``compute_brain_mask(mask_type=...)`` resamples and thresholds (nilearn's choice)."""
    kinds = {"whole-brain": "T1w", "gm": "gm", "wm": "wm"}
    if mask_type not in kinds:
        raise ValueError(f"Unknown mask type {mask_type}. Only 'whole-brain', 'gm' or 'wm' are accepted.")
    return _template_image(template, kinds[mask_type], 1.0)


def clear_cache() -> None:
    """Forget the templates read so far (e.g. after changing ``$TEMPLATEFLOW_HOME``)."""
    _scaled_1mm.cache_clear()
    _template_image.cache_clear()
    from brainxr.datasets._templateflow_client import _default_client

    _default_client.cache_clear()


__all__ = [
    "DEFAULT_TEMPLATE",
    "TemplateFallbackWarning",
    "clear_cache",
    "load_mni152_brain_mask",
    "load_mni152_gm_mask",
    "load_mni152_gm_template",
    "load_mni152_template",
    "load_mni152_wm_mask",
    "load_mni152_wm_template",
]
