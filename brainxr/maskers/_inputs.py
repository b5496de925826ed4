"""What the maskers accept as images, and how they turn them into lazy volumes.

Images are opened lazily (NIfTI files read a block of volumes at a time),
in the dtype nilearn would see (stored floats as stored, scaled integers as
float64), so results match nilearn's to the last bits that matter. A run
given as a file is streamed (:class:`Run`); the images a masker holds whole
(atlas, maps, mask) are read at once (:func:`load_whole`).
"""

from __future__ import annotations

import hashlib
import os
import threading
import warnings
from collections import OrderedDict
from pathlib import Path

import nibabel as nib
import numpy as np
import xarray as xr

from brainxr._arrays import array_module, is_dask_array
from brainxr.dims import SPATIAL_DIMS, TIME_DIM, VOXEL_DIM
from brainxr.geometry import Grid, get_grid, with_grid
from brainxr.inputs import check_niimg, image_values
from brainxr.masking import unmask
from brainxr.nifti import read_layout


#: mean images of the files streamed in this process, by file identity: a masker that needs a
#: run's mean (a background or EPI mask at fit, a report) after another masker read the file
#: (a seed masker's transform) gets it without inflating the file again. A few 3D volumes.
_FILE_MEANS: OrderedDict = OrderedDict()
_FILE_MEANS_KEPT = 4
_FILE_MEANS_LOCK = threading.Lock()  # the runs of a multi-run mask are read in threads


#: ``(time, voxel)`` values that a report's pass over a file gathered for the next transform of the
#: same file, voxels and smoothing (one entry, handed over once, then dropped): fit -> report ->
#: transform reads the file once. Only tables up to :data:`_HAND_OVER_BYTES` are kept.
_HANDED_OVER: dict = {}
_HAND_OVER_BYTES = 2**27


def _table_key(path: Path, support: np.ndarray, smoothing_fwhm, dtype) -> tuple:
    """What identifies a masked table of a file: the file, the voxels, the smoothing, the dtype."""
    digest = hashlib.blake2b(np.packbits(support).tobytes(), digest_size=16).hexdigest()
    return (_file_identity(path), support.shape, digest, repr(smoothing_fwhm), str(np.dtype(dtype)))


def _file_identity(path: Path) -> tuple:
    """What identifies a file's contents: resolved path, size, modification time, inode."""
    status = os.stat(path)
    return (str(path.resolve()), status.st_size, status.st_mtime_ns, status.st_ino, status.st_dev)


def _remember_mean(key: tuple, mean: np.ndarray) -> None:
    with _FILE_MEANS_LOCK:
        _FILE_MEANS[key] = mean
        _FILE_MEANS.move_to_end(key)
        while len(_FILE_MEANS) > _FILE_MEANS_KEPT:
            _FILE_MEANS.popitem(last=False)


