"""Region extraction: split continuous maps (ICA, dictionary learning) into connected regions.

nilearn's ``RegionExtractor``, ``connected_regions`` and
``connected_label_regions`` (0.14), with the same steps so that the regions
are equal to nilearn's:

1. threshold the maps: keep the ``threshold`` x n_voxels most intense voxels
   over all maps (``"ratio_n_voxels"``), voxels above a value
   (``"img_value"``) or above a percentile of the in-mask values
   (``"percentile"``);
2. split each thresholded map into regions: its connected components, or
   (``"local_regions"``) a random-walker segmentation seeded at the local
   maxima of the map smoothed by ``smoothing_fwhm``;
3. drop regions of ``min_region_size`` mm^3 or less; each kept region is
   one volume of ``regions_img_``, its map's index in ``index_``.

The random walker is nilearn's (its copy of scikit-image 0.11's, operation
for operation: where two seeds are nearly equally likely to reach a voxel,
the rounding of the solver decides, and scikit-image's current version,
which assembles the same system differently, labels a few such voxels
otherwise). :class:`RegionExtractor` is a
:class:`brainxr.maskers.NiftiMapsMasker` over the regions: ``transform``
gives ``(time, region)`` signals of runs, NIfTI files or cohort runs alike.
"""

from __future__ import annotations

import collections.abc
import numbers
import warnings

import nibabel as nib
import numpy as np
from scipy import ndimage
from scipy.stats import scoreatpercentile

from brainxr.dims import SPATIAL_DIMS
from brainxr.geometry import get_grid
from brainxr.image import same_grid, smooth_array
from brainxr.maskers import NiftiMapsMasker
from brainxr.maskers._base import load_mask_img, resample_mask
from brainxr.maskers._inputs import load_volume

EXTRACTORS = ("connected_components", "local_regions")
THRESHOLDING_STRATEGIES = ("ratio_n_voxels", "img_value", "percentile")

__all__ = ["EXTRACTORS", "THRESHOLDING_STRATEGIES", "RegionExtractor", "connected_label_regions", "connected_regions"]


# ---------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------


def _load_maps(maps_img, name: str = "maps_img", require_4d: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``(I, J, K, n_maps)`` values (as stored: float32 stays float32) and the affine."""
    volume, _ = load_volume(maps_img, name)
    volume = volume.transpose(*SPATIAL_DIMS, ...)
    values = np.array(volume.values)  # a writable copy
    if values.ndim == 3:
        if require_4d:
            raise ValueError(f"{name}: expected a 4D image (one map per volume), got a 3D image of shape {values.shape}")
        values = values[..., np.newaxis]
    if values.ndim != 4:
        raise ValueError(f"{name}: expected a 4D image (one map per volume), got shape {values.shape}")
    return values, get_grid(volume, name).affine


def _mask_on_grid(mask_img, shape, affine, name: str = "mask_img") -> np.ndarray | None:
    """A binary mask on the maps' grid (nearest-neighbour resampling when needed)."""
    mask = load_mask_img(mask_img, name)
    if mask is None:
        return None
    values, mask_affine = mask
    if not same_grid(values.shape, mask_affine, shape, affine):
        values = resample_mask(values, mask_affine, tuple(shape[:3]), affine)
    return values


# ---------------------------------------------------------------------------
# Thresholding
# ---------------------------------------------------------------------------


def threshold_maps_ratio(maps: np.ndarray, threshold) -> np.ndarray:
    """Keep the ``threshold`` x n_voxels most intense voxels (absolute value) over all maps.

    Parameters
    ----------
    maps : ``(I, J, K, n_maps)`` numpy.ndarray
    threshold : float in (0, n_maps]

    Returns
    -------
    numpy.ndarray
        A thresholded copy (non-finite values are 0).
    """
    n_maps = maps.shape[-1]
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real) or threshold <= 0 or threshold > n_maps:
        raise ValueError(
            "threshold given as ratio to the number of voxels must be Real number and should be positive and "
            f"between 0 and total number of maps i.e. n_maps={n_maps}. You provided {threshold}"
        )
    values = np.where(np.isfinite(maps), maps, 0).astype(maps.dtype, copy=False)
    absolute = np.abs(values)
    cutoff = scoreatpercentile(absolute, 100.0 - (100.0 / n_maps) * threshold)
    values[absolute < cutoff] = 0.0
    return values


