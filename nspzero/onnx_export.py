"""`nspzero export-onnx`: an NSP checkpoint → a folder that ONNX Runtime runs without torch.

The folder holds model.onnx (fp32), model.int8.onnx (ONNX Runtime dynamic int8, per-channel weights, 7-bit
only on CPUs without VNNI, the pooler and NSP head kept fp32: see `quantize_int8`), config.json and the tokenizer files, and
loads back with `--model OUT/` (see `onnx_model`). It is written in a temporary folder beside OUT and
renamed into place, as `nspzero convert` does, so a failure leaves nothing at OUT.
"""
from __future__ import annotations

import hashlib
import logging
import os
import shutil
import time
import warnings
from pathlib import Path
from typing import Optional

import torch

from . import unpadded
from .errors import UsageError
from .extras import install_hint
from .onnx_model import FP32_FILE, INPUT_NAMES, INT8_FILE, import_onnxruntime
from .tiny_model import has_random_weights, random_weights_note

log = logging.getLogger("nspzero")

OPSET = 17
# bump when what the export writes changes (nodes kept fp32, quantizer settings, inputs): cached exports are redone
EXPORT_VERSION = "3"  # 2: the last layer on [CLS] only; 3: per-token activation scales (batch-invariant)
# Nodes whose MatMul/Gemm stay fp32 in model.int8.onnx: the pooler and the NSP head run on one token
# per pair (no measurable time), and their quantisation error lands on the logits undamped.
ONNX_FP32_NODES = ("/pooler/", "/cls/", "/sop_classifier/")  # of every architecture in heads.HEADS


class _LogitsOnly(torch.nn.Module):
    """The NSP model with positional inputs and the logits as its one output (what ONNX exports). A
    plain BERT or ERNIE runs `unpadded.logits(keep_padding=True)`: transformers' forward, but the last
    layer computed for [CLS] alone, the one token the pooler reads (the bench's int8: 113 → 128–132 pairs/s)."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model
        self.cls_only = unpadded.supports(model)

    def forward(self, input_ids, token_type_ids, attention_mask, position_ids):
        if self.cls_only:
            return unpadded.logits(self.model, input_ids, attention_mask, token_type_ids, position_ids,
                                   keep_padding=True)
        return self.model(input_ids=input_ids, token_type_ids=token_type_ids, attention_mask=attention_mask,
                          position_ids=position_ids).logits


def export_fp32(model: torch.nn.Module, path: str) -> None:
    """Trace `model` (eval mode) to ONNX with dynamic batch and sequence axes."""
    wrapper = _LogitsOnly(model).eval()  # eval on the wrapper: export restores its mode on every submodule
    ids = torch.full((2, 8), 5, dtype=torch.long)
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0  # a padded row, so the traced graph keeps the attention-mask path
    positions = torch.arange(8).expand(2, 8).contiguous()
    axes = {name: {0: "batch", 1: "sequence"} for name in INPUT_NAMES}
    axes["logits"] = {0: "batch"}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(wrapper, (ids, torch.zeros_like(ids), mask, positions), path, dynamo=False,
                          input_names=list(INPUT_NAMES), output_names=["logits"], dynamic_axes=axes,
                          opset_version=OPSET)


def fp32_node_names(graph) -> list[str]:
    """Names to pass as ONNX Runtime's nodes_to_exclude for ONNX_FP32_NODES. Each Gemm is listed under
    its own name and as `<name>_MatMul`: the quantizer rewrites a Gemm into a MatMul of that name before
    it reads the list, so the plain name alone excludes nothing."""
    names = []
    for node in graph.node:
        if node.op_type in ("MatMul", "Gemm") and any(p in node.name for p in ONNX_FP32_NODES):
            names += [node.name] + ([node.name + "_MatMul"] if node.op_type == "Gemm" else [])
    return names


def quantize_int8(fp32_path: str, int8_path: str, reduce_range: Optional[bool] = None) -> None:
    """ONNX Runtime dynamic int8: per-channel 8-bit weights, activations in 8 bits per token at run
    time (`per_token_activations`); MatMuls of ONNX_FP32_NODES stay fp32. `reduce_range` (7-bit weights, against the u8×s8
    kernel saturating) None follows the exporting CPU: only without VNNI (see cpu.has_vnni;
    figures in docs/speed.md). A file exported on a VNNI CPU and run on an AVX2 one loses accuracy."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from . import cpu

    graph = onnx.load(fp32_path, load_external_data=False).graph
    quiet = logging.getLogger()
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # onnxruntime's "consider pre-processing" warning goes to the root logger
    try:
        quantize_dynamic(fp32_path, int8_path, per_channel=True,
                         reduce_range=(not cpu.has_vnni()) if reduce_range is None else reduce_range,
                         weight_type=QuantType.QInt8, nodes_to_exclude=fp32_node_names(graph))
    finally:
        quiet.setLevel(level)
    per_token_activations(int8_path)


