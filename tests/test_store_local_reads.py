"""A local store's arrays are read and decoded in the calling thread, equal to what Zarr reads."""

import numpy as np
import pytest
import zarr
from zarr.codecs import BloscCodec, Crc32cCodec, ShardingCodec, TransposeCodec

from brainxr import store as cohort_store
from brainxr.errors import StoreDamageError

SELECTIONS = [
    (),
    (slice(None), slice(None)),
    (slice(2, 9),),
    (slice(1, 8), slice(3, 10)),  # across chunk boundaries on both axes
    (slice(3, 6), slice(4, 8)),  # one whole chunk
    (slice(4, 5), slice(5, 6)),  # inside one chunk
    (slice(5, 5), slice(None)),  # empty
    (slice(None), slice(-3, None)),  # the edge chunks
]

CODECS = {  # create_array's codec arguments
    "bytes": {"compressors": None},
    "blosc+crc32c": {"compressors": [BloscCodec(cname="lz4", shuffle="shuffle"), Crc32cCodec()]},
    "transpose+blosc": {"filters": [TransposeCodec(order=(1, 0))], "compressors": [BloscCodec(cname="zstd")]},
}


def _values(dtype):
    values = (np.arange(10 * 11, dtype=np.float64).reshape(10, 11) / 7).astype(dtype)
    if values.dtype.kind == "f":
        values[2, 3] = np.nan
    return values


@pytest.fixture
def root(tmp_path):
    return tmp_path / "s.zarr"


@pytest.mark.parametrize("codecs", list(CODECS))
@pytest.mark.parametrize("dtype", ["float32", "float64", "int16", "bool"])
def test_local_reads_equal_zarr_reads(root, codecs, dtype):
    array = zarr.create_array(root, name="a", shape=(10, 11), chunks=(3, 4), dtype=dtype, fill_value=0,
                              **CODECS[codecs])
    array[...] = _values(dtype)
    for selection in SELECTIONS:
        read = cohort_store.read_run_arrays(root, None, {"a": selection})["a"]
        expected = array[selection if selection != () else ...]
        assert read.dtype == expected.dtype and read.shape == expected.shape, selection
        np.testing.assert_array_equal(read, expected)
        assert read.flags.writeable and read.flags.c_contiguous


def test_local_reads_take_the_fill_value_of_unwritten_chunks_and_read_strings(root):
    array = zarr.create_array(root, name="a", shape=(10, 11), chunks=(3, 4), dtype="float32", fill_value=np.nan)
    array[:3, :4] = 1.0
    names = zarr.create_array(root, name="names", shape=(5,), chunks=(2,), dtype=str)
    names[...] = np.array(["global_signal", "csf", "", "trans_x", "é"])
    read = cohort_store.read_run_arrays(root, None, {"a": (), "names": (slice(1, 5),)})
    np.testing.assert_array_equal(read["a"], array[...])
    assert list(read) == ["a", "names"]
    assert read["names"].dtype == names[...].dtype
    assert read["names"].tolist() == ["csf", "", "trans_x", "é"]


def test_sharded_arrays_and_strided_selections_are_read_by_zarr(root, monkeypatch):
    sharded = zarr.create_array(root, name="a", shape=(8, 8), chunks=(2, 2), shards=(4, 4), dtype="float64")
    sharded[...] = np.arange(64.0).reshape(8, 8)
    assert isinstance(sharded.metadata.codecs[0], ShardingCodec)
    plain = zarr.create_array(root, name="b", shape=(8, 8), chunks=(4, 4), dtype="float64")
    plain[...] = np.arange(64.0).reshape(8, 8)
    through_zarr = []
    real_sync = cohort_store.zarr_sync

    def counting_sync(coroutine):
        through_zarr.append(1)
        return real_sync(coroutine)

    monkeypatch.setattr(cohort_store, "zarr_sync", counting_sync)
    for name, selection, expected in [("a", (slice(1, 7),), sharded[1:7]), ("b", (slice(0, 8, 2),), plain[0:8:2]),
                                      ("b", (slice(1, 7),), plain[1:7])]:
        np.testing.assert_array_equal(cohort_store.read_run_arrays(root, None, {name: selection})[name], expected)
    assert len(through_zarr) == 2  # the sharded and the strided read; the plain slice was read locally


def test_local_reads_do_not_go_through_zarrs_event_loop(root, monkeypatch):
    zarr.create_array(root, name="a", shape=(10, 11), chunks=(3, 4), dtype="float32",
                      **CODECS["blosc+crc32c"])[...] = _values("float32")

    def no_event_loop(coroutine):
        coroutine.close()
        raise AssertionError("read through Zarr's event loop")

    monkeypatch.setattr(cohort_store, "zarr_sync", no_event_loop)
    np.testing.assert_array_equal(cohort_store.read_run_arrays(root, None, {"a": ()})["a"], _values("float32"))


def test_a_read_only_read_is_a_view_of_the_decoded_chunk_and_leaves_the_store_unchanged(root):
    array = zarr.create_array(root, name="a", shape=(10, 11), chunks=(10, 11), dtype="float32",
                              **CODECS["blosc+crc32c"])
    array[...] = _values("float32")
    view = cohort_store.read_run_arrays(root, None, {"a": ()}, writeable=False)["a"]
    np.testing.assert_array_equal(view, _values("float32"))
    copy = cohort_store.read_run_arrays(root, None, {"a": ()})["a"]
    copy[...] = -1
    np.testing.assert_array_equal(cohort_store.read_run_arrays(root, None, {"a": ()})["a"], _values("float32"))


def test_local_reads_report_damage(root):
    array = zarr.create_array(root, name="a", shape=(10, 11), chunks=(3, 4), dtype="float32",
                              **CODECS["blosc+crc32c"])
    array[...] = _values("float32")
    chunk = root / "a" / "c" / "1" / "2"
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0xFF
    chunk.write_bytes(bytes(data))
    with pytest.raises(StoreDamageError, match="checksum"):
        cohort_store.read_run_arrays(root, None, {"a": (slice(3, 6), slice(8, 11))})
    np.testing.assert_array_equal(  # the chunks around it still read
        cohort_store.read_run_arrays(root, None, {"a": (slice(0, 3),)})["a"], _values("float32")[:3])
    chunk.unlink()
    with pytest.raises(StoreDamageError, match="chunk '1/2' is missing"):
        cohort_store.read_run_arrays(root, None, {"a": ()})
    with pytest.raises(StoreDamageError, match="the array is missing"):
        cohort_store.read_run_arrays(root, None, {"b": ()})
