"""Read TensorFlow 1 checkpoints (tensor bundles) with NumPy alone, so Google's BERT loads without TensorFlow.

A bundle is `PREFIX.index` plus `PREFIX.data-0000x-of-0000N`. The index is a LevelDB-style table
(data blocks of prefix-compressed keys with restart points, an index block, a 48-byte footer ending
in the table magic number; every block followed by a type byte and a masked crc32c). Its key ""
holds a `BundleHeaderProto`, every other key names a variable whose value is a `BundleEntryProto`
(dtype, shape, shard, offset, size, masked crc32c of the bytes). Only the handful of protobuf fields
used here are decoded, by hand, so there is no protobuf (or TensorFlow) dependency. The data shards
hold the raw little-endian tensors at the offsets the entries give.
"""
from __future__ import annotations

import glob
import math
import os
import struct
from dataclasses import dataclass

import numpy as np
from crc32c import crc32c  # the maintained package: hardware CRC where the CPU has it, any buffer, no copy

from ..errors import ModelError

TABLE_MAGIC = 0xDB4775248B80FB57
FOOTER_SIZE = 48
BLOCK_TRAILER = 5
CRC_MASK_DELTA = 0xA282EAD8

# tensorflow/core/framework/types.proto: the dtypes this reader decodes, and names for the rest.
DT_FLOAT, DT_DOUBLE, DT_BFLOAT16, DT_HALF = 1, 2, 14, 19
DTYPE_NAMES = {1: "float32", 2: "float64", 3: "int32", 4: "uint8", 5: "int16", 6: "int8", 7: "string",
               8: "complex64", 9: "int64", 10: "bool", 14: "bfloat16", 17: "uint16", 18: "complex128",
               19: "float16", 22: "uint32", 23: "uint64"}
_NUMPY = {DT_FLOAT: np.dtype("<f4"), DT_DOUBLE: np.dtype("<f8"), DT_HALF: np.dtype("<f2"),
          DT_BFLOAT16: np.dtype("<u2")}


def mask_crc(crc: int) -> int:
    """LevelDB/TensorFlow store CRCs masked (rotated and offset) so CRCs of CRCs stay distinct."""
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + CRC_MASK_DELTA) & 0xFFFFFFFF


# ---------------------------------------------------------------------------------------------
# varints, protobuf fields, table blocks
# ---------------------------------------------------------------------------------------------

class _Corrupt(Exception):
    """Internal: the bytes do not parse; turned into a ModelError naming the file."""