def _cutoff(threshold, values: np.ndarray, two_sided: bool) -> float:
    """nilearn's ``check_threshold``: a value, or ``"q%"`` a percentile of the (kept-sign) values."""
    percentile = False
    if isinstance(threshold, str):
        message = 'If "threshold" is given as string it should be a number followed by the percent sign, e.g. "25.3%"'
        if not threshold.endswith("%"):
            raise ValueError(message)
        try:
            threshold = float(threshold[:-1])
        except ValueError as error:
            raise ValueError(message) from error
        percentile = True
    elif isinstance(threshold, bool) or not isinstance(threshold, numbers.Real):
        raise TypeError("threshold should be either a number or a string finishing with a percent sign")
    threshold = float(threshold)
    if threshold >= 0:
        data = np.abs(values) if two_sided else values[values >= 0]
        if percentile:
            return float(scoreatpercentile(data, threshold) + 1e-5)
        if data.size and threshold > data.max():
            warnings.warn(
                f"The given float value must not exceed {data.max()}. But, you have given threshold={threshold}.",
                UserWarning,
                stacklevel=4,
            )
        return threshold
    if two_sided:
        raise ValueError('"threshold" should not be a negative value when two_sided=True.')
    if percentile:
        raise ValueError('"threshold" should not be a negative percentile value.')
    data = values[values <= 0]
    if data.size and threshold < data.min():
        warnings.warn(
            f"The given float value must not be less than {data.min()}. But, you have given threshold={threshold}.",
            UserWarning,
            stacklevel=4,
        )
    return threshold


def threshold_maps(maps: np.ndarray, threshold, two_sided: bool = True, mask: np.ndarray | None = None) -> np.ndarray:
    """Zero the voxels below a threshold (nilearn's ``threshold_img``, no cluster step).

    Parameters
    ----------
    maps : ``(I, J, K[, n])`` numpy.ndarray
    threshold : float or str
        A value, or a percentile ``"q%"`` of the (in-mask) values: of their
        absolute values with ``two_sided``, else of the non-negative ones.
    two_sided : bool, default=True
        Keep both tails (``|x| >= threshold``); otherwise keep
        ``x >= threshold`` (``x <= threshold`` for a negative threshold).
    mask : ``(I, J, K)`` bool array, optional
        Voxels outside are set to 0 and left out of the percentile.

    Returns
    -------
    numpy.ndarray
        A thresholded copy (non-finite values are 0).
    """
    values = np.where(np.isfinite(maps), maps, 0).astype(maps.dtype, copy=False)
    for_cutoff = values
    if mask is not None:
        for_cutoff = values[mask]
        values[~mask] = 0.0
    cutoff = _cutoff(threshold, for_cutoff, two_sided)
    if two_sided:
        below = (-cutoff < values) & (values < cutoff)
    elif cutoff >= 0:
        below = values < cutoff
    else:
        below = values > cutoff
    values[below] = 0.0
    return values


# ---------------------------------------------------------------------------
# Splitting a map into regions
# ---------------------------------------------------------------------------


def peak_local_max(image: np.ndarray, min_distance: int = 10, threshold_abs: float = 0, threshold_rel: float = 0.1) -> np.ndarray:
    """Local maxima of ``image`` as a boolean array (nilearn's version of scikit-image 0.11's).

    A voxel is a peak when it equals the maximum of its
    ``(2 * min_distance + 1)``-wide neighbourhood (zero padding) and exceeds
    ``max(threshold_abs, threshold_rel * image.max())``; flat peaks give all
    their voxels.
    """
    peaks = np.zeros_like(image, dtype=bool)
    if np.all(image == image.flat[0]):
        return peaks
    local_max = ndimage.maximum_filter(image, size=2 * min_distance + 1, mode="constant")
    kept = image * (image == local_max)
    peaks[kept > max(np.max(kept) * threshold_rel, threshold_abs)] = True
    return peaks