class Run:
    """One 4D run: a ``(i, j, k, time)`` volume, or a NIfTI file that the maskers stream.

    A file is streamed by :meth:`masked_values` and :meth:`mean_values`; its
    volume (lazy, dask chunks of volumes) is opened only when a computation
    needs it whole (resampling the run, labeled outputs), so that extracting
    from a file builds no DataArray of the run (xarray imports dask when it
    builds its first variable: ~0.3 s of a short script).

    Attributes
    ----------
    was_3d : bool
        The input was one volume (nilearn then returns 1D signals).
    source_dtype : numpy.dtype
        The dtype nilearn reports for the input (``img_data_dtype``).
    name : str
        How to name the input in messages.
    path : pathlib.Path or None
        The file, when the run is one.
    shape, affine, n_volumes, dtype
        The grid, the number of volumes and the dtype of the values.
    """

    def __init__(self, volume: xr.DataArray | None, was_3d: bool, source_dtype, name: str, path: Path | None = None,
                 layout=None):
        self._volume = volume
        self.was_3d = was_3d
        self.source_dtype = np.dtype(source_dtype)
        self.name = name
        self.path = path
        self._mean_values = None
        if volume is not None:
            self.shape = tuple(volume.shape[:3])
            self.affine = get_grid(volume, name).affine
            self.n_volumes = int(volume.shape[3])
            self.dtype = volume.dtype
        else:
            self.shape = tuple(layout.shape[:3])
            self.affine = layout.header.get_best_affine()
            self.n_volumes = layout.n_volumes
            self.dtype = self.source_dtype  # a file is read in the dtype nilearn sees

    @classmethod
    def of_file(cls, path: Path, name: str) -> Run:
        """A run of a 3D or 4D NIfTI file, of which only the header is read now."""
        layout = read_layout(path)
        dtype = layout.value_dtype(layout.scaled_as(np.float64))  # nilearn reads scaled integers as float64
        return cls(None, len(layout.shape) == 3, dtype, name, path, layout)

    def __repr__(self) -> str:
        return f"Run({self.description}, shape={self.shape}, n_volumes={self.n_volumes})"

    @property
    def volume(self) -> xr.DataArray:
        """``(i, j, k, time)`` (a 3D input gets a time dim of length 1); a file is opened lazily on first use."""
        if self._volume is None:
            volume, _ = load_volume(self.path, self.name)
            self._volume, _ = _run_volume(volume, self.name)
        return self._volume

    @property
    def description(self) -> str:
        """The input named for messages: the parameter, and the file when there is one."""
        return self.name if self.path is None else f"{self.name} {str(self.path)!r}"

    @property
    def _mean_dtype(self) -> np.dtype:
        # nilearn's mean_img: float inputs keep their dtype, others give float64
        return self.dtype if self.dtype.kind == "f" else np.dtype(np.float64)

    def _cached_file_mean(self) -> bool:
        """Take the file's mean from this process's cache, if an earlier read left it there."""
        if self._mean_values is None and self.path is not None:
            found = _FILE_MEANS.get(_file_identity(self.path))
            if found is not None and found.shape == self.shape and found.dtype == self._mean_dtype:
                self._mean_values = found
        return self._mean_values is not None

    def mean_values(self) -> np.ndarray:
        """The mean over time, ``(I, J, K)``, computed once per run (nilearn's ``mean_img`` dtype rule).

        A file is read in one streaming pass (ISA-L, sums in float64), not
        through the lazy volume's random-access chunks, unless a masker of
        this process already streamed it (its mean is then kept).
        """
        if self._mean_values is None and not self._cached_file_mean():
            from brainxr.image import mean_img
            from brainxr.regions._streaming import VolumeSum, stream_outputs

            if self.path is None:
                self._mean_values = whole_values(mean_img(self.volume))
            else:
                (total,) = stream_outputs(self.path, [VolumeSum()], dtype=self.dtype)
                self._keep_file_mean(total)
        return self._mean_values

    def mean_volume(self) -> xr.DataArray:
        """The mean over time (:meth:`mean_values`) as a 3D volume DataArray with the run's coordinates."""
        return self.volume.isel({TIME_DIM: 0}, drop=True).copy(data=self.mean_values())

    def mean_image(self) -> nib.Nifti1Image:
        """The mean over time (:meth:`mean_values`) as a nibabel image (what nilearn's ``mean_img`` returns)."""
        return nib.Nifti1Image(self.mean_values(), self.affine)

    def _keep_file_mean(self, total: np.ndarray) -> None:
        mean = (total / self.n_volumes).astype(self._mean_dtype)
        _remember_mean(_file_identity(self.path), mean)
        self._mean_values = mean

    def masked_values(self, support: np.ndarray, smoothing_fwhm=None, hand_over: bool = False) -> np.ndarray:
        """``(time, voxel)`` values of the ``support`` voxels (C order), smoothed first if asked.

        A file is read in one streaming pass (smoothing each block as it
        comes; the file's mean image is summed in the same pass if not known
        yet); other inputs are processed a block of volumes at a time.
        Non-finite values become 0, as in nilearn's maskers, with its
        warning (naming the input).

        Parameters
        ----------
        support : ``(I, J, K)`` bool array
            The voxels.
        smoothing_fwhm : float, sequence or None
            Gaussian smoothing (mm) before gathering.
        hand_over : bool
            Keep the values of a file (up to 128 MB) for the next call with
            the same file, voxels and smoothing, which takes them instead of
            reading the file again (a report's pass for the mean image, then
            ``transform``).
        """
        from brainxr.image import smooth_img
        from brainxr.masking import apply_mask
        from brainxr.regions._streaming import MaskedOutput, VolumeSum, stream_outputs

        if self.path is not None:
            key = _table_key(self.path, support, smoothing_fwhm, self.dtype)
            values = _HANDED_OVER.pop(key, None)
            if values is None:
                outputs = [MaskedOutput(support, smoothing_fwhm, None, self.affine)]
                if not self._cached_file_mean():
                    outputs.append(VolumeSum())
                values, *total = stream_outputs(self.path, outputs, dtype=self.dtype)
                if total:
                    self._keep_file_mean(total[0])
            if hand_over and values.nbytes <= _HAND_OVER_BYTES:
                _HANDED_OVER.clear()
                _HANDED_OVER[key] = values
        else:
            masked = apply_mask(smooth_img(self.volume, smoothing_fwhm), support, voxel_chunks=None)
            values = np.asarray(masked.transpose(TIME_DIM, VOXEL_DIM).values)
        return finite_or_zero(values, self.description)