class _Compressed(Exception):
    """Internal: a snappy-compressed table block, which this reader does not decode (see `_read_block`)."""


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise _Corrupt("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _proto_fields(buf: bytes) -> list[tuple[int, int, object]]:
    """(field number, wire type, value) of a serialized protobuf message, without a schema."""
    fields, pos = [], 0
    while pos < len(buf):
        tag, pos = _varint(buf, pos)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            if pos + 8 > len(buf):
                raise _Corrupt("truncated fixed64 field")
            value, pos = struct.unpack_from("<Q", buf, pos)[0], pos + 8
        elif wire == 2:
            length, pos = _varint(buf, pos)
            if pos + length > len(buf):
                raise _Corrupt("truncated length-delimited field")
            value, pos = buf[pos:pos + length], pos + length
        elif wire == 5:
            if pos + 4 > len(buf):
                raise _Corrupt("truncated fixed32 field")
            value, pos = struct.unpack_from("<I", buf, pos)[0], pos + 4
        else:
            raise _Corrupt(f"unsupported protobuf wire type {wire}")
        fields.append((number, wire, value))
    return fields


@dataclass(frozen=True)
class BundleEntry:
    """One variable of the bundle: where its bytes are and what they should be."""

    name: str
    dtype: int
    shape: tuple[int, ...]
    shard_id: int
    offset: int
    size: int
    crc32c: int | None  # masked, as stored
    sliced: bool

    @property
    def dtype_name(self) -> str:
        return DTYPE_NAMES.get(self.dtype, f"dtype #{self.dtype}")


# the fields read here, by message: field number → wire type (0 varint, 2 length-delimited, 5 fixed32)
_HEADER = {1: 0, 2: 0, 3: 2}                           # BundleHeaderProto: num_shards, endianness, version
_ENTRY = {1: 0, 2: 2, 3: 0, 4: 0, 5: 0, 6: 5, 7: 2}   # BundleEntryProto: dtype, shape, shard, offset, size, crc, slices
_SHAPE = {2: 2, 3: 0}                                  # TensorShapeProto: dim, unknown_rank
_DIM = {1: 0, 2: 2}                                    # TensorShapeProto.Dim: size, name


def _message(buf: bytes, schema: dict[int, int], what: str) -> dict[int, list]:
    """The fields of a message that `schema` knows, each a list of its values (repeated fields);
    a known field with another wire type is corrupt (it would be misread as a number)."""
    out: dict[int, list] = {}
    for number, wire, value in _proto_fields(buf):
        if number in schema:
            if wire != schema[number]:
                raise _Corrupt(f"{what} field {number} has protobuf wire type {wire}, expected {schema[number]}")
            out.setdefault(number, []).append(value)
    return out


def _parse_entry(name: str, value: bytes) -> BundleEntry:
    fields = _message(value, _ENTRY, f"variable {name}")

    def last(number: int, default: int = 0) -> int:
        return fields.get(number, [default])[-1]

    shape = []
    for shape_buf in fields.get(2, []):
        for dim in _message(shape_buf, _SHAPE, f"variable {name}: shape").get(2, []):
            size = _message(dim, _DIM, f"variable {name}: dimension").get(1, [0])[-1]
            size = size - (1 << 64) if size >= 1 << 63 else size
            if size < 0:
                raise _Corrupt(f"variable {name} has a dimension of size {size}")
            shape.append(size)
    return BundleEntry(name, last(1), tuple(shape), last(3), last(4), last(5), fields.get(6, [None])[-1], 7 in fields)


def _block_handle(buf: bytes, pos: int = 0) -> tuple[int, int, int]:
    offset, pos = _varint(buf, pos)
    size, pos = _varint(buf, pos)
    return offset, size, pos


def _read_block(data: bytes, offset: int, size: int) -> bytes:
    """A table block, checked against its crc32c. Compressed blocks are refused, not decoded: both of
    TensorFlow's index writers (BundleWriter::Finish, MergeBundles) set kNoCompression since 1.2
    ("compressed writes are disabled", tensor_bundle.cc), and TF 2.21's Saver, sharded Saver and
    tf.train.Checkpoint write uncompressed blocks, so a snappy decoder would serve no real bundle."""
    end = offset + size + BLOCK_TRAILER
    if end > len(data) - FOOTER_SIZE:
        raise _Corrupt(f"block at byte {offset} runs past the end of the file")
    block = data[offset:offset + size]
    kind = data[offset + size]
    stored = struct.unpack_from("<I", data, offset + size + 1)[0]
    if mask_crc(crc32c(data[offset:offset + size + 1])) != stored:
        raise _Corrupt(f"checksum mismatch in the block at byte {offset}")
    if kind == 1:
        raise _Compressed(offset)
    if kind != 0:
        raise _Corrupt(f"unknown block compression type {kind}")
    return block


def _block_entries(block: bytes) -> list[tuple[bytes, bytes]]:
    if len(block) < 4:
        raise _Corrupt("block too short")
    restarts = struct.unpack_from("<I", block, len(block) - 4)[0]
    limit = len(block) - 4 - 4 * restarts
    if limit < 0:
        raise _Corrupt("bad restart count")
    entries, pos, key = [], 0, b""
    while pos < limit:
        shared, pos = _varint(block, pos)
        unshared, pos = _varint(block, pos)
        vlen, pos = _varint(block, pos)
        if shared > len(key) or pos + unshared + vlen > limit:
            raise _Corrupt("bad entry in block")
        key = key[:shared] + block[pos:pos + unshared]
        pos += unshared
        entries.append((key, block[pos:pos + vlen]))
        pos += vlen
    return entries


def _read_table(data: bytes) -> list[tuple[bytes, bytes]]:
    if len(data) < FOOTER_SIZE:
        raise _Corrupt(f"{len(data)} bytes is shorter than a table footer")
    footer = data[-FOOTER_SIZE:]
    if struct.unpack_from("<Q", footer, 40)[0] != TABLE_MAGIC:
        raise _Corrupt("no table magic number at the end (truncated, or not a TensorFlow checkpoint index)")
    _, _, pos = _block_handle(footer, 0)  # metaindex: unused
    index_offset, index_size, _ = _block_handle(footer, pos)
    entries = []
    for _, handle in _block_entries(_read_block(data, index_offset, index_size)):
        offset, size, _ = _block_handle(handle)
        entries.extend(_block_entries(_read_block(data, offset, size)))
    return entries


# ---------------------------------------------------------------------------------------------
# the bundle
# ---------------------------------------------------------------------------------------------

def bundle_prefix(path: str) -> str | None:
    """The checkpoint prefix for a folder, a `.index` file or a prefix; None when there is no bundle.

    A folder is searched for `bert_model.ckpt.index` first, then for a single `*.index`."""
    path = os.fspath(path)
    if os.path.isdir(path):
        preferred = os.path.join(path, "bert_model.ckpt.index")
        if os.path.isfile(preferred):
            return preferred[: -len(".index")]
        found = sorted(glob.glob(os.path.join(glob.escape(path), "*.index")))
        if len(found) == 1:
            return found[0][: -len(".index")]
        if len(found) > 1:
            names = ", ".join(os.path.basename(f) for f in found[:4])
            raise ModelError(f"{path} holds several checkpoints ({names}); pass the one to use, e.g. "
                             f"{found[-1][: -len('.index')]}")
        return None
    if path.endswith(".index") and os.path.isfile(path):
        return path[: -len(".index")]
    if os.path.isfile(path + ".index"):
        return path
    return None


class TFBundle:
    """The variables of one TF1 checkpoint: `entries` by name, `read(name)` for the values."""

    def __init__(self, prefix: str) -> None:
        self.prefix = os.fspath(prefix)
        self.index_path = self.prefix + ".index"
        try:
            with open(self.index_path, "rb") as handle:
                data = handle.read()
        except OSError as exc:
            raise ModelError(f"cannot read checkpoint index {self.index_path}: {exc.strerror or exc}") from None
        try:
            records = _read_table(data)
            if not records or records[0][0] != b"":
                raise _Corrupt("no bundle header (the empty key)")
            header = {n: v[-1] for n, v in _message(records[0][1], _HEADER, "the header").items()}
            self.num_shards = header.get(1, 1)
            if header.get(2, 0) != 0:
                raise ModelError(f"{self.index_path} was written on a big-endian machine; re-save it on a "
                                 f"little-endian one")
            self.entries: dict[str, BundleEntry] = {}
            for key, value in records[1:]:
                name = key.decode("utf-8", "replace")
                self.entries[name] = _parse_entry(name, value)
        except _Corrupt as exc:
            raise ModelError(f"{self.index_path} is not a readable TensorFlow checkpoint index ({exc}); "
                             f"download the checkpoint again") from None
        except _Compressed as exc:
            raise ModelError(f"{self.index_path} has a snappy-compressed block at byte {exc}, which nspzero does not "
                             f"read (TensorFlow 1.2 and later never write one); restore the checkpoint and save it "
                             f"again with TensorFlow 1.2 or later (tf.compat.v1.train.Saver)") from None
        self._shards_checked = False
        if self.num_shards < 1:
            raise ModelError(f"{self.index_path} says the checkpoint has {self.num_shards} data shards; "
                             f"download the checkpoint again")

    def shard_path(self, shard: int) -> str:
        return f"{self.prefix}.data-{shard:05d}-of-{self.num_shards:05d}"

    def check_shards(self) -> None:
        """Once, before any variable is read or allocated: each entry's shape (its element count in
        Python integers: no overflow) times its item size is its byte size, and every data shard
        exists and is long enough for the bytes its entries claim."""
        need: dict[int, int] = {}
        for entry in self.entries.values():
            itemsize = _NUMPY[entry.dtype].itemsize if entry.dtype in _NUMPY else None
            if itemsize is not None and not entry.sliced and math.prod(entry.shape) * itemsize != entry.size:
                raise ModelError(f"checkpoint variable {entry.name} in {self.index_path} has shape "
                                 f"{list(entry.shape)} but {entry.size} bytes; the index is corrupt, download the "
                                 f"checkpoint again")
            need[entry.shard_id] = max(need.get(entry.shard_id, 0), entry.offset + entry.size)
        for shard, length in sorted(need.items()):
            path = self.shard_path(shard)
            if shard >= self.num_shards:
                raise ModelError(f"{self.index_path} points to shard {shard} of {self.num_shards}; the index is "
                                 f"corrupt, download the checkpoint again")
            if not os.path.isfile(path):
                raise ModelError(f"checkpoint data file {path} is missing; copy every "
                                 f"{os.path.basename(self.prefix)}.data-* file beside the .index")
            actual = os.path.getsize(path)
            if actual < length:
                raise ModelError(f"checkpoint data file {path} is truncated ({actual} bytes, the index needs "
                                 f"{length}); download it again")
        self._shards_checked = True

    def read(self, name: str) -> np.ndarray:
        """The variable as a float32/float16 array (bfloat16 widened to float32), checked against its size
        and crc32c; any other dtype is a ModelError naming it."""
        entry = self.entries[name]
        if entry.dtype not in _NUMPY:
            raise ModelError(f"checkpoint variable {name} in {self.index_path} is {entry.dtype_name}; only "
                             f"float32, float16, bfloat16 and float64 weights can be loaded")
        if entry.sliced:
            raise ModelError(f"checkpoint variable {name} in {self.index_path} is saved as partitioned slices, "
                             f"which nspzero cannot read; re-save the checkpoint without variable partitioning")
        if not self._shards_checked:
            self.check_shards()
        dtype = _NUMPY[entry.dtype]
        path = self.shard_path(entry.shard_id)
        buf = bytearray(entry.size)   # at most the shard's size (check_shards)
        try:
            with open(path, "rb") as handle:
                handle.seek(entry.offset)
                got = handle.readinto(buf)
        except OSError as exc:
            raise ModelError(f"cannot read checkpoint data file {path}: {exc.strerror or exc}; copy every "
                             f"{os.path.basename(self.prefix)}.data-* file beside the .index") from None
        if got != entry.size:
            raise ModelError(f"checkpoint data file {path} is truncated (variable {name} needs bytes "
                             f"{entry.offset}..{entry.offset + entry.size}); download it again")
        if entry.crc32c is not None and mask_crc(crc32c(buf)) != entry.crc32c:
            raise ModelError(f"checkpoint variable {name} in {path} fails its checksum (corrupt data file); "
                             f"download the checkpoint again")
        array = np.frombuffer(buf, dtype=dtype).reshape(entry.shape)
        if entry.dtype == DT_BFLOAT16:
            array = (array.astype(np.uint32) << 16).view(np.float32)
        return array