# -- random walker segmentation ---------------------------------------------
# Grady's random walker as nilearn runs it (its copy of scikit-image 0.11's):
# a graph of the voxels to segment with weights exp(-beta |gradient|^2 /
# (10 std)), one sparse linear system per seed label solved by unpreconditioned
# conjugate gradient (tol 1e-3), each voxel given the label most likely to
# reach it. Voxels where two labels' probabilities are nearly equal take
# whichever the rounding of the solver favours, so the assembly and the
# solver follow nilearn's operation for operation: scikit-image's current
# random_walker builds the same system in another order and labels a few
# boundary voxels differently.


def _graph_edges(shape) -> np.ndarray:
    """``(2, n_edges)`` voxel pairs of the 6-neighbour grid graph (k, then j, then i)."""
    vertices = np.arange(np.prod(shape)).reshape(shape)
    deep = np.vstack((vertices[:, :, :-1].ravel(), vertices[:, :, 1:].ravel()))
    right = np.vstack((vertices[:, :-1].ravel(), vertices[:, 1:].ravel()))
    down = np.vstack((vertices[:-1].ravel(), vertices[1:].ravel()))
    return np.hstack((deep, right, down))


def _edge_weights(data: np.ndarray, beta: float, eps: float = 1.0e-10) -> np.ndarray:
    """exp(-beta |gradient|^2 / (10 std)) + eps on each edge (gradients in float64)."""
    gradients = np.r_[
        np.abs(data[:, :, :-1] - data[:, :, 1:]).ravel().astype(np.float64),
        np.abs(data[:, :-1] - data[:, 1:]).ravel().astype(np.float64),
        np.abs(data[:-1] - data[1:]).ravel().astype(np.float64),
    ] ** 2
    # the scale in the data's precision (float32 for float32 maps), as nilearn computes it
    beta /= 10 * data[..., np.newaxis].std()
    gradients *= beta
    weights = np.exp(-gradients)
    weights += eps
    return weights


def _laplacian(data: np.ndarray, mask: np.ndarray | None, beta: float):
    """Sparse graph Laplacian of the voxels of ``mask`` (all voxels when None)."""
    from scipy import sparse

    edges = _graph_edges(data.shape)
    weights = _edge_weights(data, beta)
    if mask is not None:
        keep = np.logical_and(
            np.hstack((mask[:, :, :-1].ravel(), mask[:, :-1].ravel(), mask[:-1].ravel())),
            np.hstack((mask[:, :, 1:].ravel(), mask[:, 1:].ravel(), mask[1:].ravel())),
        )
        edges, weights = edges[:, keep], weights[keep]
        order = np.searchsorted(np.unique(edges.ravel()), np.arange(edges.max() + 1))
        edges = order[edges.astype(np.int64)]
    n_nodes = edges.max() + 1
    rows, columns = np.hstack((edges[0], edges[1])), np.hstack((edges[1], edges[0]))
    values = np.hstack((-weights, -weights))
    adjacency = sparse.coo_matrix((values, (rows, columns)), shape=(n_nodes, n_nodes))
    degree = -np.ravel(adjacency.sum(axis=1))
    diagonal = np.arange(n_nodes)
    return sparse.coo_matrix(
        (np.hstack((values, degree)), (np.hstack((rows, diagonal)), np.hstack((columns, diagonal)))),
        shape=(n_nodes, n_nodes),
    ).tocsr()


