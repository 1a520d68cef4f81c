"""The TensorFlow checkpoint reader/writer, on the real DeepMind index and on files we write."""

from __future__ import annotations

import dataclasses
import struct
from pathlib import Path

import numpy as np
import pytest

from hartutor.errors import WeightsError
from hartutor.weights import tf_checkpoint as tfc
from hartutor.weights.tf_checkpoint import (
    crc32c,
    load_tf_checkpoint,
    mask_crc32c,
    read_tf_checkpoint_index,
    unmask_crc32c,
    write_tf_checkpoint,
)


@pytest.fixture(scope="module")
def real_index(fixtures_dir: Path) -> Path:
    path = fixtures_dir / "checkpoints" / "rgb_imagenet.index"
    if not path.exists():
        pytest.skip(f"{path} is absent")
    return path


# ---------------------------------------------------------------- the real DeepMind index


def test_real_index_structure(real_index: Path) -> None:
    entries = read_tf_checkpoint_index(real_index)
    header = tfc.read_tf_checkpoint_header(real_index)
    assert header["num_shards"] == 1 and header["endianness"] == 0
    assert len(entries) == 230
    assert all(name.startswith("RGB/inception_i3d/") for name in entries)
    assert {e.dtype for e in entries.values()} == {"float32"}
    assert {e.shard_id for e in entries.values()} == {0}
    convs = [e for e in entries.values() if e.name.endswith("conv_3d/w")]
    assert len(convs) == 58  # the fixtures README: 58 conv layers
    assert all(len(e.shape) == 5 for e in convs)
    first = entries["RGB/inception_i3d/Conv3d_1a_7x7/conv_3d/w"]
    assert first.shape == (7, 7, 7, 3, 64)  # (T, H, W, C_in, C_out)
    assert not any("gamma" in name for name in entries)  # BatchNorm without scale
    for entry in entries.values():
        assert entry.size == entry.num_elements * 4
        assert entry.crc32c is not None


def test_real_index_offsets_are_contiguous(real_index: Path) -> None:
    entries = sorted(read_tf_checkpoint_index(real_index).values(), key=lambda e: e.offset)
    position = 0
    for entry in entries:
        assert entry.offset == position, entry.name
        position += entry.size
    from hartutor.weights import get_weights

    # The registry's data-file size for this checkpoint is the end of the last tensor.
    assert get_weights("i3d_rgb_kinetics400_imagenet").files[1].size == position


def test_real_index_trainable_parameter_count(real_index: Path) -> None:
    entries = read_tf_checkpoint_index(real_index)
    trainable = [
        e
        for e in entries.values()
        if not e.name.endswith(("moving_mean", "moving_variance")) and "global_step" not in e.name
    ]
    assert sum(e.num_elements for e in trainable) == 12_689_984


def test_real_index_block_crcs_match_our_crc32c(real_index: Path) -> None:
    # verify=True checks each block trailer's masked CRC32C: our CRC equals TensorFlow's.
    data = real_index.read_bytes()
    assert list(tfc._iter_table(data, verify=True))
    corrupted = bytearray(data)
    corrupted[100] ^= 0x01
    with pytest.raises(tfc._FormatError, match="CRC32C"):
        list(tfc._iter_table(bytes(corrupted), verify=True))


# -------------------------------------------------------------------------- CRC32C


def test_crc32c_known_vectors() -> None:
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(bytes(32)) == 0x8A9136AA  # RFC 3720 B.4
    assert crc32c(bytes(range(32))) == 0x46DD794E
    assert crc32c(b"") == 0


@pytest.mark.parametrize("size", [1, 4095, 16_384, 16_385, 70_001, 262_147, 1_000_003])
def test_crc32c_lanes_agree_with_plain_loop(size: int) -> None:
    data = np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8).tobytes()
    assert crc32c(data) == tfc._crc_loop(0xFFFFFFFF, data) ^ 0xFFFFFFFF


