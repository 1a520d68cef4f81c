"""Read and write TensorFlow V2 checkpoints (tensor bundles) without TensorFlow.

A TensorFlow checkpoint ``model.ckpt`` is two kinds of file:

- ``model.ckpt.index``: a LevelDB-format SSTable (sorted string table). Its keys are
  tensor names; the value under the empty key is a ``BundleHeaderProto`` (number of
  shards, endianness) and every other value is a ``BundleEntryProto`` (dtype, shape,
  shard id, byte offset and size in the shard, masked CRC32C of the bytes).
- ``model.ckpt.data-00000-of-00001`` (one file per shard): the raw little-endian tensor
  bytes, one tensor after another.

This module implements the pieces needed to read that format faithfully and nothing
more: a protobuf wire-format decoder/encoder (varints and length-delimited fields), the
SSTable block format (prefix-compressed keys, restart points, block trailers with a
compression byte and masked CRC32C, a 48-byte footer with a magic number), a Snappy
decompressor (TensorFlow writes bundles uncompressed, but LevelDB tables may be
compressed), and a CRC32C that is fast enough in NumPy to verify 50 MB shards.

References: ``tensorflow/core/lib/io/{format,block,table_builder}.cc``,
``tensorflow/core/util/tensor_bundle/tensor_bundle.{proto,cc}``,
``tensorflow/core/framework/{types,tensor_shape}.proto``.
"""

from __future__ import annotations

import difflib
import itertools
import math
import os
import struct
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hartutor.errors import WeightsError

__all__ = [
    "TensorEntry",
    "crc32c",
    "load_tf_checkpoint",
    "mask_crc32c",
    "read_tf_checkpoint_index",
    "resolve_checkpoint_prefix",
    "unmask_crc32c",
    "write_tf_checkpoint",
]

# An index of a few hundred MB would already describe millions of tensors; anything larger
# is not a checkpoint index and is refused before it is read into memory.
MAX_INDEX_BYTES = 256 * 1024 * 1024
#: A tensor shape counting more elements is refused (2**62: its byte size still fits int64).
MAX_ELEMENTS = 2**62
#: Snappy expands at most ~21x (a 3-byte copy tag writes 64 bytes); the blocks of an index,
#: which must not overlap, may decode to this many times the file's size at most.
MAX_DECODE_RATIO = 24
TABLE_MAGIC = 0xDB4775248B80FB57  # kTableMagicNumber (LevelDB)
FOOTER_BYTES = 48  # two BlockHandles padded to 40 bytes + 8-byte magic
BLOCK_TRAILER_BYTES = 5  # 1 byte compression type + 4 bytes masked crc32c
NO_COMPRESSION, SNAPPY_COMPRESSION = 0, 1
# TensorFlow's table::Options defaults used by the bundle writer.
DATA_BLOCK_BYTES = 262_144
DATA_RESTART_INTERVAL = 16

# tensorflow/core/framework/types.proto: DataType -> NumPy dtype (little-endian).
_DTYPES: dict[int, np.dtype] = {
    1: np.dtype("<f4"),  # DT_FLOAT
    2: np.dtype("<f8"),  # DT_DOUBLE
    3: np.dtype("<i4"),  # DT_INT32
    4: np.dtype("u1"),  # DT_UINT8
    5: np.dtype("<i2"),  # DT_INT16
    6: np.dtype("i1"),  # DT_INT8
    8: np.dtype("<c8"),  # DT_COMPLEX64
    9: np.dtype("<i8"),  # DT_INT64
    10: np.dtype("?"),  # DT_BOOL
    17: np.dtype("<u2"),  # DT_UINT16
    18: np.dtype("<c16"),  # DT_COMPLEX128
    19: np.dtype("<f2"),  # DT_HALF
    22: np.dtype("<u4"),  # DT_UINT32
    23: np.dtype("<u8"),  # DT_UINT64
}
DT_BFLOAT16 = 14  # stored as the top 16 bits of a float32; returned as float32
_DTYPE_NAMES = {
    1: "float32",
    2: "float64",
    3: "int32",
    4: "uint8",
    5: "int16",
    6: "int8",
    7: "string",
    8: "complex64",
    9: "int64",
    10: "bool",
    14: "bfloat16",
    17: "uint16",
    18: "complex128",
    19: "float16",
    20: "resource",
    21: "variant",
    22: "uint32",
    23: "uint64",
}
_NUMPY_TO_DT = {dtype: code for code, dtype in _DTYPES.items()}