def _solve_probabilities(laplacian, labels: np.ndarray, tol: float) -> np.ndarray:
    """For each unlabeled voxel, the (1-based) label with the largest arrival probability.

    The conjugate gradients run on one BLAS thread: their vectors are too short (a map's voxels) for threads to
    pay, and threaded dot products cost many times the CPU time (threads waiting on each other at every
    iteration), worse on a busy machine. The iterates are nilearn's (its CSC system, the same sums).
    """
    from scipy import sparse
    from scipy.sparse.linalg import cg
    from threadpoolctl import threadpool_limits

    labels = labels[labels >= 0]
    indices = np.arange(labels.size)
    unlabeled, seeded = indices[labels == 0], indices[labels > 0]
    coupling = laplacian[unlabeled][:, seeded]
    system = laplacian[unlabeled][:, unlabeled].tocsc()
    probabilities = []
    with threadpool_limits(limits=1, user_api="blas"):
        for label in range(1, labels.max() + 1):
            right_hand_side = coupling * sparse.csr_matrix(labels[seeded] == label).transpose()
            probabilities.append(cg(system, -right_hand_side.todense(), rtol=tol, atol=0)[0])
    return np.argmax(np.array(probabilities), axis=0) + 1


def random_walker(data: np.ndarray, labels: np.ndarray, beta: float = 130.0, tol: float = 1.0e-3) -> np.ndarray:
    """Random-walker segmentation of a 3D map from seed labels.

    Parameters
    ----------
    data : ``(I, J, K)`` numpy.ndarray
    labels : ``(I, J, K)`` int array
        Seeds (> 0, one value per phase), voxels to label (0) and voxels left
        out of the graph (< 0).
    beta : float, default=130
        The larger, the harder diffusion across intensity changes.
    tol : float, default=1e-3
        Conjugate-gradient tolerance.

    Returns
    -------
    numpy.ndarray
        int32 labels: each voxel to label gets the seed label most likely to
        reach it first; seeds cut off from every voxel to label, and voxels
        cut off from every seed, are -1 (the input labels are returned as they
        are when there is nothing to segment).
    """
    if (labels != 0).all() or (labels == 0).all():
        return np.copy(labels)
    dims = data.shape
    data = np.atleast_3d(np.asarray(data, dtype=np.result_type(data.dtype, np.float32)))
    original = np.copy(labels)
    labels = np.copy(labels)
    values = np.unique(labels)
    if np.any(np.diff(values) != 1):
        kept = labels >= 0
        labels[kept] = np.searchsorted(np.unique(labels[kept]), labels[kept]).astype(labels.dtype)
    labels = labels.astype(np.int32)
    if np.any(labels < 0):
        reached = ndimage.binary_propagation(labels > 0, mask=labels >= 0)
        labels[np.logical_and(~reached, labels == 0)] = -1
        reached = ndimage.binary_propagation(labels == 0, mask=labels >= 0)
        labels[np.logical_and(labels > 0, ~reached)] = -1
    if (labels == -1).all():
        return original
    labels = np.atleast_3d(labels)
    mask = labels >= 0 if np.any(labels < 0) else None
    chosen = _solve_probabilities(_laplacian(data, mask, beta), labels, tol)
    labels = np.ravel(labels)
    labels[labels == 0] = chosen.astype(labels.dtype)
    return labels.reshape(dims)


def map_regions(map_3d: np.ndarray, affine, min_voxels: float, extract_type: str, smoothing_fwhm) -> list:
    """The regions of one map, in label order: a list of ``(I, J, K)`` arrays.

    Parameters
    ----------
    map_3d : ``(I, J, K)`` numpy.ndarray
        A thresholded map (0 outside its regions).
    affine : (4, 4) array
    min_voxels : float
        Regions of this many voxels or fewer are dropped.
    extract_type : {"connected_components", "local_regions"}
    smoothing_fwhm : float or None
        Smoothing (mm) of the map before looking for its peaks
        (``"local_regions"``).
    """
    if extract_type == "local_regions":
        smoothed = smooth_array(map_3d, affine=affine, fwhm=smoothing_fwhm)
        seeds, _ = ndimage.label(peak_local_max(smoothed))
        seeds[map_3d == 0.0] = -1
        label_maps = random_walker(map_3d, seeds)
        label_maps[label_maps == -1] = 0
    else:
        label_maps, _ = ndimage.label(map_3d)
    sizes = np.bincount(label_maps.ravel())
    sizes[0] = 0
    return [(label_maps == label) * map_3d for label in np.flatnonzero(sizes > min_voxels)]


def _check_choice(value, allowed, name):
    if value not in allowed:
        raise ValueError(f"'{name}' must be one of {list(allowed)}, got {value!r}")