def finite_or_zero(values: np.ndarray, description: str) -> np.ndarray:
    """Non-finite values replaced by 0, as nilearn's maskers do, with its warning
    naming the input."""
    if values.dtype.kind != "f":
        return values
    finite = np.isfinite(values)
    if finite.all():
        return values
    warnings.warn(
        f"Non-finite values detected in {description} ({finite.size - np.count_nonzero(finite)} "
        "values). These values will be replaced with zeros.",
        UserWarning,
        stacklevel=5,
    )
    return np.where(finite, values, 0)


def _from_dataarray(data: xr.DataArray, name: str) -> xr.DataArray:
    if VOXEL_DIM in data.dims:
        # (time, voxel) signals: back on the grid (0 outside the voxels), lazily
        return unmask(data, fill_value=0)
    return check_niimg(data, name)


def load_volume(img, name: str = "imgs") -> tuple[xr.DataArray, np.dtype]:
    """One image (3D or 4D) as a volume DataArray and its nilearn source dtype.

    Scaled integer images are read as float64, as nibabel (and so nilearn)
    scales them; a cohort run Dataset is its ``bold`` with invalid voxels 0.
    """
    if isinstance(img, xr.Dataset):
        if "bold" not in img:
            raise ValueError(f"{name}: a Dataset run needs a 'bold' variable, got {list(img.data_vars)}")
        bold = img["bold"]
        if "valid" in img:
            bold = bold.where(img["valid"], 0)
        volume = _from_dataarray(bold.assign_attrs({**img.attrs, **bold.attrs}), name)
    elif isinstance(img, xr.DataArray):
        volume = _from_dataarray(img, name)
    elif isinstance(img, (str, Path, nib.spatialimages.SpatialImage)):
        volume = check_niimg(img, name, scaled_dtype=np.float64)
    else:
        raise TypeError(
            f"{name}: expected a NIfTI path, a nibabel image, a brainxr DataArray or a list of 3D images, "
            f"got {type(img).__name__}"
        )
    return volume, volume.dtype


def load_whole(img, name: str) -> tuple[np.ndarray, Grid]:
    """An image a masker holds whole (an atlas, maps, a mask): its values (``i, j, k[, ...]``) and grid.

    Files and nibabel images are read without a DataArray
    (:func:`brainxr.inputs.image_values`), scaled integers as float64 as in
    nilearn; other inputs as :func:`load_volume` takes them.
    """
    if isinstance(img, (str, Path, nib.spatialimages.SpatialImage)):
        return image_values(img, name, scaled_dtype=np.float64)
    volume, _ = load_volume(img, name)
    volume = volume.transpose(*SPATIAL_DIMS, ...)
    return whole_values(volume), get_grid(volume, name)


def _ordered(volume: xr.DataArray) -> xr.DataArray:
    volume = volume.transpose(*SPATIAL_DIMS, ...)
    if volume.ndim == 5 and volume.shape[3] == 1:
        volume = volume.isel({volume.dims[3]: 0})
    return volume