def test_crc_mask_roundtrip() -> None:
    for value in (0, 1, 0xE3069283, 0xFFFFFFFF, 0x12345678):
        assert unmask_crc32c(mask_crc32c(value)) == value
        assert mask_crc32c(value) != value


# ------------------------------------------------------------------ write/read round trip


def _sample_tensors() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "net/conv/w": rng.standard_normal((3, 3, 3, 2, 4)).astype(np.float32),
        "net/conv/b": rng.standard_normal(4).astype(np.float64),
        "net/bn/moving_mean": rng.standard_normal(4).astype(np.float16),
        "net/counts": rng.integers(-(2**31), 2**31 - 1, (5, 2)).astype(np.int32),
        "net/steps": rng.integers(-(2**62), 2**62, (3,)).astype(np.int64),
        "net/mask": rng.random((2, 3)) > 0.5,
        "net/bytes": rng.integers(0, 256, (7,)).astype(np.uint8),
        "global_step": np.array(1234, dtype=np.int64),
        "net/empty": np.zeros((0, 3), dtype=np.float32),
        "net/ünïcode": np.arange(6, dtype=np.float32).reshape(2, 3),
    }


@pytest.mark.parametrize("num_shards", [1, 3])
def test_write_then_read_roundtrip(tmp_path: Path, num_shards: int) -> None:
    tensors = _sample_tensors()
    prefix = write_tf_checkpoint(tmp_path / "ckpt" / "model.ckpt", tensors, num_shards=num_shards)
    assert (tmp_path / "ckpt" / "model.ckpt.index").is_file()
    for shard in range(num_shards):
        assert tfc.shard_path(prefix, shard, num_shards).is_file()
    loaded = load_tf_checkpoint(prefix, verify_crc=True)
    assert set(loaded) == set(tensors)
    for name, array in tensors.items():
        assert loaded[name].dtype == array.dtype, name
        assert loaded[name].shape == array.shape, name
        np.testing.assert_array_equal(loaded[name], array)
    entries = read_tf_checkpoint_index(str(prefix) + ".index")
    assert {e.shard_id for e in entries.values()} == set(range(num_shards))
    assert entries["global_step"].shape == ()
    assert tfc.read_tf_checkpoint_header(prefix)["num_shards"] == num_shards


def test_load_subset_folder_and_views(tmp_path: Path) -> None:
    tensors = _sample_tensors()
    write_tf_checkpoint(tmp_path / "model.ckpt", tensors)
    subset = load_tf_checkpoint(tmp_path, names=["net/conv/w"])  # a folder with one index
    assert list(subset) == ["net/conv/w"]
    views = load_tf_checkpoint(tmp_path / "model.ckpt.index", names=["net/conv/b"], copy=False)
    assert not views["net/conv/b"].flags.writeable
    np.testing.assert_array_equal(views["net/conv/b"], tensors["net/conv/b"])
    with pytest.raises(WeightsError, match=r"net/conv/W.*close matches"):
        load_tf_checkpoint(tmp_path / "model.ckpt", names=["net/conv/W"])


def test_many_tensors_span_several_index_blocks(tmp_path: Path) -> None:
    # > 256 KiB of index entries forces several data blocks and a multi-entry index block.
    tensors = {
        f"layer_{i:05d}/" + "x" * 40: np.full((1,), i, dtype=np.float32) for i in range(6000)
    }
    write_tf_checkpoint(tmp_path / "big", tensors)
    index = (tmp_path / "big.index").read_bytes()
    _, _, pos = tfc._read_handle(index[-tfc.FOOTER_BYTES :], 0)
    offset, size, _ = tfc._read_handle(index[-tfc.FOOTER_BYTES :], pos)
    data_blocks = list(tfc._iter_block(tfc._read_block(index, offset, size, verify=True)))
    assert len(data_blocks) >= 2
    loaded = load_tf_checkpoint(tmp_path / "big")
    assert len(loaded) == 6000
    assert all(float(loaded[name][0]) == i for i, name in enumerate(sorted(tensors)))


