"""Atlases: labels images and probabilistic maps, with their region tables.

An atlas is loaded once (:func:`load_labels_atlas`, :func:`load_maps_atlas`)
and placed on a data grid once (:meth:`LabelsAtlas.on_grid`,
:meth:`MapsAtlas.on_grid`: nearest-neighbour for labels, linear for maps),
however many runs share that grid. On a grid, an atlas gives the
``(voxel, region)`` weights of any list of voxels (:meth:`weights`), the
operator every extraction kernel applies.

The region table follows nilearn's look-up-table rules (``labels`` matched
in order to the sorted label values, ``"Background"`` for the background
label, ``"unknown"`` for values without a name), so that names equal those
of nilearn's maskers.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from scipy import sparse

from brainxr._views import view
from brainxr.dims import MAP_DIM, TIME_DIM
from brainxr.geometry import get_grid
from brainxr.image import resample_img, same_grid
from brainxr.inputs import check_niimg


def unique_region_names(names, labels) -> list[str]:
    """Names made unique: a repeated name gets its label value appended."""
    names = [str(name) for name in names]
    counts = pd.Series(names).value_counts()
    return [name if counts[name] == 1 else f"{name} ({label})" for name, label in zip(names, labels)]


def _label_values(values: np.ndarray) -> np.ndarray:
    present = np.unique(values)
    return present[np.isfinite(present)] if present.dtype.kind == "f" else present


def _read_lut(lut) -> pd.DataFrame:
    if isinstance(lut, (str, Path)):
        lut = pd.read_table(lut, sep=None, engine="python")
    if not isinstance(lut, pd.DataFrame) or not {"index", "name"} <= set(lut.columns):
        raise ValueError("lut: expected a DataFrame or TSV file with 'index' and 'name' columns")
    return lut.copy()


def look_up_table(values: np.ndarray, background_label=0, labels=None, lut=None) -> pd.DataFrame:
    """nilearn's look-up table of a labels image: ``index`` and ``name`` per label value.

    Parameters
    ----------
    values : numpy.ndarray
        The labels image's values.
    background_label : number
    labels : list of str, optional
        Names matched in order to the sorted label values (with or without a
        leading ``"Background"``); too few are padded with ``"unknown"``, too
        many are dropped, each with a warning.
    lut : DataFrame or path, optional
        A table with ``index`` and ``name`` columns (exclusive with ``labels``).

    Returns
    -------
    pandas.DataFrame
        Sorted by ``index``; the background row first, named ``"Background"``;
        rows for the values present in the image only, ``"unknown"`` for
        values the names did not cover.
    """
    present = _label_values(values)
    background_present = background_label in present
    if lut is not None and labels is not None:
        raise ValueError("Pass either labels or a lookup table (lut), but not both.")
    if lut is not None:
        table = _read_lut(lut)
    else:
        index = present.tolist()
        if labels is None:
            names = ["Background" if background_present and value == background_label else str(value) for value in present]
        else:
            if not isinstance(labels, (list, tuple)) or not all(isinstance(name, str) for name in labels):
                raise TypeError(f"labels: expected a list of str, got {labels!r}")
            names = ["Background" if name == "background" else name for name in labels]
            if background_present and "Background" not in names:
                names.insert(index.index(background_label), "Background")
            if len(names) < len(index):
                warnings.warn(
                    f"labels: {len(names)} names for {len(index)} label values in the image "
                    f"(background included); padding with 'unknown'.",
                    stacklevel=3,
                )
                names = names + ["unknown"] * (len(index) - len(names))
            elif len(names) > len(index):
                warnings.warn(
                    f"labels: {len(names)} names for {len(index)} label values in the image "
                    f"(background included); dropping the extra names {names[len(index):]}.",
                    stacklevel=3,
                )
                names = names[: len(index)]
        table = pd.DataFrame({"index": index, "name": names})

    is_background = table["index"] == background_label
    if is_background.any():
        table = pd.concat([table[is_background], table[~is_background]], ignore_index=True)
        table.loc[0, "name"] = "Background"
    else:
        first = {column: np.nan for column in table.columns}
        first.update({"name": "Background", "index": background_label})
        if "color" in table.columns:
            first["color"] = "FFFFFF"
        table = pd.concat([pd.DataFrame([first]), table], ignore_index=True)
    # keep the values present in the image, name the others "unknown"
    table = table[table["index"].isin(present)]
    missing = sorted(set(present.tolist()) - set(table["index"].tolist()))
    if missing:
        table = pd.concat([table, pd.DataFrame({"name": ["unknown"] * len(missing), "index": missing})], ignore_index=True)
    return table.sort_values("index").reset_index(drop=True)


def _finite(values: np.ndarray) -> np.ndarray:
    if values.dtype.kind == "f" and not np.isfinite(values).all():
        values = np.where(np.isfinite(values), values, 0)
    return values


@dataclass(frozen=True, eq=False)
class LabelsAtlas:
    """A labels atlas: a 3D image of region label values and its region table.

    Attributes
    ----------
    image : xarray.DataArray
        ``(i, j, k)`` label values (numpy-backed), with ``affine``.
    regions : pandas.DataFrame
        One row per region (label value other than the background), sorted by
        label: ``label``, ``name`` (from the look-up table), ``region`` (unique
        name), ``x, y, z`` (centre of mass in mm on the atlas's own grid) and
        the look-up table's other columns.
    lut : pandas.DataFrame
        nilearn's look-up table (``index``, ``name``, ...), background first.
    background_label : number
    """

    image: xr.DataArray
    regions: pd.DataFrame
    lut: pd.DataFrame
    background_label: float = 0
    _grid_cache: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def shape(self) -> tuple:
        return tuple(self.image.shape)

    @property
    def affine(self) -> np.ndarray:
        return get_grid(self.image).affine

    @property
    def n_regions(self) -> int:
        return len(self.regions)

    def on_grid(self, shape, affine, warn: bool = True) -> LabelsAtlas:
        """This atlas resampled (nearest neighbour) onto a grid, cached per grid.

        Labels that vanish in the resampling are dropped from the regions,
        with a warning naming them; a ValueError if none is left.
        """
        if same_grid(self.shape, self.affine, shape, affine):
            return self
        key = (tuple(shape), np.asarray(affine, dtype=np.float64).tobytes())
        if key not in self._grid_cache:
            resampled = resample_img(self.image, affine, shape, interpolation="nearest", name="labels_img")
            values = resampled.values
            kept = np.isin(self.regions["label"].to_numpy(), _label_values(values))
            if not kept.any():
                raise ValueError("labels_img: no label left after resampling the labels image to the data grid")
            lost = self.regions[~kept]
            if len(lost) and warn:
                warnings.warn(
                    "labels_img: after resampling the labels image to the data grid, these regions "
                    f"vanished and are dropped: {dict(zip(lost['label'].tolist(), lost['name'].tolist()))}",
                    UserWarning,
                    stacklevel=2,
                )
            lut = self.lut[self.lut["index"].isin(_label_values(values))].reset_index(drop=True)
            self._grid_cache[key] = LabelsAtlas(resampled, self.regions[kept].reset_index(drop=True), lut, self.background_label)
        return self._grid_cache[key]

    def region_index_volume(self) -> np.ndarray:
        """``(I, J, K)`` int32: the row of :attr:`regions` of each voxel, -1 for background."""
        if "index_volume" not in self._grid_cache:
            values = _finite(np.asarray(self.image.values))
            labels = self.regions["label"].to_numpy()
            position = np.searchsorted(labels, values)
            position = np.clip(position, 0, len(labels) - 1)
            index = np.where(labels[position] == values, position, -1).astype(np.int32)
            index[values == self.background_label] = -1
            self._grid_cache["index_volume"] = index
        return self._grid_cache["index_volume"]

    def assignment(self, i, j, k) -> np.ndarray:
        """Region row of the voxels ``(i, j, k)`` (-1 for background)."""
        return self.region_index_volume()[np.asarray(i), np.asarray(j), np.asarray(k)]

    def sizes(self) -> np.ndarray:
        """Number of voxels of each region on this atlas's grid."""
        index = self.region_index_volume()
        return np.bincount(index[index >= 0], minlength=self.n_regions)

    def weights(self, i, j, k) -> sparse.csr_matrix:
        """``(voxel, region)`` 0/1 matrix of the voxels ``(i, j, k)``."""
        assignment = self.assignment(i, j, k)
        return assignment_matrix(assignment, self.n_regions)

    def support(self, mask: np.ndarray | None = None) -> np.ndarray:
        """``(I, J, K)`` bool: voxels in a region (and in ``mask``)."""
        support = self.region_index_volume() >= 0
        return support if mask is None else support & mask

    __repr__ = view("atlas_text")
    _repr_html_ = view("atlas_html")


def assignment_matrix(assignment: np.ndarray, n_regions: int) -> sparse.csr_matrix:
    """``(voxel, region)`` 0/1 CSR matrix from each voxel's region (-1: none)."""
    rows = np.flatnonzero(assignment >= 0)
    return sparse.csr_matrix(
        (np.ones(rows.size), (rows, assignment[rows])), shape=(assignment.size, n_regions)
    )


def _centres_of_mass(index_volume: np.ndarray, n_regions: int, affine) -> np.ndarray:
    """World centre of mass (mm) of each region of an index volume (-1: no region)."""
    if n_regions == 0:
        return np.empty((0, 3))
    inside = index_volume >= 0
    regions = index_volume[inside]
    counts = np.bincount(regions, minlength=n_regions).astype(np.float64)
    ijk = np.nonzero(inside)
    with np.errstate(invalid="ignore", divide="ignore"):
        centres = np.column_stack([np.bincount(regions, weights=axis, minlength=n_regions) / counts for axis in ijk])
    affine = np.asarray(affine)
    return centres @ affine[:3, :3].T + affine[:3, 3]


def load_labels_atlas(labels_img, labels=None, lut=None, background_label=0) -> LabelsAtlas:
    """Load a labels atlas and its region table.

    Parameters
    ----------
    labels_img : path, nibabel image, DataArray or LabelsAtlas
        3D image of label values; non-finite values count as 0.
    labels : list of str, optional
        Region names in the order of the sorted label values (nilearn's
        ``labels``).
    lut : DataFrame or path to a TSV, optional
        Look-up table with ``index`` and ``name`` columns (BIDS ``dseg.tsv``).
    background_label : number, default=0

    Returns
    -------
    LabelsAtlas
    """
    if isinstance(labels_img, LabelsAtlas):
        return labels_img
    image = check_niimg(labels_img, "labels_img", ndim=3, chunks=None).load()
    values = _finite(np.asarray(image.values))
    if np.all(values == background_label):
        raise ValueError(f"labels_img: the image has no label (every voxel is the background {background_label})")
    table = look_up_table(values, background_label, labels=labels, lut=lut)
    regions = table[table["index"] != background_label].rename(columns={"index": "label"}).reset_index(drop=True)
    regions["region"] = unique_region_names(regions["name"], regions["label"])
    atlas = LabelsAtlas(image.copy(data=values), regions, table, background_label)
    centres = _centres_of_mass(atlas.region_index_volume(), atlas.n_regions, atlas.affine)
    for axis, name in enumerate("xyz"):
        regions[name] = centres[:, axis]
    return atlas


@dataclass(frozen=True, eq=False)
class MapsAtlas:
    """A probabilistic (maps) atlas: one weight map per region.

    Attributes
    ----------
    image : xarray.DataArray
        ``(i, j, k, map)`` float64 weights (numpy-backed), with ``affine``.
    regions : pandas.DataFrame
        One row per map: ``label`` (map index), ``name``, ``region`` (unique
        name), ``x, y, z`` (weighted centre of the map's positive part, mm).
    """

    image: xr.DataArray
    regions: pd.DataFrame
    _grid_cache: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def shape(self) -> tuple:
        return tuple(self.image.shape[:3])

    @property
    def affine(self) -> np.ndarray:
        return get_grid(self.image).affine

    @property
    def n_regions(self) -> int:
        return len(self.regions)

    def on_grid(self, shape, affine, interpolation: str = "linear") -> MapsAtlas:
        """This atlas resampled onto a grid (linear by default), cached per grid."""
        if same_grid(self.shape, self.affine, shape, affine):
            return self
        key = (tuple(shape), np.asarray(affine, dtype=np.float64).tobytes(), interpolation)
        if key not in self._grid_cache:
            resampled = resample_img(self.image, affine, shape, interpolation=interpolation, name="maps_img")
            if not np.any(resampled.values):
                raise ValueError("maps_img: no map left after resampling the maps to the data grid")
            self._grid_cache[key] = MapsAtlas(resampled.load(), self.regions)
        return self._grid_cache[key]

    def matrix(self, i, j, k) -> sparse.csr_matrix:
        """``(voxel, map)`` CSR matrix of the map values at the voxels ``(i, j, k)``."""
        values = self.image.values[np.asarray(i), np.asarray(j), np.asarray(k)]
        return sparse.csr_matrix(values.astype(np.float64, copy=False))

    def support(self, mask: np.ndarray | None = None) -> np.ndarray:
        """``(I, J, K)`` bool: voxels where some map is non-zero (and in ``mask``)."""
        support = np.any(self.image.values != 0, axis=3)
        return support if mask is None else support & mask

    __repr__ = view("atlas_text")
    _repr_html_ = view("atlas_html")


def load_maps_atlas(maps_img, names=None) -> MapsAtlas:
    """Load a probabilistic atlas: a 4D image, one map per volume.

    Parameters
    ----------
    maps_img : path, nibabel image, DataArray or MapsAtlas
        4D (a 3D image is one map); non-finite values count as 0.
    names : list of str, optional
        One name per map (default: the map index as a string).

    Returns
    -------
    MapsAtlas
    """
    if isinstance(maps_img, MapsAtlas):
        if names is not None and len(names) != maps_img.n_regions:
            raise ValueError(f"names: {len(names)} names given for {maps_img.n_regions} maps in maps_img")
        return maps_img
    volume = check_niimg(maps_img, name="maps_img", chunks=None)
    if volume.ndim == 3:
        volume = volume.expand_dims(MAP_DIM, axis=3)
    if volume.ndim != 4:
        raise ValueError(f"maps_img: expected a 4D image (one map per volume), got shape {volume.shape}")
    if volume.dims[3] != MAP_DIM:
        volume = volume.rename({volume.dims[3]: MAP_DIM})
    volume = volume.drop_vars([name for name in (TIME_DIM, MAP_DIM) if name in volume.coords])
    values = np.asarray(volume.values, dtype=np.float64)
    values = np.where(np.isfinite(values), values, 0)
    if not np.any(values):
        raise ValueError("maps_img: the image contains no map (all values are 0)")
    n_maps = values.shape[3]
    if names is None:
        names = [str(index) for index in range(n_maps)]
    elif len(names) != n_maps:
        raise ValueError(f"names: {len(names)} names given for {n_maps} maps in maps_img")
    image = volume.copy(data=values)
    image.attrs = {key: value for key, value in volume.attrs.items() if key != "nifti"}
    weights = np.clip(values, 0, None)
    grid = np.indices(values.shape[:3]).reshape(3, -1).T
    totals = weights.reshape(-1, n_maps).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        centres_ijk = (grid.T @ weights.reshape(-1, n_maps)).T / totals[:, None]
    affine = get_grid(image, "maps_img").affine
    centres = centres_ijk @ affine[:3, :3].T + affine[:3, 3]
    regions = pd.DataFrame(
        {
            "label": np.arange(n_maps),
            "name": list(names),
            "region": unique_region_names(names, range(n_maps)),
            "x": centres[:, 0],
            "y": centres[:, 1],
            "z": centres[:, 2],
        }
    )
    return MapsAtlas(image, regions)