def connected_regions(
    maps_img,
    min_region_size: float = 1350,
    extract_type: str = "local_regions",
    smoothing_fwhm=6,
    mask_img=None,
):
    """Split each map of a 4D image into its connected regions.

    Parameters
    ----------
    maps_img : path, nibabel image or DataArray
        3D or 4D maps (e.g. ICA or dictionary-learning components), already
        thresholded (0 outside the regions).
    min_region_size : float, default=1350
        Minimum volume in mm^3 of a region (1350 mm^3 is 50 voxels of 3 mm).
    extract_type : {"local_regions", "connected_components"}
        ``"connected_components"``: each connected component (6-connectivity)
        of a map; ``"local_regions"``: a random-walker segmentation of the
        map seeded at the local maxima of the smoothed map.
    smoothing_fwhm : float, default=6
        Smoothing (mm) before looking for peaks (``"local_regions"`` only).
    mask_img : mask image, optional
        Voxels outside are set to 0 first (resampled to the maps' grid,
        nearest neighbour, if needed).

    Returns
    -------
    regions_img : nibabel.Nifti1Image or None
        4D, one region per volume (the map's values on the region, 0
        elsewhere), in map order then label order; None (with a warning)
        when no region is found.
    index : list of int or None
        For each region, the index of its map.
    """
    _check_choice(extract_type, EXTRACTORS, "extract_type")
    if isinstance(min_region_size, bool) or not isinstance(min_region_size, numbers.Real):
        raise TypeError(f"min_region_size must be a number of mm^3, got {min_region_size!r}")
    maps, affine = _load_maps(maps_img)
    min_voxels = min_region_size / np.abs(np.linalg.det(affine[:3, :3]))
    mask = _mask_on_grid(mask_img, maps.shape, affine)
    if mask is not None:
        maps[~mask] = 0.0

    per_map = [
        map_regions(maps[..., index], affine, min_voxels, extract_type, smoothing_fwhm) for index in range(maps.shape[-1])
    ]
    regions = [region for found in per_map for region in found]
    index = [position for position, found in enumerate(per_map) for _ in found]
    if not regions:
        warnings.warn("No supra threshold regions was found", UserWarning, stacklevel=2)
        return None, None
    return nib.Nifti1Image(np.stack(regions, axis=-1), affine), index


def _remove_small_regions(labels: np.ndarray, affine, min_size: float) -> np.ndarray:
    """Labels of regions of ``min_size`` mm^3 or less set to 0; the rest renumbered without gaps."""
    _, inverse = np.unique(labels, return_inverse=True)
    sizes = np.bincount(inverse.ravel())
    kept = sizes > min_size / np.abs(np.linalg.det(affine[:3, :3]))
    if np.all(kept):
        return labels
    labels = labels.copy()
    labels[np.isin(labels, np.flatnonzero(~kept))] = 0
    return np.searchsorted(np.unique(labels), labels)