@dataclass(frozen=True)
class TensorEntry:
    """Where one tensor lives in a checkpoint (one ``BundleEntryProto``)."""

    name: str
    dtype: str  # NumPy-style name: "float32", "int64", "bfloat16", ...
    shape: tuple[int, ...]
    shard_id: int
    offset: int
    size: int  # bytes in the data shard
    crc32c: int | None  # masked, as stored by TensorFlow; None when absent
    dtype_code: int = 1  # TensorFlow DataType enum value
    sliced: bool = False  # a partitioned variable: data lives in slice entries

    @property
    def num_elements(self) -> int:
        """Product of the shape (1 for a scalar), in Python integers (no int64 overflow)."""
        return math.prod(self.shape)


# --------------------------------------------------------------------------- CRC32C


def _make_crc32c_table() -> np.ndarray:
    poly = 0x82F63B78  # Castagnoli, reflected
    table = np.zeros(256, dtype=np.uint32)
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ poly if crc & 1 else crc >> 1
        table[byte] = crc
    return table


_CRC_TABLE = _make_crc32c_table()
_CRC_TABLE_LIST = [int(x) for x in _CRC_TABLE]
_LANES_MIN_BYTES = 1 << 14  # below this a plain loop is as fast as the NumPy lanes


def _crc_loop(state: int, data: bytes | memoryview) -> int:
    table = _CRC_TABLE_LIST
    for byte in bytes(data):
        state = table[(state ^ byte) & 0xFF] ^ (state >> 8)
    return state


def _apply(matrix: Sequence[int], vector: int) -> int:
    """GF(2) matrix (32 column words) times a 32-bit vector."""
    out, bit = 0, 0
    while vector:
        if vector & 1:
            out ^= matrix[bit]
        vector >>= 1
        bit += 1
    return out


def _compose(outer: Sequence[int], inner: Sequence[int]) -> list[int]:
    return [_apply(outer, column) for column in inner]


_ONE_ZERO_BYTE = [_crc_loop(1 << i, b"\0") for i in range(32)]
_zero_ops: dict[int, list[int]] = {}


def _zeros_operator(num_bytes: int) -> list[int]:
    """Linear map taking a CRC register to its value after ``num_bytes`` zero bytes."""
    if num_bytes in _zero_ops:
        return _zero_ops[num_bytes]
    result = [1 << i for i in range(32)]  # identity
    square, n = _ONE_ZERO_BYTE, num_bytes
    while n:
        if n & 1:
            result = _compose(square, result)
        n >>= 1
        if n:
            square = _compose(square, square)
    _zero_ops[num_bytes] = result
    return result


def _apply_vectorized(matrix: Sequence[int], vectors: np.ndarray) -> np.ndarray:
    out = np.zeros_like(vectors)
    for bit, column in enumerate(matrix):
        out ^= ((vectors >> np.uint32(bit)) & np.uint32(1)) * np.uint32(column)
    return out


