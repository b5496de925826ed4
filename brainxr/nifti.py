"""NIfTI <-> xarray.

:func:`open_nifti` turns a NIfTI file into a lazy :class:`xarray.DataArray`
with dims ``(i, j, k[, time])`` (the NIfTI array order, so ``da.values``
equals nibabel's ``get_fdata()``), the affine, the repetition time and every
header field needed to write it back; :func:`to_nifti` writes such an array
back, exactly.

Gzipped NIfTI has no random access. Two readers serve the two access
patterns, sharing one decoder (:func:`_decode_volumes`):

- :func:`iter_volume_blocks` streams a file once, a block of volumes at a
  time, with the ISA-L inflater (the ingest path);
- the lazy chunks of :func:`open_nifti` seek through a per-process
  ``indexed_gzip`` reader whose seek index grows as it reads, so each region
  of the file is inflated about once however the chunks are scheduled.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import xarray as xr
from xarray.backends import BackendArray, BackendEntrypoint, CachingFileManager
from xarray.core import indexing

from brainxr._arrays import is_dask_array
from brainxr.dims import SPATIAL_DIMS, TIME_DIM
from brainxr.errors import InputFileError
from brainxr.geometry import Grid, get_grid, get_t_r

# Header fields that describe the file's layout rather than the image: they are
# recomputed from the data on write.
_LAYOUT_FIELDS = {"sizeof_hdr", "dim", "datatype", "bitpix", "vox_offset", "magic", "glmax", "glmin"}

_TIME_UNIT_SECONDS = {"sec": 1.0, "msec": 1e-3, "usec": 1e-6}

# single-file NIfTI-1: 348-byte header + 4-byte extension flag, then the data
_VOX_OFFSET = 352


@dataclass(frozen=True)
class NiftiLayout:
    """Where and how the voxel data of a NIfTI file is stored.

    Attributes
    ----------
    path : pathlib.Path or remote file
        A local path, or a remote file object (see :func:`read_layout`).
    header : nibabel.nifti1.Nifti1Header
    shape : tuple of int
        Image shape as stored (3D or 4D).
    disk_dtype : numpy.dtype
        Stored dtype, with its byte order.
    data_offset : int
        Byte offset of the voxel data in the (decompressed) file.
    slope, inter : float or None
        Scaling to apply to stored values, None when the data is unscaled.
    compressed : bool
        Whether the file is gzip-compressed.
    """

    path: Path
    header: nib.nifti1.Nifti1Header
    shape: tuple
    disk_dtype: np.dtype
    data_offset: int
    slope: float | None
    inter: float | None
    compressed: bool

    @property
    def n_volumes(self) -> int:
        return self.shape[3] if len(self.shape) == 4 else 1

    @property
    def volume_nbytes(self) -> int:
        return int(np.prod(self.shape[:3])) * self.disk_dtype.itemsize

    @property
    def is_scaled(self) -> bool:
        return self.slope is not None

    def scaled_as(self, scaled_dtype) -> np.dtype | None:
        """The ``dtype`` to read this file in when scaled data are wanted as ``scaled_dtype``:
        ``scaled_dtype`` for scaled data, None (the stored dtype) otherwise."""
        return scaled_dtype if self.is_scaled else None

    def value_dtype(self, dtype=None) -> np.dtype:
        """The dtype of the values a reader returns: given, or the natural one."""
        if dtype is not None:
            return np.dtype(dtype)
        if self.is_scaled:
            return np.dtype(np.float64 if self.disk_dtype.itemsize >= 8 else np.float32)
        return self.disk_dtype.newbyteorder("=")


def read_layout(path) -> NiftiLayout:
    """Read the header of a NIfTI file and locate its voxel data.

    Parameters
    ----------
    path : str, os.PathLike or remote file
        A ``.nii`` or ``.nii.gz`` file: a local path, or a remote file given
        as an object with ``open("rb", **fsspec_options)``, ``exists()``,
        ``name`` and a ``str()`` naming it (a :class:`brainxr._storage.Location`
        of a URL).

    Returns
    -------
    NiftiLayout

    Raises
    ------
    InputFileError
        If the file is missing, not NIfTI, or has more than 4 dimensions.
    """
    path = _as_source(path)
    if not path.exists():
        raise InputFileError(path, "file not found")
    try:
        img = _load_header(path)
    except Exception as err:  # nibabel raises many types for bad files
        raise InputFileError(path, f"not a readable NIfTI file ({type(err).__name__}: {err})") from err
    if not isinstance(img, (nib.Nifti1Image, nib.Nifti2Image)):
        raise InputFileError(path, f"expected a NIfTI-1 or NIfTI-2 image, got {type(img).__name__}")
    header = img.header
    shape = tuple(int(n) for n in img.shape)
    if len(shape) == 5 and shape[3] == 1:
        shape = shape[:3] + shape[4:]
    if len(shape) not in (3, 4):
        raise InputFileError(path, f"expected a 3D or 4D image, got shape {shape}")
    # the array proxy holds the file's offset and scaling (the image header is a copy reset for writing)
    proxy = img.dataobj
    slope, inter = float(proxy.slope), float(proxy.inter)
    scaled = not (slope == 1 and inter == 0)
    return NiftiLayout(
        path=path,
        header=header,
        shape=shape,
        disk_dtype=proxy.dtype,
        data_offset=int(proxy.offset),
        slope=slope if scaled else None,
        inter=inter if scaled else None,
        compressed=path.name.endswith(".gz"),
    )


def _as_source(path):
    """A local ``Path``, or a remote file object as given (anything that is not a str or os.PathLike)."""
    return Path(path) if isinstance(path, (str, os.PathLike)) else path


def _open_source(path, block_size: int = 2**23):
    """A binary file object reading ``path`` front to back (remote files read ahead ``block_size`` bytes)."""
    return open(path, "rb") if isinstance(path, Path) else path.open("rb", block_size=block_size)


def _load_header(source):
    """A nibabel image of a file whose header only is read (remote files: a small ranged read).

    Read from a plain stream: ``nib.load`` opens ``.nii.gz`` files through
    ``indexed_gzip``, which costs ~30x more (about 40 ms a file) before the
    header is even parsed.
    """
    with _open_source(source, block_size=2**16) as raw:
        if source.name.endswith(".gz"):
            from isal import igzip

            stream = igzip.GzipFile(fileobj=raw, mode="rb")
        else:
            stream = raw
        sizeof_hdr = int(np.frombuffer(stream.read(4), "<i4")[0])
        stream.seek(0)
        klass = nib.Nifti2Image if sizeof_hdr in (540, 540 << 24) else nib.Nifti1Image
        return klass.from_stream(stream)


def _decode_volumes(raw, layout: NiftiLayout, n_volumes: int, dtype) -> np.ndarray:
    """Turn raw stored bytes of ``n_volumes`` volumes into an ``(I, J, K, n)`` array."""
    stored = raw.view(layout.disk_dtype).reshape(layout.shape[:3] + (n_volumes,), order="F")
    dtype = layout.value_dtype(dtype)
    if layout.is_scaled:
        # scale in float64 then cast, as nibabel's get_fdata does
        values = stored.astype(np.float64) * layout.slope + layout.inter
        return values.astype(dtype, copy=False)
    return stored.astype(dtype, copy=False)


def _gzip_reader(fileobj):
    """A forward stream of the decompressed bytes of a gzip file object (ISA-L).

    isal's C reader, the one ``igzip.GzipFile`` reads through: its
    ``readinto`` inflates straight into the caller's buffer, where
    ``GzipFile.readinto`` inflated into two new buffers and copied (a 2 mm run:
    0.7 GB of fresh memory to page in, and 35% of the CPU time of a read).
    It verifies the gzip CRC and reads concatenated members, as ``GzipFile``.
    """
    from isal.isal_zlib import _GzipReader

    return _GzipReader(fileobj, 2**19)


def _read_exactly(fileobj, n_bytes: int, layout: NiftiLayout, what: str, out: np.ndarray | None = None) -> np.ndarray:
    """Read ``n_bytes`` into ``out`` (a byte array of that size), or a new one (``readinto``: no intermediate copy)."""
    buffer = np.empty(n_bytes, dtype=np.uint8) if out is None else out
    view = memoryview(buffer)
    filled = 0
    try:
        while filled < n_bytes:
            n = fileobj.readinto(view[filled:])
            if not n:
                break
            filled += n
    except (EOFError, OSError, ValueError) as err:
        raise InputFileError(layout.path, f"truncated or corrupt data while reading {what} ({err})") from err
    if filled != n_bytes:
        raise InputFileError(
            layout.path,
            f"truncated file: expected {n_bytes} bytes for {what}, found {filled}",
        )
    return buffer


class _HashingReader:
    """A raw file wrapper that feeds every byte read to a hash (one pass: read and checksum)."""

    def __init__(self, raw, hasher):
        self.raw = raw
        self.hasher = hasher

    def read(self, size=-1):
        data = self.raw.read(size)
        self.hasher.update(data)
        return data

    def readinto(self, buffer):
        n = self.raw.readinto(buffer)
        self.hasher.update(memoryview(buffer)[:n])
        return n

    def __getattr__(self, name):
        return getattr(self.raw, name)


def iter_volume_blocks(path, block_size: int = 16, dtype=None, layout: NiftiLayout | None = None, hasher=None,
                       n_buffers: int | None = None):
    """Stream a NIfTI file once, a block of volumes at a time.

    Parameters
    ----------
    path : str, os.PathLike or remote file
        A local path, or a remote file as in :func:`read_layout` (read front
        to back once, 8 MiB ahead).
    block_size : int
        Number of volumes per block.
    dtype : numpy dtype, optional
        dtype of the values returned (default: float32 for scaled data, the
        stored dtype otherwise).
    layout : NiftiLayout, optional
        Already read header, to avoid reading it again.
    hasher : hashlib hash object, optional
        Updated with every byte of the file as stored (e.g. ``hashlib.sha256()``),
        so a checksum costs no second read.
    n_buffers : int, optional
        Read the blocks into this many buffers, used in turn, instead of a new
        array per block: a block (when returned without a conversion, e.g.
        float32 data read as float32) is then overwritten ``n_buffers``
        blocks later. Fresh memory costs a page fault per page; a 2 mm run
        is 0.7 GB of it.

    Yields
    ------
    start : int
        Index of the first volume of the block.
    block : numpy.ndarray
        ``(I, J, K, n)`` values of volumes ``start`` to ``start + n``.

    Raises
    ------
    InputFileError
        If the file is truncated or its compressed data is corrupt (the gzip
        checksum is verified at the end).
    """
    layout = layout or read_layout(path)
    with _open_source(layout.path) as raw_file:
        raw = _HashingReader(raw_file, hasher) if hasher is not None else raw_file
        stream = _gzip_reader(raw) if layout.compressed else raw
        buffers = []
        try:
            _read_exactly(stream, layout.data_offset, layout, "the header")
            for position, start in enumerate(range(0, layout.n_volumes, block_size)):
                n = min(block_size, layout.n_volumes - start)
                out = None
                if n_buffers:
                    if len(buffers) < n_buffers:
                        buffers.append(np.empty(block_size * layout.volume_nbytes, dtype=np.uint8))
                    out = buffers[position % n_buffers][: n * layout.volume_nbytes]
                data = _read_exactly(stream, n * layout.volume_nbytes, layout, f"volumes {start}-{start + n - 1}", out)
                yield start, _decode_volumes(data, layout, n, dtype)
            # reading to the end verifies the gzip CRC and completes the hash
            try:
                while stream.read(2**20):
                    pass
            except (EOFError, OSError, ValueError) as err:
                raise InputFileError(layout.path, f"corrupt compressed data ({err})") from err
            if hasher is not None:
                while raw.read(2**20):
                    pass
        finally:
            if stream is not raw:
                stream.close()


class _FileReader:
    """Random access to one (possibly gzipped) file, cheapest for forward reads.

    Gzip has no random access. Reads at or after the current position go
    through a forward ISA-L stream (skipping ahead inflates, about twice as
    fast as zlib); a read behind it goes through an ``indexed_gzip`` file whose
    seek index is kept, so chunks in any order cost about one inflation.
    Opened and cached per process by xarray's :class:`~xarray.backends.CachingFileManager`.

    Parameters
    ----------
    path : str
    compressed : bool
    mtime_ns : int
        The file's modification time when it was opened: part of the file
        manager's cache key, so that a rewritten file is opened anew.
    """

    def __init__(self, path: str, compressed: bool, mtime_ns: int | None = None):
        self.path = Path(path)
        self.compressed = compressed
        self.lock = threading.Lock()
        self._indexed = None
        self._file = open(self.path, "rb")
        self._forward = _gzip_reader(self._file) if compressed else self._file
        self._position = 0

    def _skip_to(self, offset: int, what: str) -> None:
        if not self.compressed:
            self._forward.seek(offset)
        else:
            scratch = memoryview(bytearray(min(2**20, max(offset - self._position, 1))))
            while self._position < offset:
                n = self._forward.readinto(scratch[: offset - self._position])
                if not n:
                    raise InputFileError(self.path, f"truncated file while seeking to {what}")
                self._position += n
        self._position = offset

    def read(self, layout: NiftiLayout, offset: int, n_bytes: int, what: str) -> np.ndarray:
        with self.lock:
            try:
                if offset >= self._position or not self.compressed:
                    self._skip_to(offset, what)
                    data = _read_exactly(self._forward, n_bytes, layout, what)
                    self._position = offset + n_bytes
                    return data
                if self._indexed is None:
                    import indexed_gzip

                    self._indexed = indexed_gzip.IndexedGzipFile(
                        str(self.path), drop_handles=False, spacing=4 * 2**20, buffer_size=2**20
                    )
                self._indexed.seek(offset)
                return _read_exactly(self._indexed, n_bytes, layout, what)
            except (EOFError, OSError, ValueError) as err:
                raise InputFileError(self.path, f"truncated or corrupt data while reading {what} ({err})") from err

    def close(self) -> None:
        self._forward.close()
        self._file.close()
        if self._indexed is not None:
            self._indexed.close()


class NiftiBackendArray(BackendArray):
    """The values of a NIfTI file, read lazily a span of volumes at a time.

    Holds the file's layout and a :class:`~xarray.backends.CachingFileManager`
    (which pickles to worker processes and reopens the file there), never the
    data. Supports basic indexing (integers and slices); xarray does the rest.
    """

    def __init__(self, manager: CachingFileManager, layout: NiftiLayout, dtype=None):
        self.manager = manager
        self.layout = layout
        self.dtype = layout.value_dtype(dtype)
        self.shape = layout.shape

    def __getitem__(self, key: indexing.ExplicitIndexer) -> np.ndarray:
        return indexing.explicit_indexing_adapter(key, self.shape, indexing.IndexingSupport.BASIC, self._getitem)

    def _getitem(self, key: tuple) -> np.ndarray:
        if len(self.shape) == 3:
            return self._read(0, 1)[..., 0][key]
        spatial, volumes = key[:3], key[3]
        if isinstance(volumes, (int, np.integer)):
            return self._read(int(volumes), 1)[spatial + (0,)]
        start, stop, step = volumes.indices(self.shape[3])
        indices = range(start, stop, step)
        if not len(indices):
            return np.empty(self.shape[:3] + (0,), dtype=self.dtype)[spatial]
        first, last = min(indices[0], indices[-1]), max(indices[0], indices[-1])
        values = self._read(first, last - first + 1)
        return values[spatial + (slice(indices[0] - first, None if stop - first < 0 else stop - first, step),)]

    def _read(self, first: int, count: int) -> np.ndarray:
        layout = self.layout
        offset = layout.data_offset + first * layout.volume_nbytes
        raw = self.manager.acquire().read(layout, offset, count * layout.volume_nbytes, f"volumes {first}-{first + count - 1}")
        return _decode_volumes(raw, layout, count, self.dtype)


class NiftiBackendEntrypoint(BackendEntrypoint):
    """xarray's ``engine="nifti"``: a NIfTI-1/2 file as a Dataset of one volume variable.

    ``xr.open_dataarray("bold.nii.gz", engine="nifti", chunks={})`` gives the
    same lazy DataArray as :func:`brainxr.open_nifti`: dims ``(i, j, k[,
    time])``, the ``grid`` coordinate, ``time`` with its ``t_r`` and the
    header fields in attrs. Chunks hold whole volumes in space; give the
    volumes per chunk as ``chunks={"time": n}`` (``chunks={}``: one volume
    per chunk, the stored unit).
    """

    description = "NIfTI-1/2 images (.nii, .nii.gz) as brainxr volume arrays"
    url = "https://github.com/brainxr/brainxr/blob/main/docs/architecture.md"
    open_dataset_parameters = ("filename_or_obj", "drop_variables", "dtype")

    def guess_can_open(self, filename_or_obj) -> bool:
        try:
            name = os.fspath(filename_or_obj)
        except TypeError:
            return False
        return str(name).endswith((".nii", ".nii.gz"))

    def open_dataset(self, filename_or_obj, *, drop_variables=None, dtype=None) -> xr.Dataset:
        layout = read_layout(filename_or_obj)
        manager = CachingFileManager(
            _FileReader, str(layout.path), layout.compressed, kwargs={"mtime_ns": layout.path.stat().st_mtime_ns}, lock=False
        )
        array = NiftiBackendArray(manager, layout, dtype)
        name = layout.path.name.split(".nii")[0]
        volume = volume_dataarray(
            indexing.LazilyIndexedArray(array), layout.header, layout.header.get_best_affine(), layout.path, name
        )
        volume.attrs["nifti"].update(scl_slope=layout.slope, scl_inter=layout.inter)
        # stored unit: whole volumes (any number of them per chunk)
        volume.encoding["preferred_chunks"] = dict(zip(volume.dims, layout.shape[:3] + (1,)))
        dataset = volume.to_dataset()
        if drop_variables:
            dataset = dataset.drop_vars(drop_variables, errors="ignore")
        dataset.set_close(manager.close)
        return dataset


def header_to_attrs(header) -> dict:
    """Header fields as plain JSON-able Python values (layout fields excluded)."""
    fields = {}
    for name in header.keys():
        if name in _LAYOUT_FIELDS:
            continue
        value = header[name]
        if value.dtype.kind == "S":
            value = value.item().decode("latin-1") if value.ndim == 0 else [v.decode("latin-1") for v in value]
        else:
            value = value.tolist()
            if isinstance(value, float) and not np.isfinite(value):
                value = None  # NaN (e.g. unset scl_slope) is not valid JSON
        fields[name] = value
    fields["datatype"] = np.dtype(header.get_data_dtype()).newbyteorder("=").str
    return fields


def header_t_r(header) -> float | None:
    """The repetition time (s) a NIfTI header records, None when it records none (``pixdim[4]`` = 0)."""
    zooms = header.get_zooms()
    if len(zooms) < 4 or not zooms[3] > 0:
        return None
    _, time_unit = header.get_xyzt_units()
    return float(zooms[3]) * _TIME_UNIT_SECONDS.get(time_unit, 1.0)


def image_attrs(header, source=None) -> dict:
    """The attrs of a volume DataArray made from a NIfTI header (its geometry goes in coords)."""
    space_unit, time_unit = header.get_xyzt_units()
    attrs = {
        "qform_code": int(header["qform_code"]),
        "sform_code": int(header["sform_code"]),
        "space_units": space_unit,
        "time_units": time_unit,
    }
    if source is not None:
        attrs["source"] = str(source)
    attrs["nifti"] = header_to_attrs(header)
    return attrs


def time_coord(header, n_volumes: int) -> xr.Variable:
    """The ``time`` coordinate of a 4D image: ``toffset + n * t_r`` seconds, with attribute ``t_r``.

    Without a repetition time in the header the values are the volume
    indices and the coordinate has no ``t_r`` (asking for it is an error).
    """
    t_r = header_t_r(header)
    if t_r is None:
        return xr.Variable(TIME_DIM, np.arange(n_volumes, dtype=np.float64))
    return xr.Variable(TIME_DIM, float(header["toffset"]) + t_r * np.arange(n_volumes), {"t_r": t_r})


def volume_dataarray(data, header, affine, source=None, name=None) -> xr.DataArray:
    """Wrap ``(I, J, K[, n])`` values read from a NIfTI image as a labeled volume.

    Coords: the ``grid`` (affine and shape), world ``x, y, z`` for an
    axis-aligned affine, ``time`` (with ``t_r``) for 4D; attrs: the header
    fields :func:`to_nifti` needs to write the image back exactly.
    """
    grid = Grid(data.shape[:3], affine)
    coords = grid.world_coords()
    coords["grid"] = grid.coordinate()
    dims = SPATIAL_DIMS
    if data.ndim == 4:
        dims = SPATIAL_DIMS + (TIME_DIM,)
        coords[TIME_DIM] = time_coord(header, data.shape[3])
    return xr.DataArray(data, dims=dims, coords=coords, attrs=image_attrs(header, source), name=name)


def _auto_time_chunk(layout: NiftiLayout, dtype) -> int:
    import dask

    limit = dask.utils.parse_bytes(dask.config.get("array.chunk-size"))
    volume_bytes = int(np.prod(layout.shape[:3])) * np.dtype(dtype).itemsize
    return int(max(1, min(layout.n_volumes, limit // max(volume_bytes, 1))))


def open_nifti(path, chunks="auto", dtype=None) -> xr.DataArray:
    """Open a NIfTI image as a lazy, labeled DataArray.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.nii`` or ``.nii.gz`` file, 3D or 4D.
    chunks : "auto", int, dict or None
        Volumes per chunk along ``time`` (``"auto"``: about dask's
        ``array.chunk-size``; a dict may give ``{"time": n}``). ``None``
        reads the whole image now into a numpy-backed DataArray.
    dtype : numpy dtype, optional
        dtype of the values. Default: float32 for scaled images (float64 if
        stored as float64), the stored dtype otherwise.

    Returns
    -------
    xarray.DataArray
        Dims ``(i, j, k)`` or ``(i, j, k, time)``; coords ``grid`` (affine
        and shape, see :mod:`brainxr.geometry`), ``time`` (s, with ``t_r``)
        and, for axis-aligned affines, ``x``, ``y``, ``z`` (mm); attrs
        ``qform_code``, ``sform_code``, units, ``source`` and ``nifti`` (the
        header fields :func:`to_nifti` needs).

    Notes
    -----
    A thin convenience over the xarray backend
    (``xr.open_dataarray(path, engine="nifti", chunks={})``, see
    :class:`NiftiBackendEntrypoint`); open files are cached per process by
    xarray's file manager.

    Examples
    --------
    >>> bold = brainxr.open_nifti("sub-01_task-rest_desc-preproc_bold.nii.gz")
    >>> bold.sel(time=slice(0, 60)).mean("time")
    """
    if chunks is None:
        return xr.open_dataarray(path, engine=NiftiBackendEntrypoint, dtype=dtype).load()
    if isinstance(chunks, dict):
        chunks = chunks.get(TIME_DIM, "auto")
    layout = read_layout(path)
    if len(layout.shape) == 3:
        volumes = {}
    else:
        n = _auto_time_chunk(layout, layout.value_dtype(dtype)) if chunks == "auto" else int(chunks)
        volumes = {TIME_DIM: n}
    return xr.open_dataarray(path, engine=NiftiBackendEntrypoint, dtype=dtype, chunks=volumes)


def read_values(path, dtype=None, layout: NiftiLayout | None = None) -> np.ndarray:
    """The values of a whole NIfTI file, read now in one streaming pass: ``open_nifti(path, dtype=dtype).values``.

    Parameters
    ----------
    path : str or os.PathLike
        A 3D or 4D ``.nii`` or ``.nii.gz`` file.
    dtype : numpy dtype, optional
        As in :func:`open_nifti`.
    layout : NiftiLayout, optional
        Already read header, to avoid reading it again.
    """
    layout = layout or read_layout(path)
    ((_, values),) = iter_volume_blocks(layout.path, block_size=layout.n_volumes, dtype=dtype, layout=layout)
    return values if len(layout.shape) == 4 else values[..., 0]


def nibabel_values(img, scaled_dtype=np.float32) -> np.ndarray:
    """The values of an in-memory nibabel image, as :func:`from_nibabel` wraps them.

    Scaled data (``scl_slope``/``scl_inter``) are scaled in float64, as
    nibabel does, and returned as ``scaled_dtype``; a 5D image with one
    volume along its 4th axis is read as 4D.
    """
    data = np.asanyarray(img.dataobj.get_unscaled() if hasattr(img.dataobj, "get_unscaled") else img.dataobj)
    if data.ndim == 5 and data.shape[3] == 1:
        data = data[:, :, :, 0, :]
    if data.ndim not in (3, 4):
        raise ValueError(f"img: expected a 3D or 4D image, got shape {data.shape}")
    slope, inter = _nibabel_scaling(img)
    if slope is not None:
        data = (data.astype(np.float64) * slope + inter).astype(scaled_dtype)
    return data


def _nibabel_scaling(img) -> tuple:
    """``(slope, inter)`` of a scaled nibabel image, ``(None, None)`` otherwise."""
    slope = float(getattr(img.dataobj, "slope", 1.0))
    inter = float(getattr(img.dataobj, "inter", 0.0))
    return (None, None) if slope == 1 and inter == 0 else (slope, inter)


def from_nibabel(img, name=None, scaled_dtype=np.float32) -> xr.DataArray:
    """Wrap an in-memory nibabel image as a (numpy-backed) volume DataArray.

    Scaled data (``scl_slope``/``scl_inter``) are scaled in float64, as
    nibabel does, and returned as ``scaled_dtype``.

    Parameters
    ----------
    img : nibabel.Nifti1Image
        A 3D or 4D image.
    name : str, optional
        Name of the DataArray.
    scaled_dtype : numpy dtype
        dtype of the values of a scaled image.
    """
    volume = volume_dataarray(nibabel_values(img, scaled_dtype), img.header, img.affine, img.get_filename(), name)
    slope, inter = _nibabel_scaling(img)
    volume.attrs["nifti"].update(scl_slope=slope, scl_inter=inter)
    return volume


def _volume_order(da: xr.DataArray) -> xr.DataArray:
    """Transpose to ``(i, j, k[, time])`` or say why it cannot be written."""
    dims = set(da.dims)
    if not set(SPATIAL_DIMS) <= dims or not dims <= set(SPATIAL_DIMS) | {TIME_DIM}:
        raise ValueError(
            f"da: expected dims {SPATIAL_DIMS} plus optionally '{TIME_DIM}', got {da.dims}; "
            "use brainxr.unmask() first for (time, voxel) data"
        )
    order = SPATIAL_DIMS + ((TIME_DIM,) if TIME_DIM in dims else ())
    return da.transpose(*order)


def _build_header(da: xr.DataArray, disk_dtype: np.dtype) -> nib.Nifti1Header:
    """A header for ``da``: restored from its attrs, updated for its data."""
    attrs = da.attrs
    fields = dict(attrs.get("nifti", {}))
    header = nib.Nifti1Header()
    for name, value in fields.items():
        if name in _LAYOUT_FIELDS or name not in header or value is None:
            continue
        header[name] = value
    header.set_data_dtype(disk_dtype)
    header.set_data_shape(da.shape)
    affine = get_grid(da, "da").affine
    stored_sform = header.get_sform() if fields else None
    if stored_sform is None or not np.allclose(stored_sform, affine) or header["sform_code"] == 0 and header["qform_code"] == 0:
        # affine changed (or no header to restore): make both forms describe it
        header.set_sform(affine, code=int(attrs.get("sform_code") or 2))
        header.set_qform(affine, code=int(attrs.get("qform_code") or 2))
    if "space_units" in attrs or "time_units" in attrs:
        header.set_xyzt_units(attrs.get("space_units", "mm"), attrs.get("time_units", "sec"))
    elif not fields:
        header.set_xyzt_units("mm", "sec")
    zooms = list(header.get_zooms())
    if da.ndim == 4:
        # pixdim[4] = 0 records "no repetition time" (never a made-up one)
        t_r = get_t_r(da, "da", required=False)
        _, time_unit = header.get_xyzt_units()
        zooms[3] = 0.0 if t_r is None else t_r / _TIME_UNIT_SECONDS.get(time_unit, 1.0)
        header.set_zooms(zooms)
    return header


def _disk_dtype(da: xr.DataArray, dtype) -> np.dtype:
    if dtype is not None:
        return np.dtype(dtype)
    stored = da.attrs.get("nifti", {}).get("datatype")
    return np.dtype(stored) if stored else np.dtype(da.dtype)


def _stored_scaling(da: xr.DataArray):
    fields = da.attrs.get("nifti", {})
    slope, inter = fields.get("scl_slope"), fields.get("scl_inter")
    if slope is None or not np.isfinite(slope) or slope == 0:
        return None
    inter = inter if inter is not None and np.isfinite(inter) else 0.0
    if slope == 1 and inter == 0:
        return None
    return float(slope), float(inter)


def _to_stored(values: np.ndarray, disk_dtype: np.dtype, scaling) -> np.ndarray:
    """Convert image values to the stored representation (inverse of the scaling)."""
    if scaling is not None:
        slope, inter = scaling
        values = np.round((values.astype(np.float64) - inter) / slope)
    if disk_dtype.kind in "iu":
        if values.dtype.kind == "f":
            info = np.iinfo(disk_dtype)
            values = np.clip(np.round(values), info.min, info.max)
    return values.astype(disk_dtype, copy=False)


class StreamingNiftiWriter:
    """Write a NIfTI-1 image a block of volumes at a time.

    The header goes first, then each block in the file's (Fortran) order;
    ``.nii.gz`` is compressed by ISA-L in a background thread, so compression
    overlaps with producing the next block, and the gzip header carries no
    name or time stamp (the same data give the same bytes). The file is written
    under a temporary name and appears only once every volume is in; on error
    or a missing volume nothing is left behind.

    Parameters
    ----------
    path : str or os.PathLike
        Output file (``.nii`` or ``.nii.gz``).
    header : nibabel.Nifti1Header
        Header of the whole image; its shape says how many volumes to expect.
    compresslevel : int
        ISA-L gzip level (0-3).

    Examples
    --------
    >>> with StreamingNiftiWriter("out.nii.gz", header) as writer:
    ...     for block in blocks:  # (I, J, K, n) arrays in the header's dtype
    ...         writer.write(block)
    """

    def __init__(self, path, header, compresslevel: int = 1):
        self.path = Path(path)
        self.header = header.copy()
        self.header.set_data_offset(_VOX_OFFSET)
        shape = self.header.get_data_shape()
        self.spatial_shape = tuple(int(n) for n in shape[:3])
        self.n_volumes = int(shape[3]) if len(shape) > 3 else 1
        self.dtype = self.header.get_data_dtype()
        self.n_written = 0
        self._tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}-{threading.get_ident()}")
        if self.path.name.endswith(".gz"):
            from isal import igzip_threaded

            self._stream = igzip_threaded.open(self._tmp, "wb", compresslevel=compresslevel, threads=1)
        else:
            self._stream = open(self._tmp, "wb")
        self._stream.write(self.header.binaryblock)
        self._stream.write(b"\x00" * (_VOX_OFFSET - len(self.header.binaryblock)))

    def write(self, block) -> None:
        """Append volumes: ``block`` is ``(I, J, K[, n])`` in the header's dtype."""
        block = np.asarray(block)
        if block.ndim == 3:
            block = block[..., None]
        if block.shape[:3] != self.spatial_shape or block.dtype != self.dtype:
            raise ValueError(
                f"{self.path}: expected blocks of shape {self.spatial_shape} + (n,) and dtype {self.dtype}, "
                f"got {block.shape} {block.dtype}"
            )
        # C order of the transposed block is the NIfTI (Fortran) order
        self._write_bytes(np.ascontiguousarray(block.T), block.shape[3])

    def write_file_ordered(self, volumes) -> None:
        """Append volumes given as a C-contiguous ``(n, I * J * K)`` array in file order (i fastest)."""
        volumes = np.ascontiguousarray(volumes, dtype=self.dtype)
        if volumes.ndim != 2 or volumes.shape[1] != int(np.prod(self.spatial_shape)):
            raise ValueError(f"{self.path}: expected an array of shape (n, {int(np.prod(self.spatial_shape))}), got {volumes.shape}")
        self._write_bytes(volumes, volumes.shape[0])

    def _write_bytes(self, array: np.ndarray, n_volumes: int) -> None:
        if self.n_written + n_volumes > self.n_volumes:
            raise ValueError(f"{self.path}: more than the {self.n_volumes} volumes of the header were written")
        self._stream.write(memoryview(array).cast("B"))
        self.n_written += n_volumes

    def close(self) -> Path:
        """Finish the file; raise if volumes are missing (nothing is left then)."""
        try:
            self._stream.close()
            if self.n_written != self.n_volumes:
                raise ValueError(f"{self.path}: {self.n_written} volumes written, the header says {self.n_volumes}")
            os.replace(self._tmp, self.path)
        finally:
            if self._tmp.exists():
                self._tmp.unlink()
        return self.path

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            try:
                self._stream.close()
            finally:
                if self._tmp.exists():
                    self._tmp.unlink()
        return False