def load_run(imgs, name: str = "imgs") -> Run:
    """A 3D/4D image, or a list of 3D images (concatenated in time), as one run.

    Raises
    ------
    ValueError
        For a list of 4D images (one run is expected: use a MultiNifti
        masker), or a list of images of different shapes or affines (naming
        the first one that differs).
    """
    if isinstance(imgs, (list, tuple)):
        if len(imgs) == 0:
            raise ValueError(f"{name}: an empty list of images")
        volumes, dtypes = zip(*(load_volume(img, f"{name}[{position}]") for position, img in enumerate(imgs)))
        volumes = [_ordered(volume) for volume in volumes]
        if len(volumes) == 1 and volumes[0].ndim == 4:
            return Run(volumes[0], False, dtypes[0], name)
        reference = volumes[0]
        for position, volume in enumerate(volumes):
            if volume.ndim != 3:
                raise ValueError(
                    f"{name}[{position}]: expected 3D images to concatenate into one run, got shape "
                    f"{tuple(volume.shape)}; pass 4D runs one at a time or use a MultiNifti masker"
                )
            if tuple(volume.shape) != tuple(reference.shape) or not np.allclose(get_grid(volume).affine, get_grid(reference).affine):
                raise ValueError(
                    f"{name}[{position}]: shape {tuple(volume.shape)} and affine differ from {name}[0] "
                    f"(shape {tuple(reference.shape)}); the images of one run must share a grid"
                )
        data = [volume.data for volume in volumes]
        stacked = array_module(next((d for d in data if is_dask_array(d)), None)).stack(data, axis=-1)
        volume = with_grid(xr.DataArray(stacked, dims=SPATIAL_DIMS + (TIME_DIM,), attrs=dict(reference.attrs)), get_grid(reference))
        return Run(volume, False, np.result_type(*dtypes), name)
    if isinstance(imgs, (str, Path)):
        return Run.of_file(Path(imgs), name)
    volume, dtype = load_volume(imgs, name)
    volume, was_3d = _run_volume(volume, name)
    return Run(volume, was_3d, dtype, name)


def _run_volume(volume: xr.DataArray, name: str) -> tuple[xr.DataArray, bool]:
    """A 3D or 4D volume as ``(i, j, k, time)``, and whether it was 3D."""
    volume = _ordered(volume)
    if volume.ndim == 3:
        return volume.expand_dims(TIME_DIM, axis=3), True
    if volume.ndim != 4:
        raise ValueError(f"{name}: expected a 3D or 4D image, got shape {tuple(volume.shape)}")
    if volume.dims[3] != TIME_DIM:
        volume = volume.rename({volume.dims[3]: TIME_DIM})
    return volume, False


def is_run_list(imgs) -> bool:
    """Whether ``imgs`` is a list of runs (4D images) rather than one run."""
    if not isinstance(imgs, (list, tuple)) or len(imgs) == 0:
        return False
    first = imgs[0]
    if isinstance(first, (list, tuple)):
        return True
    volume, _ = load_volume(first, "imgs[0]")
    return _ordered(volume).ndim == 4


def whole_values(volume: xr.DataArray) -> np.ndarray:
    """The values of an image a masker holds whole (an atlas, maps, a mask), read in this process.

    Read by dask's synchronous scheduler, passed as a function: one small
    file, for which dask's lookup of a scheduler by name, or of the default
    one, imports ``distributed`` (a third of a second of a short script's
    start-up) for nothing.

    Parameters
    ----------
    volume : xarray.DataArray
        The image, lazy or not.

    Returns
    -------
    numpy.ndarray
        Its values, dims in the order of ``volume``.
    """
    if is_dask_array(volume.data):
        from dask.local import get_sync

        return np.asarray(volume.data.compute(scheduler=get_sync))
    return np.asarray(volume.values)


def to_nibabel_image(volume: xr.DataArray, dtype=None) -> nib.Nifti1Image:
    """An in-memory nibabel image of a (computed) volume DataArray."""
    values = whole_values(volume.transpose(*SPATIAL_DIMS, ...))
    if dtype is not None:
        values = values.astype(dtype)
    if values.dtype == bool:
        values = values.astype(np.int8)
    return nib.Nifti1Image(values, get_grid(volume).affine)


def masked_values_of(run: Run, volume: xr.DataArray | None, support: np.ndarray, smoothing_fwhm=None) -> np.ndarray:
    """``(time, voxel)`` values of ``support`` in ``volume`` (None: the run itself; or the run resampled).

    The run itself is streamed (:meth:`Run.masked_values`); a resampled run
    (a lazy volume) is computed block by block.
    """
    if volume is None:
        return run.masked_values(support, smoothing_fwhm)
    from brainxr.image import smooth_img
    from brainxr.masking import apply_mask

    masked = apply_mask(smooth_img(volume, smoothing_fwhm), support, voxel_chunks=None)
    values = np.asarray(masked.transpose(TIME_DIM, VOXEL_DIM).values)
    return finite_or_zero(values, run.description)