def connected_label_regions(labels_img, min_size=None, connect_diag: bool = True, labels=None):
    """Split each label of an atlas into its connected components, each a new label.

    Parameters
    ----------
    labels_img : path, nibabel image or DataArray
        3D labels image (non-negative integers, 0 the background).
    min_size : float, optional
        Components of this volume (mm^3) or less are dropped.
    connect_diag : bool, default=True
        26-connectivity (diagonals connect) rather than 6.
    labels : list of str, optional
        One name per label (in increasing label order, background excluded);
        each new region inherits its label's name.

    Returns
    -------
    new_labels_img : nibabel.Nifti1Image
        int32 labels 1..n, numbered label by label (int32 on disk as well;
        nilearn keeps the input header's type).
    new_labels : list of str
        Only when ``labels`` is given: the name of each new label.
    """
    volume, _ = load_volume(labels_img, "labels_img")
    volume = volume.transpose(*SPATIAL_DIMS, ...)
    labels_data = np.asarray(volume.values)
    if labels_data.ndim == 4 and labels_data.shape[3] == 1:
        labels_data = labels_data[..., 0]
    if labels_data.ndim != 3:
        raise ValueError(f"labels_img: expected a 3D labels image, got shape {labels_data.shape}")
    labels_data = np.where(np.isfinite(labels_data), labels_data, 0) if labels_data.dtype.kind == "f" else labels_data
    affine = get_grid(volume, "labels_img").affine
    if min_size is not None and (isinstance(min_size, bool) or not isinstance(min_size, numbers.Number)):
        raise ValueError(f"Expected 'min_size' to be specified as integer. You provided {min_size}")
    if not isinstance(connect_diag, bool):
        raise ValueError(f"'connect_diag' must be specified as True or False. You provided {connect_diag}")
    unique_labels = np.unique(labels_data)
    if np.any(unique_labels < 0):
        raise ValueError(
            f"The 'labels_img' you provided has unknown/negative integers as labels {unique_labels} assigned to "
            "regions. All regions in an image should have positive integers assigned as labels."
        )
    unique_labels = unique_labels[unique_labels != 0]
    if labels is not None:
        if not isinstance(labels, collections.abc.Iterable) or isinstance(labels, str):
            labels = [labels]
        labels = list(labels)
        if len(unique_labels) != len(labels):
            raise ValueError(
                f"The number of labels: {len(labels)} provided as input in labels={labels} does not match with the "
                f"number of unique labels in labels_img: {len(unique_labels)}. Please provide appropriate match "
                "with unique number of labels in labels_img."
            )
    structure = np.ones((3, 3, 3), dtype=np.int32) if connect_diag else None
    new_labels = np.zeros(labels_data.shape, dtype=np.int32)
    new_names = []
    next_label = 0
    for position, label in enumerate(unique_labels):
        regions, n_regions = ndimage.label((labels_data == label).astype(np.int32), structure=structure)
        if min_size is not None:
            regions = _remove_small_regions(regions, affine, min_size)
            n_regions = int(regions.max())
        inside = regions != 0
        new_labels[inside] = regions[inside] + next_label
        next_label += n_regions
        if labels is not None:
            new_names.extend([labels[position]] * n_regions)
    image = nib.Nifti1Image(new_labels, affine)
    return (image, new_names) if labels is not None else image


# ---------------------------------------------------------------------------
# The estimator
# ---------------------------------------------------------------------------