def per_token_activations(path: str) -> None:
    """Rewrite every DynamicQuantizeLinear of the int8 file `path` in place: each token (row of the last
    axis) is divided by its own max |x| / 127 and rounded around the fixed zero point 128, instead of the
    whole batch sharing one range. A pair's int8 codes, and so its score, then never depend on the pairs
    batched beside it (per-tensor ranges moved P by up to ~4e-3): the server's answers do not depend on
    other clients' requests and a resumed eval scores as a fresh one. The scale each MatMulInteger's
    output is multiplied by becomes per token; it broadcasts against the per-channel weight scales."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    proto = onnx.load(path)
    nodes = []
    for node in proto.graph.node:
        if node.op_type != "DynamicQuantizeLinear":
            nodes.append(node)
            continue
        x, (q, scale, zero) = node.input[0], node.output
        name = node.name or q
        consts = {f"{name}/eps": np.array(1e-6, np.float32), f"{name}/inv127": np.array(1 / 127, np.float32),
                  f"{name}/one": np.array(1.0, np.float32), zero: np.array(128, np.uint8)}
        proto.graph.initializer.extend(numpy_helper.from_array(v, k) for k, v in consts.items())
        nodes += [helper.make_node("Abs", [x], [f"{name}/abs"], name=f"{name}/Abs"),
                  helper.make_node("ReduceMax", [f"{name}/abs"], [f"{name}/max"], name=f"{name}/ReduceMax",
                                   axes=[-1], keepdims=1),
                  helper.make_node("Max", [f"{name}/max", f"{name}/eps"], [f"{name}/range"], name=f"{name}/Max"),
                  helper.make_node("Mul", [f"{name}/range", f"{name}/inv127"], [scale], name=f"{name}/Scale"),
                  helper.make_node("Div", [x, scale], [f"{name}/scaled"], name=f"{name}/Div"),
                  helper.make_node("QuantizeLinear", [f"{name}/scaled", f"{name}/one", zero], [q],
                                   name=f"{name}/Quantize")]
    del proto.graph.node[:]
    proto.graph.node.extend(nodes)
    onnx.save(proto, path)


def export_onnx(model: str, out_dir: str | os.PathLike, *, int8: bool = True) -> Path:
    """Export checkpoint `model` (anything `--model` takes) to OUT_DIR; returns OUT_DIR.

    OUT_DIR must not exist or be an empty folder (UsageError: nothing is overwritten); onnxruntime
    and onnx must be installed (`pip install 'nspzero[onnx]'`)."""
    from .folders import atomic_folder, new_folder
    from .loading import load_nsp_model
    from .quiet import quiet_transformers

    out = new_folder(out_dir, "OUT folder")
    import_onnxruntime()
    try:
        import onnx  # noqa: F401 - the int8 step and the exporter read/write ONNX protobufs
    except ImportError:
        raise UsageError(f"export-onnx needs the 'onnx' extra: {install_hint('onnx')} (onnx, onnxruntime)") \
            from None
    tokenizer, nsp = load_nsp_model(model)
    if getattr(nsp, "is_onnx", False):
        raise UsageError(f"{model} is already an exported ONNX folder; export from the torch checkpoint")
    if has_random_weights(nsp.config):  # the export keeps the mark, so its loads say it too
        log.warning("%s", random_weights_note(str(model)))
    with atomic_folder(out, "exporting") as tmp:
        export_fp32(nsp.float().eval(), str(tmp / FP32_FILE))
        if int8:
            quantize_int8(str(tmp / FP32_FILE), str(tmp / INT8_FILE))
        with quiet_transformers():
            nsp.config.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
        from .tuning.saved import TUNING_FILE

        tuning = os.path.join(os.path.expanduser(str(model)), TUNING_FILE)  # a tuned folder's labels go along
        if os.path.isfile(tuning):
            shutil.copyfile(tuning, tmp / TUNING_FILE)
        vocab = getattr(tokenizer, "vocab_file", None)
        if vocab and os.path.isfile(vocab) and not (tmp / "vocab.txt").exists():
            shutil.copyfile(vocab, tmp / "vocab.txt")
    return out


def cached_export(model: torch.nn.Module, loaded_by_nspzero: bool) -> Path:
    """A folder holding model.onnx and model.int8.onnx of `model` (a torch NSP model in fp32) in the user
    cache (NSPZERO_CACHE_DIR, else ~/.cache/nspzero, under onnx/): exported once per model, keyed by
    its config and weights (`digests.model_digest`: the weight files' digests when nspzero loaded the
    model itself, `loaded_by_nspzero`, else its tensors), the versions of everything that writes the
    files (EXPORT_VERSION, transformers, torch, onnx, ONNX Runtime) and this CPU's int8 scheme, so
    `dtype="int8"` runs on ONNX Runtime without an export step by the user. One process exports at a
    time (a lock file beside); the folder appears whole or not at all (`atomic_folder`), with the digest of
    each file (`write_manifest`): a folder altered since is exported again, with one warning (`altered`)."""
    import onnx
    import onnxruntime
    import transformers

    from . import cpu
    from .digests import memo_dir, model_digest
    from .folders import atomic_folder, full_disk, locked_file

    key = "|".join([EXPORT_VERSION, model_digest(model, files=loaded_by_nspzero),
                    model.config.to_json_string(use_diff=False), str(OPSET), transformers.__version__,
                    torch.__version__, onnx.__version__, onnxruntime.__version__, f"vnni={cpu.has_vnni()}"])
    folder = memo_dir() / "onnx" / hashlib.sha256(key.encode()).hexdigest()[:20]
    lock_path = folder.parent / f"{folder.name}.lock"
    if altered(folder) is None:
        lock_path.unlink(missing_ok=True)  # an older version's leftover: nobody waiting on it can need it
        return folder
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        lock = locked_file(lock_path)  # a second process waits here, then finds the folder made
    except OSError as exc:
        raise UsageError(f"cannot write the ONNX cache {folder.parent}: {exc.strerror or exc}; set "
                         f"NSPZERO_CACHE_DIR to a writable folder, or NSPZERO_BACKEND=torch") from None
    try:
        change = altered(folder)
        if change is None:
            return folder
        # fp32 file + int8 file + the exporter's own copies: about 1.5x the fp32 weights
        full = full_disk(folder.parent, needed=sum(p.numel() for p in model.parameters()) * 6)
        if full is not None:
            raise UsageError(f"cannot export to the ONNX cache {folder.parent}: {full}, or set NSPZERO_CACHE_DIR "
                             f"to another disk, or NSPZERO_BACKEND=torch")
        if folder.exists():  # written whole once (atomic_folder), so anything else was changed since
            log.warning("the cached ONNX export %s was altered since it was written (%s); exporting it again",
                        folder, change)
            shutil.rmtree(folder, ignore_errors=True)
        else:
            log.warning("exporting the model to ONNX once, for ONNX Runtime (%s; reused by later runs) …", folder)
        start = time.perf_counter()
        with atomic_folder(folder, "exporting") as tmp:
            export_fp32(model.eval(), str(tmp / FP32_FILE))
            quantize_int8(str(tmp / FP32_FILE), str(tmp / INT8_FILE))
            write_manifest(tmp)
    finally:  # removed while held: a process waiting on it then finds the folder (or exports alone)
        lock_path.unlink(missing_ok=True)
        os.close(lock)
    log.info("exported in %.0f s", time.perf_counter() - start)
    return folder


MANIFEST = "digests.json"  # sha256 of each cached file, written with them


def write_manifest(folder: Path) -> None:
    """Record the sha256 of every file of a cached export as it is written, so `altered` can tell a
    file changed later (an edit that still loads would otherwise be run as is)."""
    import json

    from .digests import _hash_file

    sums = {f.name: _hash_file(str(f)) for f in sorted(folder.iterdir()) if f.is_file() and f.name != MANIFEST}
    (folder / MANIFEST).write_text(json.dumps(sums, indent=1), encoding="utf-8")


def altered(folder: Path) -> Optional[str]:
    """None when the cached export is whole and every file's content is what `write_manifest` recorded,
    else what differs (one phrase). Digests are memoised by path, size, mtime, ctime and inode
    (`digests.file_digests`), so an unchanged folder is not read again on every load."""
    import json

    from .digests import file_digests

    if not (folder / INT8_FILE).is_file():
        return f"no {INT8_FILE}"
    try:
        sums = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        if not isinstance(sums, dict) or not all(isinstance(v, str) for v in sums.values()):
            raise ValueError("not a mapping of digests")
    except (OSError, ValueError) as exc:
        return f"{MANIFEST} unreadable: {type(exc).__name__}"
    names = sorted(f.name for f in folder.iterdir() if f.name != MANIFEST)
    if names != sorted(sums):
        return f"files {names} instead of {sorted(sums)}"
    try:
        now = file_digests([str(folder / name) for name in names])
    except OSError as exc:
        return f"unreadable: {exc.strerror or exc}"
    changed = [name for name in names if now.get(str(folder / name)) != sums[name]]
    return f"{', '.join(changed)} changed" if changed else None