def test_bfloat16_is_read_as_float32() -> None:
    values = np.array([1.0, -2.5, 3.140625], dtype=np.float32)
    top_halves = (values.view(np.uint32) >> 16).astype("<u2")  # exact bfloat16 values
    np.testing.assert_array_equal(tfc._bfloat16_to_float32(top_halves), values)


def test_snappy_decompress_literals_and_copies() -> None:
    # "abc" literal, then a 1-byte-offset copy of length 6 at offset 3 -> "abcabcabc".
    stream = bytes([9, (3 - 1) << 2, *b"abc", 0b001 | ((6 - 4) << 2), 3])
    assert tfc.snappy_decompress(stream) == b"abcabcabc"
    # 2-byte-offset copy (tag kind 2) and a literal with a length byte (60 -> 1 extra byte).
    literal = bytes(range(70))
    stream = (
        bytes([80, 60 << 2, 70 - 1])
        + literal
        + bytes([((10 - 1) << 2) | 2])
        + struct.pack("<H", 70)
    )
    assert tfc.snappy_decompress(stream) == literal + literal[:10]
    with pytest.raises(tfc._FormatError):
        tfc.snappy_decompress(bytes([5, 0b001, 9]))  # copy before any output


def test_snappy_compressed_table_is_read(tmp_path: Path) -> None:
    tensors = {"a": np.arange(3, dtype=np.float32), "b": np.ones(2, dtype=np.int32)}
    prefix = write_tf_checkpoint(tmp_path / "plain", tensors)
    items = list(tfc._iter_table((tmp_path / "plain.index").read_bytes(), verify=True))

    def snappy_literal(data: bytes) -> bytes:  # a valid Snappy stream of one literal
        assert len(data) < 256
        return tfc._encode_varint(len(data)) + bytes([60 << 2, len(data) - 1]) + data

    out = bytearray()

    def write_block(contents: bytes, kind: int) -> bytes:
        handle = tfc._encode_varint(len(out)) + tfc._encode_varint(len(contents))
        crc = mask_crc32c(crc32c(contents + bytes([kind])))
        out.extend(contents + bytes([kind]) + struct.pack("<I", crc))
        return handle

    block = tfc._BlockBuilder(16)
    for key, value in items:
        block.add(key, value)
    data_handle = write_block(snappy_literal(block.finish()), tfc.SNAPPY_COMPRESSION)
    meta_handle = write_block(tfc._BlockBuilder(16).finish(), tfc.NO_COMPRESSION)
    index = tfc._BlockBuilder(1)
    index.add(items[-1][0], data_handle)
    index_handle = write_block(index.finish(), tfc.NO_COMPRESSION)
    footer = (meta_handle + index_handle).ljust(40, b"\0") + struct.pack("<Q", tfc.TABLE_MAGIC)
    Path(str(prefix) + ".index").write_bytes(bytes(out) + footer)
    loaded = load_tf_checkpoint(prefix)
    np.testing.assert_array_equal(loaded["a"], tensors["a"])
    np.testing.assert_array_equal(loaded["b"], tensors["b"])


# -------------------------------------------------------------- corrupt and missing files


def test_truncated_index_names_the_file(tmp_path: Path) -> None:
    write_tf_checkpoint(tmp_path / "m", _sample_tensors())
    index = tmp_path / "m.index"
    index.write_bytes(index.read_bytes()[:-10])
    with pytest.raises(WeightsError, match=r"m\.index"):
        read_tf_checkpoint_index(index)


def test_flipped_byte_in_index_is_detected(tmp_path: Path) -> None:
    write_tf_checkpoint(tmp_path / "m", _sample_tensors())
    index = tmp_path / "m.index"
    data = bytearray(index.read_bytes())
    data[20] ^= 0xFF
    index.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match=r"m\.index.*CRC32C"):
        load_tf_checkpoint(tmp_path / "m")


