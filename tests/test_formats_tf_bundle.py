"""nspzero.formats.tf_bundle: TF1 checkpoints read without TensorFlow, checked against real TensorFlow's writer
(tests/fixtures/tf_bert, made by tests/fixtures/make_tf_fixture.py) and against the tests' own writer."""
from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

from checkpoint_writers import crc32c as reference_crc32c
from checkpoint_writers import write_tf_bundle
from nspzero.errors import ModelError
from nspzero.formats.tf_bundle import TFBundle, bundle_prefix, crc32c, mask_crc

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "tf_bert")


def one_line_error(fn, *needles):
    with pytest.raises(ModelError) as info:
        fn()
    message = str(info.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message, message
    return message


def test_the_checksum_is_castagnolis_crc_masked_like_leveldb():
    """The reader's crc32c is the `crc32c` package: the standard check value, the tests' own table-driven
    crc on a writable buffer (what `read` passes), and LevelDB's mask."""
    assert crc32c(b"123456789") == 0xE3069283 and crc32c(b"") == 0
    data = bytearray(np.random.default_rng(0).integers(0, 256, 4097, dtype=np.uint8).tobytes())
    assert crc32c(data) == reference_crc32c(bytes(data))
    assert mask_crc(0) == 0xA282EAD8


def test_real_tensorflow_fixture_reads_bit_exact():
    expected = np.load(os.path.join(FIXTURE, "expected.npz"))
    bundle = TFBundle(bundle_prefix(FIXTURE))
    assert bundle.num_shards == 1
    assert set(bundle.entries) == set(expected.files) - {"tf_version"}
    assert "bert/pooler/dense/kernel/adam_m" in bundle.entries
    assert bundle.entries["global_step"].dtype_name == "int64"
    for name, entry in bundle.entries.items():
        if entry.dtype_name in ("float32", "float16"):
            got = bundle.read(name)  # crc32c checked
            assert got.dtype == expected[name].dtype and np.array_equal(got, expected[name]), name
    assert bundle.entries["bert/embeddings/word_embeddings"].shape == expected["bert/embeddings/word_embeddings"].shape


def test_non_float_variable_is_one_line_error():
    bundle = TFBundle(os.path.join(FIXTURE, "bert_model.ckpt"))
    one_line_error(lambda: bundle.read("extra/int"), "extra/int", "int32")
    one_line_error(lambda: bundle.read("global_step"), "global_step", "int64")


def test_bundle_prefix_forms(tmp_path):
    prefix = os.path.join(FIXTURE, "bert_model.ckpt")
    assert bundle_prefix(FIXTURE) == prefix
    assert bundle_prefix(prefix) == prefix
    assert bundle_prefix(prefix + ".index") == prefix
    assert bundle_prefix(str(tmp_path)) is None


@pytest.fixture()
def written(tmp_path):
    """A two-shard bundle of several small blocks, with float16, float64, bfloat16 and int32 variables."""
    rng = np.random.default_rng(3)
    tensors = {f"v{i:02d}/kernel": rng.standard_normal((i + 1, 3)).astype(np.float32) for i in range(30)}
    tensors["half"] = rng.standard_normal((4, 2)).astype(np.float16)
    tensors["double"] = rng.standard_normal(5)
    bf16_values = rng.standard_normal(6).astype(np.float32)
    tensors["bf16"] = (bf16_values.view(np.uint32) >> 16).astype(np.uint16)
    tensors["ints"] = np.arange(6, dtype=np.int32)
    prefix = str(tmp_path / "model.ckpt")
    write_tf_bundle(prefix, tensors, num_shards=2, block_size=128, dtype_codes={"bf16": 14})
    return prefix, tensors, bf16_values


def test_roundtrip_multi_block_multi_shard(written):
    prefix, tensors, bf16_values = written
    bundle = TFBundle(prefix)
    assert bundle.num_shards == 2 and set(bundle.entries) == set(tensors)
    bundle.check_shards()
    for name, value in tensors.items():
        if name in ("bf16", "ints"):
            continue
        assert np.array_equal(bundle.read(name), value), name
    bf16 = bundle.read("bf16")
    assert bf16.dtype == np.float32
    assert np.array_equal(bf16, (bf16_values.view(np.uint32) & 0xFFFF0000).view(np.float32))


def test_truncated_and_corrupt_index(written):
    prefix = written[0]
    data = open(prefix + ".index", "rb").read()
    open(prefix + ".index", "wb").write(data[:-10])
    one_line_error(lambda: TFBundle(prefix), prefix + ".index", "magic number")
    open(prefix + ".index", "wb").write(b"")
    one_line_error(lambda: TFBundle(prefix), prefix + ".index", "shorter than a table footer")
    corrupt = bytearray(data)
    corrupt[20] ^= 0x40  # inside the first data block
    open(prefix + ".index", "wb").write(bytes(corrupt))
    one_line_error(lambda: TFBundle(prefix), prefix + ".index", "checksum mismatch")


def test_missing_truncated_and_corrupt_shard(written):
    prefix = written[0]
    bundle = TFBundle(prefix)
    shard1 = bundle.shard_path(1)
    saved = open(shard1, "rb").read()
    os.remove(shard1)
    one_line_error(bundle.check_shards, shard1, "missing")
    open(shard1, "wb").write(saved[:-8])
    one_line_error(bundle.check_shards, shard1, "truncated")
    last = max((e for e in bundle.entries.values() if e.shard_id == 1), key=lambda e: e.offset)
    one_line_error(lambda: bundle.read(last.name), shard1, "truncated")
    corrupt = bytearray(saved)
    entry = next(e for e in bundle.entries.values() if e.shard_id == 1 and e.dtype == 1)
    corrupt[entry.offset] ^= 0x01
    open(shard1, "wb").write(bytes(corrupt))
    one_line_error(lambda: bundle.read(entry.name), entry.name, "checksum")


def test_not_a_checkpoint(tmp_path):
    (tmp_path / "x.index").write_bytes(os.urandom(200))
    one_line_error(lambda: TFBundle(str(tmp_path / "x")), "x.index", "not a readable TensorFlow checkpoint index")
    one_line_error(lambda: TFBundle(str(tmp_path / "nothing")), "cannot read checkpoint index")


def test_fixture_copy_missing_data_file(tmp_path):
    folder = tmp_path / "ckpt"
    shutil.copytree(FIXTURE, folder)
    os.remove(folder / "bert_model.ckpt.data-00000-of-00001")
    bundle = TFBundle(str(folder / "bert_model.ckpt"))
    one_line_error(bundle.check_shards, "bert_model.ckpt.data-00000-of-00001", "missing")


def test_a_snappy_compressed_block_is_refused_in_one_line_saying_what_to_do(written):
    """TensorFlow's bundle writers never compress (kNoCompression since 1.2): no decoder, one clear refusal."""
    prefix = written[0]
    data = bytearray(open(prefix + ".index", "rb").read())
    from nspzero.formats.tf_bundle import FOOTER_SIZE, _block_handle, _block_entries, _read_block

    footer = bytes(data[-FOOTER_SIZE:])
    index_offset, index_size, _ = _block_handle(footer, _block_handle(footer)[2])
    offset, size, _ = _block_handle(_block_entries(_read_block(bytes(data), index_offset, index_size))[0][1])
    data[offset + size] = 1                                           # the first data block's type byte: snappy
    crc = mask_crc(crc32c(bytes(data[offset:offset + size + 1])))
    data[offset + size + 1:offset + size + 5] = crc.to_bytes(4, "little")
    open(prefix + ".index", "wb").write(bytes(data))
    one_line_error(lambda: TFBundle(prefix), f"{prefix}.index has a snappy-compressed block at byte {offset}, which "
                   "nspzero does not read (TensorFlow 1.2 and later never write one); restore the checkpoint and save "
                   "it again with TensorFlow 1.2 or later")


# ---- malformed indexes: every field checked before it is used, every size before it is allocated -----
from checkpoint_writers import _field_bytes, _field_varint, entry_proto, header_proto, varint, write_table  # noqa: E402


def _bundle(tmp_path, entry: bytes, header: bytes | None = None, data: bytes = b"\0" * 16) -> str:
    prefix = str(tmp_path / "m.ckpt")
    write_table(prefix + ".index", [(b"", header if header is not None else header_proto(1)), (b"w", entry)])
    (tmp_path / "m.ckpt.data-00000-of-00001").write_bytes(data)
    return prefix


@pytest.mark.parametrize("header, entry, needle", [
    (_field_bytes(1, b"12"), entry_proto(1, (2, 2), 0, 0, 16, None), "the header field 1 has protobuf wire type 2"),
    (None, _field_bytes(1, b"\x01") + _field_bytes(2, b""), "variable w field 1 has protobuf wire type 2"),
    (None, _field_varint(1, 1) + _field_varint(2, 7), "variable w field 2 has protobuf wire type 0"),
    (None, _field_varint(1, 1) + _field_bytes(2, varint((2 << 3) | 5) + b"\0\0\0\0"),
     "variable w: shape field 2 has protobuf wire type 5"),
    (None, _field_varint(1, 1) + _field_bytes(2, _field_bytes(2, _field_bytes(1, b"x"))),
     "variable w: dimension field 1 has protobuf wire type 2"),
    (None, _field_varint(1, 1) + _field_bytes(2, _field_bytes(2, _field_varint(1, (1 << 64) - 5))),
     "variable w has a dimension of size -5"),
    (None, _field_varint(1, 1) + varint(3 << 3 | 3), "unsupported protobuf wire type 3"),
])
def test_wrong_wire_types_and_negative_sizes_are_one_line(tmp_path, header, entry, needle):
    one_line_error(lambda: TFBundle(_bundle(tmp_path, entry, header)), "m.ckpt.index", needle,
                   "not a readable TensorFlow checkpoint index")


@pytest.mark.parametrize("shape, size, needle", [
    ((1 << 32, 1 << 32), 0, "has shape [4294967296, 4294967296] but 0 bytes"),     # int64 product wraps to 0
    ((1 << 62, 4), 0, "but 0 bytes"),
    ((1 << 30,), 1 << 32, "is truncated (16 bytes, the index needs 4294967296)"),   # a 4 GiB claim, 16 bytes there
])
def test_a_shape_or_size_the_shard_cannot_hold_is_refused_before_allocating(tmp_path, monkeypatch, shape, size, needle):
    import nspzero.formats.tf_bundle as tf_bundle

    prefix = _bundle(tmp_path, entry_proto(1, shape, 0, 0, size, None))
    bundle = TFBundle(prefix)
    monkeypatch.setattr(tf_bundle, "bytearray", lambda n: pytest.fail(f"allocated {n} bytes"), raising=False)
    one_line_error(lambda: bundle.read("w"), needle)