def _raw_crc(data: np.ndarray) -> int:
    """CRC register after ``data`` starting from 0, with no final xor (a linear function).

    Large inputs are cut into up to 65536 equal lanes processed side by side with NumPy,
    then combined pairwise: ``raw(A + B) = zeros_op(len(B))(raw(A)) ^ raw(B)``.
    """
    n = int(data.size)
    if n < _LANES_MIN_BYTES:
        return _crc_loop(0, memoryview(data))
    lanes = 1 << min(16, (n // 256).bit_length() - 1)
    lane_len = n // lanes
    head = np.ascontiguousarray(data[: lanes * lane_len].reshape(lanes, lane_len).T)
    state = np.zeros(lanes, dtype=np.uint32)
    table, low_byte, eight = _CRC_TABLE, np.uint32(0xFF), np.uint32(8)
    for row in head:
        state = table[(state ^ row) & low_byte] ^ (state >> eight)
    length = lane_len
    while state.size > 1:
        state = _apply_vectorized(_zeros_operator(length), state[0::2]) ^ state[1::2]
        length *= 2
    raw = int(state[0])
    tail = data[lanes * lane_len :]
    if tail.size:
        raw = _apply(_zeros_operator(int(tail.size)), raw) ^ _raw_crc(tail)
    return raw


def crc32c(data: bytes | bytearray | memoryview | np.ndarray) -> int:
    """CRC-32C (Castagnoli) of ``data``, as TensorFlow and LevelDB compute it."""
    array = np.frombuffer(memoryview(data).cast("B"), dtype=np.uint8)
    n = int(array.size)
    return _apply(_zeros_operator(n), 0xFFFFFFFF) ^ _raw_crc(array) ^ 0xFFFFFFFF


_MASK_DELTA = 0xA282EAD8


def mask_crc32c(crc: int) -> int:
    """TensorFlow/LevelDB's CRC masking (stored CRCs are masked)."""
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + _MASK_DELTA) & 0xFFFFFFFF


def unmask_crc32c(masked: int) -> int:
    """Inverse of :func:`mask_crc32c`."""
    rot = (masked - _MASK_DELTA) & 0xFFFFFFFF
    return ((rot >> 17) | (rot << 15)) & 0xFFFFFFFF


# ------------------------------------------------------------------ protobuf wire format


class _FormatError(ValueError):
    """Internal: malformed bytes; turned into a WeightsError naming the file."""


def _read_varint(buf: bytes | memoryview, pos: int, limit: int | None = None) -> tuple[int, int]:
    end = len(buf) if limit is None else limit
    result = shift = 0
    while True:
        if pos >= end:
            raise _FormatError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise _FormatError("varint longer than 10 bytes")


def _encode_varint(value: int) -> bytes:
    if value < 0:
        value &= (1 << 64) - 1  # protobuf encodes negative int64 as 10-byte two's complement
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _iter_fields(buf: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """Yield ``(field_number, wire_type, value)`` of a serialized protobuf message."""
    pos, end = 0, len(buf)
    while pos < end:
        tag, pos = _read_varint(buf, pos)
        field, wire = tag >> 3, tag & 7
        if field == 0:
            raise _FormatError("protobuf field number 0")
        if wire == 0:
            value, pos = _read_varint(buf, pos)
        elif wire == 1:
            if pos + 8 > end:
                raise _FormatError("truncated fixed64")
            value = struct.unpack_from("<Q", buf, pos)[0]
            pos += 8
        elif wire == 2:
            length, pos = _read_varint(buf, pos)
            if pos + length > end:
                raise _FormatError("length-delimited field runs past the message")
            value = bytes(buf[pos : pos + length])
            pos += length
        elif wire == 5:
            if pos + 4 > end:
                raise _FormatError("truncated fixed32")
            value = struct.unpack_from("<I", buf, pos)[0]
            pos += 4
        else:
            raise _FormatError(f"unsupported protobuf wire type {wire}")
        yield field, wire, value


def _signed64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _decode_shape(buf: bytes) -> tuple[int, ...]:
    """TensorShapeProto: repeated Dim dim = 2 {int64 size = 1; string name = 2}."""
    dims: list[int] = []
    for field, wire, value in _iter_fields(buf):
        if field == 2 and wire == 2:
            size = 0
            for dim_field, dim_wire, dim_value in _iter_fields(value):  # type: ignore[arg-type]
                if dim_field == 1 and dim_wire == 0:
                    size = _signed64(dim_value)  # type: ignore[arg-type]
            if size < 0:
                raise _FormatError(f"unknown dimension ({size}) in a saved tensor shape")
            dims.append(size)
        elif field == 3 and wire == 0 and value:
            raise _FormatError("saved tensor shape has unknown rank")
    if math.prod(dims) > MAX_ELEMENTS:
        raise _FormatError(
            f"saved tensor shape {dims} has {math.prod(dims)} elements, more than int64 can "
            "count or any checkpoint holds"
        )
    return tuple(dims)


def _decode_entry(name: str, buf: bytes) -> TensorEntry:
    """BundleEntryProto: dtype=1, shape=2, shard_id=3, offset=4, size=5, crc32c=6, slices=7."""
    dtype_code, shape, shard_id, offset, size, crc, sliced = 0, (), 0, 0, 0, None, False
    for field, wire, value in _iter_fields(buf):
        if field == 1 and wire == 0:
            dtype_code = int(value)  # type: ignore[arg-type]
        elif field == 2 and wire == 2:
            shape = _decode_shape(value)  # type: ignore[arg-type]
        elif field == 3 and wire == 0:
            shard_id = int(value)  # type: ignore[arg-type]
        elif field == 4 and wire == 0:
            offset = _signed64(value)  # type: ignore[arg-type]
        elif field == 5 and wire == 0:
            size = _signed64(value)  # type: ignore[arg-type]
        elif field == 6 and wire == 5:
            crc = int(value)  # type: ignore[arg-type]
        elif field == 7:
            sliced = True
    if offset < 0 or size < 0:
        raise _FormatError(f"tensor {name!r} has a negative offset or size")
    return TensorEntry(
        name=name,
        dtype=_DTYPE_NAMES.get(dtype_code, f"DataType({dtype_code})"),
        shape=shape,
        shard_id=shard_id,
        offset=offset,
        size=size,
        crc32c=crc,
        dtype_code=dtype_code,
        sliced=sliced,
    )


def _decode_header(buf: bytes) -> dict[str, int]:
    """BundleHeaderProto: num_shards=1, endianness=2 (0 little, 1 big), version=3."""
    header = {"num_shards": 0, "endianness": 0, "producer": 0, "min_consumer": 0}
    for field, wire, value in _iter_fields(buf):
        if field == 1 and wire == 0:
            header["num_shards"] = int(value)  # type: ignore[arg-type]
        elif field == 2 and wire == 0:
            header["endianness"] = int(value)  # type: ignore[arg-type]
        elif field == 3 and wire == 2:
            for v_field, v_wire, v_value in _iter_fields(value):  # type: ignore[arg-type]
                if v_field == 1 and v_wire == 0:
                    header["producer"] = int(v_value)  # type: ignore[arg-type]
                elif v_field == 2 and v_wire == 0:
                    header["min_consumer"] = int(v_value)  # type: ignore[arg-type]
    return header


def _field(number: int, wire: int) -> bytes:
    return _encode_varint(number << 3 | wire)


def _length_delimited(number: int, payload: bytes) -> bytes:
    return _field(number, 2) + _encode_varint(len(payload)) + payload


def _encode_entry(
    dtype_code: int, shape: tuple[int, ...], shard: int, offset: int, size: int, crc: int
) -> bytes:
    dims = b"".join(
        _length_delimited(2, _field(1, 0) + _encode_varint(d) if d else b"") for d in shape
    )
    out = _field(1, 0) + _encode_varint(dtype_code) + _length_delimited(2, dims)
    if shard:
        out += _field(3, 0) + _encode_varint(shard)
    if offset:
        out += _field(4, 0) + _encode_varint(offset)
    if size:
        out += _field(5, 0) + _encode_varint(size)
    return out + _field(6, 5) + struct.pack("<I", crc)


def _encode_header(num_shards: int) -> bytes:
    version = _field(1, 0) + _encode_varint(1)  # producer = kTensorBundleVersion (1)
    return _field(1, 0) + _encode_varint(num_shards) + _length_delimited(3, version)


# ------------------------------------------------------------------------ Snappy


def snappy_decompress(data: bytes, max_output: int = MAX_INDEX_BYTES) -> bytes:
    """Decode a raw Snappy block (the format LevelDB uses for compressed table blocks)."""
    expected, pos = _read_varint(data, 0)
    if expected > max_output:
        raise _FormatError(f"snappy block claims {expected} bytes (limit {max_output})")
    out = bytearray()
    end = len(data)
    while pos < end:
        tag = data[pos]
        pos += 1
        kind = tag & 3
        if kind == 0:  # literal
            length = tag >> 2
            if length >= 60:
                extra = length - 59
                if pos + extra > end:
                    raise _FormatError("truncated snappy literal length")
                length = int.from_bytes(data[pos : pos + extra], "little")
                pos += extra
            length += 1
            if pos + length > end:
                raise _FormatError("truncated snappy literal")
            out += data[pos : pos + length]
            pos += length
        else:
            if kind == 1:
                if pos + 1 > end:
                    raise _FormatError("truncated snappy copy")
                length = 4 + ((tag >> 2) & 7)
                offset = ((tag >> 5) << 8) | data[pos]
                pos += 1
            else:
                width = 2 if kind == 2 else 4
                if pos + width > end:
                    raise _FormatError("truncated snappy copy")
                length = (tag >> 2) + 1
                offset = int.from_bytes(data[pos : pos + width], "little")
                pos += width
            if offset == 0 or offset > len(out):
                raise _FormatError("snappy copy points before the start of the output")
            start = len(out) - offset
            if offset >= length:  # one bulk copy
                out += out[start : start + length]
            else:  # overlaps its own output (run-length style): repeat the last `offset` bytes
                pattern = out[start:]
                out += (pattern * (length // offset + 1))[:length]
        if len(out) > expected:
            raise _FormatError("snappy output longer than announced")
    if len(out) != expected:
        raise _FormatError(f"snappy output has {len(out)} bytes, header said {expected}")
    return bytes(out)


# ------------------------------------------------------------------------- SSTable


def _read_block(
    table: bytes, offset: int, size: int, verify: bool, max_output: int = MAX_INDEX_BYTES
) -> bytes:
    if offset < 0 or size < 0 or offset + size + BLOCK_TRAILER_BYTES > len(table):
        raise _FormatError(f"block at offset {offset} size {size} runs past the end of the file")
    contents = table[offset : offset + size]
    kind = table[offset + size]
    if verify:
        stored = struct.unpack_from("<I", table, offset + size + 1)[0]
        actual = crc32c(table[offset : offset + size + 1])
        if unmask_crc32c(stored) != actual:
            raise _FormatError(f"block at offset {offset} fails its CRC32C check (corrupt file)")
    if kind == NO_COMPRESSION:
        return contents
    if kind == SNAPPY_COMPRESSION:
        return snappy_decompress(contents, max_output=max(0, max_output))
    raise _FormatError(f"block at offset {offset} uses unknown compression type {kind}")


def _iter_block(block: bytes) -> Iterator[tuple[bytes, bytes]]:
    """Entries of a block: prefix-compressed keys, then restart offsets and their count."""
    if len(block) < 4:
        raise _FormatError("block shorter than its restart count")
    num_restarts = struct.unpack_from("<I", block, len(block) - 4)[0]
    restarts_at = len(block) - 4 - 4 * num_restarts
    if num_restarts == 0 or restarts_at < 0:
        raise _FormatError("block has an invalid restart array")
    pos, key = 0, b""
    while pos < restarts_at:
        shared, pos = _read_varint(block, pos, restarts_at)
        unshared, pos = _read_varint(block, pos, restarts_at)
        value_len, pos = _read_varint(block, pos, restarts_at)
        if shared > len(key) or pos + unshared + value_len > restarts_at:
            raise _FormatError("corrupt block entry")
        key = key[:shared] + block[pos : pos + unshared]
        pos += unshared
        yield key, block[pos : pos + value_len]
        pos += value_len


def _read_handle(buf: bytes, pos: int) -> tuple[int, int, int]:
    offset, pos = _read_varint(buf, pos)
    size, pos = _read_varint(buf, pos)
    return offset, size, pos


def _iter_table(table: bytes, verify: bool) -> Iterator[tuple[bytes, bytes]]:
    """Every (key, value) of an SSTable, in time and memory proportional to its size.

    The index block's handles must point to distinct, non-overlapping blocks inside the file
    (as every table writer makes them): a handle repeated or overlapping another (a small file
    that would make the reader decode the same bytes again and again) is refused, and all
    decoded blocks together may not exceed :data:`MAX_DECODE_RATIO` times the file's size.
    """
    if len(table) < FOOTER_BYTES:
        raise _FormatError(f"file is {len(table)} bytes, shorter than an SSTable footer")
    footer = table[-FOOTER_BYTES:]
    magic = struct.unpack_from("<Q", footer, 40)[0]
    if magic != TABLE_MAGIC:
        raise _FormatError(f"bad magic number {magic:#018x} (not a TensorFlow checkpoint index)")
    _, _, pos = _read_handle(footer, 0)  # metaindex: unused by tensor bundles
    index_offset, index_size, _ = _read_handle(footer, pos)
    budget = MAX_DECODE_RATIO * len(table) + 1024**2
    index_block = _read_block(table, index_offset, index_size, verify, budget)
    budget -= len(index_block)
    handles = [_read_handle(handle, 0)[:2] for _, handle in _iter_block(index_block)]
    ordered = sorted(set(handles))
    if len(ordered) != len(handles):
        raise _FormatError("the index block refers to the same data block more than once")
    for (offset, size), (next_offset, _) in itertools.pairwise(ordered):
        if offset + size + BLOCK_TRAILER_BYTES > next_offset:
            raise _FormatError(f"data blocks at offsets {offset} and {next_offset} overlap")
    for offset, size in handles:
        block = _read_block(table, offset, size, verify, budget)
        budget -= len(block)
        if budget < 0:
            raise _FormatError(
                f"its blocks decode to more than {MAX_DECODE_RATIO} times the file's size"
            )
        yield from _iter_block(block)


class _BlockBuilder:
    def __init__(self, restart_interval: int):
        self.restart_interval = restart_interval
        self.buffer = bytearray()
        self.restarts = [0]
        self.count = 0
        self.last_key = b""

    def add(self, key: bytes, value: bytes) -> None:
        shared = 0
        if self.count < self.restart_interval:
            limit = min(len(key), len(self.last_key))
            while shared < limit and key[shared] == self.last_key[shared]:
                shared += 1
        else:
            self.restarts.append(len(self.buffer))
            self.count = 0
        self.buffer += _encode_varint(shared) + _encode_varint(len(key) - shared)
        self.buffer += _encode_varint(len(value)) + key[shared:] + value
        self.last_key = key
        self.count += 1

    def size_estimate(self) -> int:
        return len(self.buffer) + 4 * len(self.restarts) + 4

    def finish(self) -> bytes:
        tail = b"".join(struct.pack("<I", r) for r in self.restarts)
        return bytes(self.buffer) + tail + struct.pack("<I", len(self.restarts))


def _build_table(items: Iterable[tuple[bytes, bytes]]) -> bytes:
    """An uncompressed SSTable, as TensorFlow's table builder writes for tensor bundles."""
    out = bytearray()

    def write_block(contents: bytes) -> bytes:
        handle = _encode_varint(len(out)) + _encode_varint(len(contents))
        trailer = bytes([NO_COMPRESSION])
        out.extend(contents + trailer + struct.pack("<I", mask_crc32c(crc32c(contents + trailer))))
        return handle

    index = _BlockBuilder(restart_interval=1)
    block = _BlockBuilder(DATA_RESTART_INTERVAL)
    for key, value in items:
        block.add(key, value)
        if block.size_estimate() >= DATA_BLOCK_BYTES:
            index.add(block.last_key, write_block(block.finish()))
            block = _BlockBuilder(DATA_RESTART_INTERVAL)
    if block.count:
        index.add(block.last_key, write_block(block.finish()))
    meta_handle = write_block(_BlockBuilder(DATA_RESTART_INTERVAL).finish())
    index_handle = write_block(index.finish())
    footer = (meta_handle + index_handle).ljust(40, b"\0") + struct.pack("<Q", TABLE_MAGIC)
    return bytes(out + footer)


# ------------------------------------------------------------------ public functions


def resolve_checkpoint_prefix(path: str | os.PathLike[str]) -> Path:
    """Checkpoint prefix from a prefix, an ``.index`` file, a ``.data-*`` shard or a folder."""
    path = Path(path).expanduser()
    name = path.name
    if name.endswith(".index"):
        return path.with_name(name[: -len(".index")])
    if ".data-" in name:
        return path.with_name(name.split(".data-")[0])
    if path.is_dir():
        indexes = sorted(path.glob("*.index"))
        if len(indexes) == 1:
            return indexes[0].with_name(indexes[0].name[: -len(".index")])
        found = ", ".join(p.name for p in indexes) or "none"
        raise WeightsError(
            f"folder {str(path)!r} must hold exactly one TensorFlow checkpoint '*.index' file "
            f"(found: {found}); pass the checkpoint prefix, e.g. '{path}/model.ckpt'"
        )
    return path


def _index_path(prefix_or_index: str | os.PathLike[str]) -> Path:
    return resolve_checkpoint_prefix(prefix_or_index).with_name(
        resolve_checkpoint_prefix(prefix_or_index).name + ".index"
    )


def _read_index(index_path: Path, verify: bool) -> tuple[dict[str, int], dict[str, TensorEntry]]:
    if not index_path.is_file():
        raise WeightsError(
            f"TensorFlow checkpoint index {str(index_path)!r} does not exist; a checkpoint "
            "'PREFIX' needs 'PREFIX.index' and 'PREFIX.data-00000-of-0000N' side by side"
        )
    file_size = index_path.stat().st_size
    if file_size > MAX_INDEX_BYTES:
        raise WeightsError(
            f"{str(index_path)!r} is {file_size} bytes, larger than any checkpoint index "
            f"({MAX_INDEX_BYTES} bytes allowed); is it really a '.index' file?"
        )
    table = index_path.read_bytes()
    header: dict[str, int] | None = None
    entries: dict[str, TensorEntry] = {}
    try:
        for key, value in _iter_table(table, verify):
            if key == b"":
                header = _decode_header(value)
                continue
            name = key.decode("utf-8")
            entries[name] = _decode_entry(name, value)
    except (_FormatError, UnicodeDecodeError, struct.error, OverflowError) as err:
        raise WeightsError(
            f"{str(index_path)!r} is not a valid TensorFlow checkpoint index: {err}. "
            "Download it again (the file is corrupt or truncated)."
        ) from err
    if header is None:
        raise WeightsError(f"{str(index_path)!r} has no bundle header: not a TF V2 checkpoint")
    if header["endianness"] != 0:
        raise WeightsError(f"{str(index_path)!r} was written big-endian, which is not supported")
    for entry in entries.values():
        if not 0 <= entry.shard_id < max(header["num_shards"], 1):
            raise WeightsError(
                f"{str(index_path)!r}: tensor {entry.name!r} is in shard {entry.shard_id} of "
                f"{header['num_shards']} (corrupt index)"
            )
    return header, entries


def read_tf_checkpoint_index(
    index_path: str | os.PathLike[str], *, verify: bool = True
) -> dict[str, TensorEntry]:
    """Parse a checkpoint's ``.index`` table into ``{tensor name: TensorEntry}``.

    ``index_path`` may also be the checkpoint prefix or folder. Block CRCs are checked
    unless ``verify=False``. Raises :class:`WeightsError` naming the file when it is
    missing, truncated or not a checkpoint index.
    """
    return _read_index(_index_path(index_path), verify)[1]


def read_tf_checkpoint_header(index_path: str | os.PathLike[str]) -> dict[str, int]:
    """The bundle header: ``num_shards``, ``endianness``, ``producer``, ``min_consumer``."""
    return _read_index(_index_path(index_path), True)[0]


def shard_path(prefix: Path, shard_id: int, num_shards: int) -> Path:
    """``PREFIX.data-0000K-of-0000N``, the name TensorFlow gives data shards."""
    return prefix.with_name(f"{prefix.name}.data-{shard_id:05d}-of-{num_shards:05d}")


def _bfloat16_to_float32(raw: np.ndarray) -> np.ndarray:
    return (raw.astype("<u4") << np.uint32(16)).view("<f4")


def load_tf_checkpoint(
    prefix_or_index_path: str | os.PathLike[str],
    names: Iterable[str] | None = None,
    *,
    verify_crc: bool = False,
    copy: bool = True,
) -> dict[str, np.ndarray]:
    """Load tensors of a TensorFlow V2 checkpoint as NumPy arrays, without TensorFlow.

    ``prefix_or_index_path``: ``.../model.ckpt``, ``.../model.ckpt.index`` or the folder
    holding them. ``names``: only these tensors (default: all). Shards are memory-mapped,
    so loading a few tensors of a big checkpoint reads only those bytes. ``verify_crc``
    checks each tensor's CRC32C (in NumPy: slower; see ``docs/benchmarks.md``). ``copy=False``
    returns read-only views into the mapped files instead of copies. bfloat16 tensors are
    returned as float32. Raises :class:`WeightsError` naming the file on any problem.
    """
    prefix = resolve_checkpoint_prefix(prefix_or_index_path)
    index_path = prefix.with_name(prefix.name + ".index")
    header, entries = _read_index(index_path, verify=True)
    if names is None:
        wanted = [e for e in entries.values() if not e.sliced]
    else:
        wanted = []
        for name in names:
            if name not in entries:
                close = difflib.get_close_matches(name, list(entries), n=3)
                hint = f"; close matches: {close}" if close else ""
                raise WeightsError(
                    f"tensor {name!r} is not in checkpoint {str(index_path)!r}{hint}"
                )
            wanted.append(entries[name])
    num_shards = max(header["num_shards"], 1)
    maps: dict[int, np.memmap] = {}
    result: dict[str, np.ndarray] = {}
    for entry in wanted:
        if entry.sliced:
            raise WeightsError(
                f"tensor {entry.name!r} in {str(index_path)!r} is a partitioned variable "
                "(saved as slices), which this reader does not assemble"
            )
        if entry.dtype_code == DT_BFLOAT16:
            dtype = np.dtype("<u2")
        elif entry.dtype_code in _DTYPES:
            dtype = _DTYPES[entry.dtype_code]
        else:
            raise WeightsError(
                f"tensor {entry.name!r} in {str(index_path)!r} has dtype {entry.dtype}, which "
                "cannot be read as a NumPy array; pass names=[...] without it"
            )
        expected = entry.num_elements * dtype.itemsize
        data_path = shard_path(prefix, entry.shard_id, num_shards)
        if entry.size != expected:
            raise WeightsError(
                f"{str(index_path)!r}: tensor {entry.name!r} {entry.dtype}{list(entry.shape)} "
                f"should take {expected} bytes but the index says {entry.size} (corrupt index)"
            )
        if entry.shard_id not in maps:
            if not data_path.is_file():
                raise WeightsError(
                    f"checkpoint data shard {str(data_path)!r} is missing; it belongs beside "
                    f"{str(index_path)!r} (download both files of the checkpoint)"
                )
            if data_path.stat().st_size == 0:
                maps[entry.shard_id] = np.zeros(0, dtype=np.uint8)  # type: ignore[assignment]
            else:
                maps[entry.shard_id] = np.memmap(data_path, dtype=np.uint8, mode="r")
        shard = maps[entry.shard_id]
        if entry.offset + entry.size > shard.size:
            raise WeightsError(
                f"checkpoint data shard {str(data_path)!r} is {shard.size} bytes but tensor "
                f"{entry.name!r} ends at byte {entry.offset + entry.size}: the file is truncated; "
                "delete it and download it again"
            )
        raw = shard[entry.offset : entry.offset + entry.size]
        if verify_crc and entry.crc32c is not None and crc32c(raw) != unmask_crc32c(entry.crc32c):
            raise WeightsError(
                f"tensor {entry.name!r} in {str(data_path)!r} fails its CRC32C check: the data "
                "file is corrupt or does not belong to this index; download it again"
            )
        array = np.frombuffer(raw, dtype=dtype).reshape(entry.shape)
        if entry.dtype_code == DT_BFLOAT16:
            array = _bfloat16_to_float32(array)
        elif copy:
            array = array.copy()
        result[entry.name] = array
    return result


def _atomic_write(path: Path, payload: Iterable[bytes | memoryview]) -> None:
    """Write the chunks to ``path`` atomically (fsync'ed; stale temporaries cleaned)."""
    from hartutor._fileio import atomic_path

    # ".tmp": a temporary "*.index" would look like a second checkpoint in the folder
    with atomic_path(path, suffix=".tmp") as tmp, open(tmp, "wb") as handle:
        for chunk in payload:
            handle.write(chunk)


def write_tf_checkpoint(
    prefix: str | os.PathLike[str],
    tensors: Mapping[str, np.ndarray],
    *,
    num_shards: int = 1,
) -> Path:
    """Write ``tensors`` as a TensorFlow V2 checkpoint ``PREFIX.index`` + data shard(s).

    The files are the ones TensorFlow writes (``tf.train.load_checkpoint`` reads them):
    sorted keys, an uncompressed SSTable index with masked CRCs, tensors stored
    little-endian back to back. Tensors are split over ``num_shards`` data files in name
    order. Each file is written atomically, the index last. Returns the prefix.
    """
    prefix = Path(prefix).expanduser()
    prefix.parent.mkdir(parents=True, exist_ok=True)
    if num_shards < 1:
        raise ValueError(f"num_shards must be >= 1, got {num_shards}")
    names = sorted(tensors, key=lambda n: n.encode("utf-8"))
    if "" in tensors:
        raise ValueError("the empty tensor name is reserved for the bundle header")
    arrays: dict[str, np.ndarray] = {}
    for name in names:
        array = np.asarray(tensors[name])
        dtype = array.dtype.newbyteorder("<") if array.dtype.byteorder == ">" else array.dtype
        if dtype not in _NUMPY_TO_DT:
            raise ValueError(f"tensor {name!r} has dtype {array.dtype}, not a TF checkpoint dtype")
        arrays[name] = np.asarray(array, dtype=dtype.newbyteorder("<"), order="C")
    per_shard = -(-len(names) // num_shards) if names else 0
    entries: list[tuple[bytes, bytes]] = []
    for shard_id in range(num_shards):
        chunk = names[shard_id * per_shard : (shard_id + 1) * per_shard]
        offset = 0
        for name in chunk:
            array = arrays[name]
            dtype_code = _NUMPY_TO_DT[array.dtype.newbyteorder("=")]
            crc = mask_crc32c(crc32c(array.reshape(-1).view(np.uint8)))
            value = _encode_entry(dtype_code, array.shape, shard_id, offset, array.nbytes, crc)
            entries.append((name.encode("utf-8"), value))
            offset += array.nbytes
        _atomic_write(
            shard_path(prefix, shard_id, num_shards),
            (memoryview(arrays[name].reshape(-1).view(np.uint8)) for name in chunk),
        )
    table = _build_table([(b"", _encode_header(num_shards)), *entries])
    _atomic_write(prefix.with_name(prefix.name + ".index"), [table])
    return prefix