def test_not_an_index_file(tmp_path: Path) -> None:
    bogus = tmp_path / "x.index"
    bogus.write_bytes(b"hello world" * 10)
    with pytest.raises(WeightsError, match=r"x\.index.*magic"):
        read_tf_checkpoint_index(bogus)
    with pytest.raises(WeightsError, match="does not exist"):
        read_tf_checkpoint_index(tmp_path / "missing.index")


def test_truncated_or_missing_data_shard(tmp_path: Path) -> None:
    prefix = write_tf_checkpoint(tmp_path / "m", _sample_tensors())
    shard = tfc.shard_path(prefix, 0, 1)
    shard.write_bytes(shard.read_bytes()[:50])
    with pytest.raises(WeightsError, match=r"m\.data-00000-of-00001.*truncated"):
        load_tf_checkpoint(prefix)
    shard.unlink()
    with pytest.raises(WeightsError, match=r"m\.data-00000-of-00001.*missing"):
        load_tf_checkpoint(prefix)


def test_corrupt_data_caught_by_tensor_crc(tmp_path: Path) -> None:
    prefix = write_tf_checkpoint(tmp_path / "m", {"w": np.arange(100, dtype=np.float32)})
    shard = tfc.shard_path(prefix, 0, 1)
    data = bytearray(shard.read_bytes())
    data[17] ^= 0x40
    shard.write_bytes(bytes(data))
    assert load_tf_checkpoint(prefix)["w"][4] != 4.0  # unchecked: silently wrong
    with pytest.raises(WeightsError, match=r"'w'.*m\.data-00000-of-00001.*CRC32C"):
        load_tf_checkpoint(prefix, verify_crc=True)


def test_index_size_field_inconsistent_with_shape(tmp_path: Path) -> None:
    prefix = write_tf_checkpoint(tmp_path / "m", {"w": np.zeros(4, dtype=np.float32)})
    entry = read_tf_checkpoint_index(prefix)["w"]
    bad = tfc._encode_entry(entry.dtype_code, entry.shape, 0, 0, 8, entry.crc32c or 0)
    table = tfc._build_table([(b"", tfc._encode_header(1)), (b"w", bad)])
    Path(str(prefix) + ".index").write_bytes(table)
    with pytest.raises(WeightsError, match="should take 16 bytes"):
        load_tf_checkpoint(prefix)


# ------------------------------------------------- full I3D round trip (needs models/i3d.py)


def test_i3d_tf_roundtrip_strict_load(tmp_path: Path, real_index: Path) -> None:
    """Random weights with the real checkpoint's names and shapes -> our writer -> loader
    -> ``i3d_state_dict_from_tf`` -> strict load -> the model holds exactly those values."""
    i3d = pytest.importorskip("hartutor.models.i3d")
    import torch

    from hartutor.weights import RemoteFile, get_weights, load_pretrained

    rng = np.random.default_rng(0)
    entries = read_tf_checkpoint_index(real_index)
    tensors = {
        name: rng.standard_normal(e.shape).astype(np.float32) * 0.05 for name, e in entries.items()
    }
    for name in tensors:
        if name.endswith("moving_variance"):
            tensors[name] = np.abs(tensors[name]) + 0.5
    prefix = write_tf_checkpoint(tmp_path / "rgb" / "model.ckpt", tensors)
    entry = get_weights("i3d_rgb_kinetics400_imagenet")
    local = dataclasses.replace(
        entry,
        files=tuple(RemoteFile(f.url, f.filename, subdir=f.subdir) for f in entry.files),
    )
    model = load_pretrained(local, path=prefix)
    expected = i3d.i3d_state_dict_from_tf(
        {k.split("inception_i3d/", 1)[1]: v for k, v in tensors.items()}, in_channels=3
    )
    state = model.state_dict()
    for key, value in expected.items():
        torch.testing.assert_close(state[key], value, rtol=0, atol=0)
    conv = torch.as_tensor(tensors["RGB/inception_i3d/Conv3d_1a_7x7/conv_3d/w"])
    assert any(
        v.shape == (64, 3, 7, 7, 7) and torch.equal(v, conv.permute(4, 3, 0, 1, 2))
        for v in state.values()
    )
