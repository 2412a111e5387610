"""Writers for the foreign checkpoint formats, from their published layouts, for tests only.

`write_tf_bundle` writes a TF1 tensor bundle (LevelDB-style table of BundleEntryProto + raw data
shards) the way TensorFlow's BundleWriter does; `write_google_bert` / `write_uer_bert` turn a
transformers BertForPreTraining into Google's and UER-py's variable names. Written independently of
nspzero's reader (own crc32c, own protobuf encoding) so the tests check one against the other.
"""
from __future__ import annotations

import json
import os
import struct

import numpy as np
import torch

_DTYPES = {np.dtype("float32"): 1, np.dtype("float64"): 2, np.dtype("int32"): 3, np.dtype("int64"): 9,
           np.dtype("float16"): 19, np.dtype("uint16"): 17}


def _crc_table() -> list[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ (0x82F63B78 if c & 1 else 0)
        table.append(c)
    return table


_TABLE = _crc_table()


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked(crc: int) -> int:
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field_varint(number: int, value: int) -> bytes:
    return varint(number << 3) + varint(value) if value else b""


def _field_bytes(number: int, value: bytes) -> bytes:
    return varint((number << 3) | 2) + varint(len(value)) + value


def entry_proto(dtype: int, shape, shard: int, offset: int, size: int, crc: int | None) -> bytes:
    shape_proto = b"".join(_field_bytes(2, _field_varint(1, d) if d else b"") for d in shape)
    out = _field_varint(1, dtype) + _field_bytes(2, shape_proto) + _field_varint(3, shard) \
        + _field_varint(4, offset) + _field_varint(5, size)
    if crc is not None:
        out += varint((6 << 3) | 5) + struct.pack("<I", crc)
    return out


def header_proto(num_shards: int) -> bytes:
    return _field_varint(1, num_shards) + _field_bytes(3, _field_varint(1, 1))  # version {producer: 1}


def _block(entries: list[tuple[bytes, bytes]], restart_interval: int = 16) -> bytes:
    out, restarts, prev = bytearray(), [], b""
    for i, (key, value) in enumerate(entries):
        shared = 0
        if i % restart_interval == 0:
            restarts.append(len(out))
        else:
            while shared < min(len(prev), len(key)) and prev[shared] == key[shared]:
                shared += 1
        out += varint(shared) + varint(len(key) - shared) + varint(len(value)) + key[shared:] + value
        prev = key
    if not restarts:
        restarts = [0]
    out += b"".join(struct.pack("<I", r) for r in restarts) + struct.pack("<I", len(restarts))
    return bytes(out)


def write_table(path: str, records: list[tuple[bytes, bytes]], block_size: int = 4096) -> None:
    """A LevelDB-format table (uncompressed blocks, masked crc32c trailers, 48-byte footer)."""
    data = bytearray()

    def emit(block: bytes) -> bytes:
        handle = varint(len(data)) + varint(len(block))
        data.extend(block + b"\x00" + struct.pack("<I", masked(crc32c(block + b"\x00"))))
        return handle

    index, pending, size = [], [], 0
    for key, value in records:
        pending.append((key, value))
        size += len(key) + len(value) + 8
        if size >= block_size:
            index.append((pending[-1][0], emit(_block(pending))))
            pending, size = [], 0
    if pending:
        index.append((pending[-1][0], emit(_block(pending))))
    meta = emit(_block([]))
    idx = emit(_block(index, restart_interval=1))
    footer = (meta + idx).ljust(40, b"\x00") + struct.pack("<Q", 0xDB4775248B80FB57)
    with open(path, "wb") as handle:
        handle.write(bytes(data) + footer)


def write_tf_bundle(prefix: str, tensors: dict[str, np.ndarray], num_shards: int = 1, block_size: int = 4096,
                    dtype_codes: dict[str, int] | None = None) -> None:
    """Write `tensors` as PREFIX.index + PREFIX.data-0000i-of-0000N (round-robin over the shards);
    `dtype_codes` overrides the TF dtype of a variable (e.g. 14 = bfloat16 for raw uint16 bits)."""
    shards = [bytearray() for _ in range(num_shards)]
    records = [(b"", header_proto(num_shards))]
    for i, name in enumerate(sorted(tensors)):
        array = np.ascontiguousarray(tensors[name])
        raw = array.astype(array.dtype.newbyteorder("<")).tobytes()
        shard = i % num_shards
        offset = len(shards[shard])
        shards[shard] += raw
        records.append((name.encode(), entry_proto((dtype_codes or {}).get(name, _DTYPES.get(array.dtype, 0)), array.shape, shard, offset, len(raw),
                                                  masked(crc32c(raw)))))
    for i, data in enumerate(shards):
        with open(f"{prefix}.data-{i:05d}-of-{num_shards:05d}", "wb") as handle:
            handle.write(bytes(data))
    write_table(prefix + ".index", records, block_size=block_size)


def google_tensors(model, *, optimizer_slots: bool = True, nsp: bool = True, pooler: bool = True,
                   mlm: bool = True) -> dict[str, np.ndarray]:
    """Google BERT variable names for a transformers BertForPreTraining (the inverse of the published mapping)."""
    out: dict[str, np.ndarray] = {}
    for name, tensor in model.state_dict().items():
        array = tensor.detach().numpy().astype(np.float32)
        if name.startswith("cls.seq_relationship."):
            if nsp:
                out["cls/seq_relationship/" + ("output_weights" if name.endswith("weight") else "output_bias")] = array
            continue
        if name.startswith("cls.predictions"):
            if mlm and name == "cls.predictions.bias":
                out["cls/predictions/output_bias"] = array
            continue
        if name.startswith("bert.pooler") and not pooler:
            continue
        parts = name.split(".")
        leaf = parts.pop()
        tf = []
        for i, part in enumerate(parts):
            if part == "layer" and i + 1 < len(parts) and parts[i + 1].isdigit():
                continue
            tf.append(f"layer_{part}" if part.isdigit() else part)
        if parts[-1].endswith("_embeddings"):
            pass
        elif parts[-1] == "LayerNorm":
            tf.append("gamma" if leaf == "weight" else "beta")
        elif leaf == "weight":
            tf.append("kernel")
            array = array.T.copy()
        else:
            tf.append("bias")
        out["/".join(tf)] = array
    if optimizer_slots:
        for key in list(out)[:3]:
            out[key + "/adam_m"] = np.zeros_like(out[key])
            out[key + "/adam_v"] = np.ones_like(out[key])
        out["global_step"] = np.array(1000, dtype=np.int64)
    return out


def bert_config_json(model) -> dict:
    c = model.config
    return {"attention_probs_dropout_prob": 0.1, "hidden_act": c.hidden_act, "hidden_dropout_prob": 0.1,
            "hidden_size": c.hidden_size, "initializer_range": 0.02, "intermediate_size": c.intermediate_size,
            "max_position_embeddings": c.max_position_embeddings, "num_attention_heads": c.num_attention_heads,
            "num_hidden_layers": c.num_hidden_layers, "type_vocab_size": c.type_vocab_size,
            "vocab_size": c.vocab_size}


def write_google_bert(folder: str, model, vocab_path: str, *, num_shards: int = 1, **kwargs) -> str:
    """chinese_L-12_H-768_A-12 layout: bert_model.ckpt.{index,data-*}, bert_config.json, vocab.txt."""
    os.makedirs(folder, exist_ok=True)
    write_tf_bundle(os.path.join(folder, "bert_model.ckpt"), google_tensors(model, **kwargs), num_shards=num_shards,
                    block_size=512)
    with open(os.path.join(folder, "bert_config.json"), "w") as handle:
        json.dump(bert_config_json(model), handle, indent=2)
    with open(vocab_path, encoding="utf-8") as src, open(os.path.join(folder, "vocab.txt"), "w", encoding="utf-8") as dst:
        dst.write(src.read())
    return folder


# UER-py key names per generation: (word, pos, seg, layer-norm leaves, NSP target names, MLM target names)
UER_GENERATIONS = {
    "2019": dict(emb=("embedding.word_embedding", "embedding.position_embedding", "embedding.segment_embedding"),
                 ln=("gamma", "beta"), nsp=("target.nsp_linear_1", "target.nsp_linear_2"),
                 mlm=("target.mlm_linear_1", "target.layer_norm", "target.mlm_linear_2")),
    "2021-sp": dict(emb=("embedding.word_embedding", "embedding.position_embedding", "embedding.segment_embedding"),
                    ln=("gamma", "beta"), nsp=("target.sp_linear_1", "target.sp_linear_2"),
                    mlm=("target.mlm_linear_1", "target.layer_norm", "target.mlm_linear_2")),
    "2022": dict(emb=("embedding.word.embedding", "embedding.pos.embedding", "embedding.seg.embedding"),
                 ln=("gamma", "beta"), nsp=("target.sp.linear_1", "target.sp.linear_2"),
                 mlm=("target.mlm.linear_1", "target.mlm.layer_norm", "target.mlm.linear_2")),
    "2023-ln": dict(emb=("embedding.word.embedding", "embedding.pos.embedding", "embedding.seg.embedding"),
                    ln=("weight", "bias"), nsp=("target.sp.linear_1", "target.sp.linear_2"),
                    mlm=("target.mlm.linear_1", "target.mlm.layer_norm", "target.mlm.linear_2")),
}


def uer_state(model, generation: str = "2019", *, nsp: bool = True) -> dict[str, torch.Tensor]:
    """A UER-py BERT state dict (as its pre-training saves it) holding the weights of a BertForPreTraining."""
    g = UER_GENERATIONS[generation]
    sd = {k: v.detach().clone() for k, v in model.state_dict().items()}
    gamma, beta = g["ln"]
    out = {f"{g['emb'][0]}.weight": sd["bert.embeddings.word_embeddings.weight"],
           f"{g['emb'][1]}.weight": sd["bert.embeddings.position_embeddings.weight"],
           # UER's segment 0 is padding: rows 1-2 are sentences A and B
           f"{g['emb'][2]}.weight": torch.cat([torch.randn(1, model.config.hidden_size),
                                               sd["bert.embeddings.token_type_embeddings.weight"]]),
           f"embedding.layer_norm.{gamma}": sd["bert.embeddings.LayerNorm.weight"],
           f"embedding.layer_norm.{beta}": sd["bert.embeddings.LayerNorm.bias"]}
    layer_map = {"self_attn.linear_layers.0": "attention.self.query", "self_attn.linear_layers.1": "attention.self.key",
                 "self_attn.linear_layers.2": "attention.self.value", "self_attn.final_linear": "attention.output.dense",
                 "feed_forward.linear_1": "intermediate.dense", "feed_forward.linear_2": "output.dense"}
    for i in range(model.config.num_hidden_layers):
        for uer, hf in layer_map.items():
            for leaf in ("weight", "bias"):
                out[f"encoder.transformer.{i}.{uer}.{leaf}"] = sd[f"bert.encoder.layer.{i}.{hf}.{leaf}"]
        for uer, hf in (("layer_norm_1", "attention.output.LayerNorm"), ("layer_norm_2", "output.LayerNorm")):
            out[f"encoder.transformer.{i}.{uer}.{gamma}"] = sd[f"bert.encoder.layer.{i}.{hf}.weight"]
            out[f"encoder.transformer.{i}.{uer}.{beta}"] = sd[f"bert.encoder.layer.{i}.{hf}.bias"]
    if nsp:
        for leaf in ("weight", "bias"):
            out[f"{g['nsp'][0]}.{leaf}"] = sd[f"bert.pooler.dense.{leaf}"]
            out[f"{g['nsp'][1]}.{leaf}"] = sd[f"cls.seq_relationship.{leaf}"]
    mlm1, mlm_ln, mlm2 = g["mlm"]
    out[f"{mlm1}.weight"] = sd["cls.predictions.transform.dense.weight"]
    out[f"{mlm1}.bias"] = sd["cls.predictions.transform.dense.bias"]
    out[f"{mlm_ln}.{gamma}"] = sd["cls.predictions.transform.LayerNorm.weight"]
    out[f"{mlm_ln}.{beta}"] = sd["cls.predictions.transform.LayerNorm.bias"]
    out[f"{mlm2}.weight"] = sd["bert.embeddings.word_embeddings.weight"]
    out[f"{mlm2}.bias"] = sd["cls.predictions.bias"]
    return out


def uer_config_json(model) -> dict:
    c = model.config
    return {"emb_size": c.hidden_size, "feedforward_size": c.intermediate_size, "hidden_size": c.hidden_size,
            "hidden_act": "gelu", "heads_num": c.num_attention_heads, "layers_num": c.num_hidden_layers,
            "max_seq_length": c.max_position_embeddings, "dropout": 0.1, "embedding": ["word", "pos", "seg"],
            "encoder": "transformer", "target": ["mlm", "sp"]}