class _OrderedVolumeSink:
    """A ``dask.array.store`` target that hands volume blocks to a writer in time order.

    Blocks may arrive in any order; each is held until all earlier volumes are
    written, so one pass of the graph writes the file.
    """

    def __init__(self, writer: StreamingNiftiWriter, shape, convert):
        self.writer = writer
        self.shape = shape
        self.ndim = len(shape)
        self.dtype = None
        self.convert = convert
        self.pending = {}
        self.next_volume = 0
        self.lock = threading.Lock()

    def __setitem__(self, key, block):
        start = (key[3].start or 0) if self.ndim == 4 else 0
        with self.lock:
            self.pending[start] = np.asarray(block)
            while self.next_volume in self.pending:
                ready = self.pending.pop(self.next_volume)
                self.writer.write(self.convert(ready))
                self.next_volume += ready.shape[3] if self.ndim == 4 else 1


def to_nifti(da: xr.DataArray, path, dtype=None, compresslevel: int = 1) -> Path:
    """Write a volume DataArray to a NIfTI file.

    The header is restored from ``da.attrs`` (as set by :func:`open_nifti`),
    so NIfTI -> xarray -> NIfTI is exact: data, stored dtype and scaling,
    affine, qform/sform codes, units and TR. Dask-backed arrays are written
    block by block in one pass. The file appears only once complete.

    Parameters
    ----------
    da : xarray.DataArray
        Dims ``(i, j, k)`` or ``(i, j, k, time)`` in any order.
    path : str or os.PathLike
        Output file; ``.nii.gz`` is compressed.
    dtype : numpy dtype, optional
        Stored dtype (default: the one recorded in ``da.attrs["nifti"]``, or
        the data's dtype).
    compresslevel : int
        gzip level (ISA-L levels 0-3).

    Returns
    -------
    pathlib.Path
    """
    da = _volume_order(da)
    disk_dtype = _disk_dtype(da, dtype)
    scaling = _stored_scaling(da) if disk_dtype.kind in "iu" else None
    header = _build_header(da, disk_dtype)
    header.set_slope_inter(*(scaling if scaling is not None else (np.nan, np.nan)))
    with StreamingNiftiWriter(path, header, compresslevel=compresslevel) as writer:
        sink = _OrderedVolumeSink(writer, da.shape, lambda v: _to_stored(v, disk_dtype, scaling))
        data = da.data
        if is_dask_array(data):
            data.store(sink, lock=False)
        elif da.ndim == 4:
            step = max(1, 2**27 // max(1, int(np.prod(da.shape[:3])) * 8))
            for start in range(0, da.shape[3], step):
                sink[(slice(None),) * 3 + (slice(start, start + step),)] = data[..., start : start + step]
        else:
            sink[(slice(None),) * 3] = data
    return Path(path)


def to_nibabel(da: xr.DataArray) -> nib.Nifti1Image:
    """An in-memory nibabel image of a volume DataArray (computes dask data).

    Parameters
    ----------
    da : xarray.DataArray
        A volume ``(i, j, k[, time])`` with its grid.
    """
    da = _volume_order(da)
    values = np.asarray(da.values)
    disk_dtype = np.dtype(values.dtype)
    if disk_dtype == np.float16 or disk_dtype.kind == "b":
        values = values.astype(np.float32 if disk_dtype.kind == "f" else np.uint8)
        disk_dtype = values.dtype
    header = _build_header(da.copy(data=values), disk_dtype)
    header.set_slope_inter(np.nan, np.nan)
    return nib.Nifti1Image(values, get_grid(da, "da").affine, header=header)