class RegionExtractor(NiftiMapsMasker):
    """Split brain maps into separate regions, then extract the regions' signals.

    ``fit`` thresholds the maps, splits them into regions
    (:func:`connected_regions`) and sets up a maps masker on the regions;
    ``transform`` returns ``(time, region)`` signals (least-squares fit of the
    regions to each volume, then cleaning). Same parameters, defaults,
    fitted attributes and regions as ``nilearn.regions.RegionExtractor``
    (0.14).

    Parameters
    ----------
    maps_img : 4D image
        The maps to split (path, nibabel image or DataArray).
    mask_img : mask image, optional
        Voxels outside are ignored (in thresholding, splitting and signals).
    min_region_size : float, default=1350
        Minimum region volume in mm^3.
    threshold : float, default=1.0
        See ``thresholding_strategy``.
    thresholding_strategy : {"ratio_n_voxels", "img_value", "percentile"}
        ``"ratio_n_voxels"``: keep the ``threshold`` x n_voxels most intense
        voxels over all maps; ``"img_value"``: keep voxels above
        ``threshold``; ``"percentile"``: keep voxels above the ``threshold``
        percentile of the in-mask values.
    two_sided : bool, default=False
        Threshold absolute values (``"img_value"``, ``"percentile"``).
    extractor : {"local_regions", "connected_components"}, default="local_regions"
    smoothing_fwhm : float, default=6
        Smoothing (mm) of the maps before finding their peaks, and of the
        images before extracting signals (as nilearn).
    standardize : bool or str, default=False
    standardize_confounds : bool, default=True
    high_variance_confounds : bool, default=False
    detrend : bool, default=False
    low_pass, high_pass, t_r : float, optional
    dtype : optional
    resampling_target : {"data", "mask", "maps", None}, default="data"
    keep_masked_maps : bool, default=False
    memory, memory_level, verbose, reports, cmap, allow_overlap, clean_args
        As for :class:`brainxr.maskers.NiftiMapsMasker`.

    Attributes
    ----------
    regions_img_ : nibabel.Nifti1Image
        4D, one region per volume.
    index_ : list of int
        For each region, the index of the map it comes from.
    maps_img_, mask_img_, n_elements_
        As for :class:`brainxr.maskers.NiftiMapsMasker` (over the regions).
    """

    def __init__(
        self,
        maps_img=None,
        mask_img=None,
        min_region_size=1350,
        threshold=1.0,
        thresholding_strategy="ratio_n_voxels",
        two_sided=False,
        extractor="local_regions",
        smoothing_fwhm=6,
        standardize=False,
        standardize_confounds=True,
        high_variance_confounds=False,
        detrend=False,
        low_pass=None,
        high_pass=None,
        t_r=None,
        dtype=None,
        resampling_target="data",
        keep_masked_maps=False,
        memory=None,
        memory_level=0,
        verbose=0,
        reports=True,
        cmap="CMRmap_r",
        allow_overlap=True,
        clean_args=None,
    ):
        super().__init__(
            maps_img=maps_img, mask_img=mask_img, allow_overlap=allow_overlap, smoothing_fwhm=smoothing_fwhm,
            standardize=standardize, standardize_confounds=standardize_confounds,
            high_variance_confounds=high_variance_confounds, detrend=detrend, low_pass=low_pass,
            high_pass=high_pass, t_r=t_r, dtype=dtype, resampling_target=resampling_target,
            keep_masked_maps=keep_masked_maps, memory=memory, memory_level=memory_level, verbose=verbose,
            reports=reports, cmap=cmap, clean_args=clean_args,
        )
        self.min_region_size = min_region_size
        self.threshold = threshold
        self.thresholding_strategy = thresholding_strategy
        self.two_sided = two_sided
        self.extractor = extractor

    def _thresholded_maps(self, maps: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
        _check_choice(self.thresholding_strategy, THRESHOLDING_STRATEGIES, "thresholding_strategy")
        if self.threshold is None or isinstance(self.threshold, str) or not isinstance(self.threshold, numbers.Number):
            raise ValueError(
                "The given input to threshold is not valid. Please submit a valid number specific to either of "
                f"the strategy in {list(THRESHOLDING_STRATEGIES)}"
            )
        if self.thresholding_strategy == "ratio_n_voxels":
            return threshold_maps_ratio(maps, self.threshold)
        threshold = f"{self.threshold}%" if self.thresholding_strategy == "percentile" else self.threshold
        return threshold_maps(maps, threshold, two_sided=self.two_sided, mask=mask)

    def fit(self, imgs=None, y=None):
        """Find the regions of the maps and prepare their signal extraction.

        Parameters
        ----------
        imgs : image, optional
            Data whose grid the regions are resampled to
            (``resampling_target="data"``), and shown in reports.
        y : None
            Ignored.
        """
        del y
        if self.maps_img is None:
            raise ValueError("maps_img: a 4D maps image is required")
        _check_choice(self.extractor, EXTRACTORS, "extractor")
        maps, affine = _load_maps(self.maps_img, require_4d=True)
        mask = _mask_on_grid(self.mask_img, maps.shape, affine)
        thresholded = self._thresholded_maps(maps, mask)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="No supra threshold regions")  # an error follows
            self.regions_img_, self.index_ = connected_regions(
                nib.Nifti1Image(thresholded, affine), self.min_region_size, self.extractor, self.smoothing_fwhm,
                mask_img=None if mask is None else nib.Nifti1Image(mask.astype(np.int8), affine),
            )
        if self.regions_img_ is None:
            raise ValueError(
                "maps_img: no region found after thresholding; lower 'threshold' or 'min_region_size'"
            )
        # the maps masker is fitted on the regions, not on the maps the user gave
        given_maps = self.maps_img
        self.maps_img = self.regions_img_
        try:
            super().fit(imgs)
        finally:
            self.maps_img = given_maps
        return self
