"""An exported ONNX folder (see `onnx_export`) run by ONNX Runtime, shaped like the torch NSP model.

NSPScorer calls `model(**batch).logits` and reads `model.config`; `OnnxNSPModel` answers the same
calls from an `onnxruntime.InferenceSession`, so an exported folder goes through the one scoring code
path (encoding, length-sorted batches, softmax) and nothing about scoring is written twice.
"""
from __future__ import annotations

import functools
import hashlib
import os
from types import SimpleNamespace
from typing import NamedTuple, Optional

import numpy as np
import torch

from .errors import ModelError, UsageError, first_line
from .extras import install_hint

FP32_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
INPUT_NAMES = ("input_ids", "token_type_ids", "attention_mask", "position_ids")


def is_onnx_folder(path: str) -> bool:
    """Whether `path` is a folder written by `nspzero export-onnx` (it holds model.onnx)."""
    return os.path.isdir(path) and os.path.isfile(os.path.join(path, FP32_FILE))


def extra_missing() -> str:
    """The message for a missing 'onnx' extra (the install hint is looked up only when needed)."""
    return f"ONNX models need the 'onnx' extra: {install_hint('onnx')} (it installs onnxruntime)"


class RuntimeProblem(NamedTuple):
    """Why ONNX Runtime cannot run here: `message` (one line) and whether it is installed but `broken`."""

    message: str
    broken: bool


def runtime_problem() -> Optional[RuntimeProblem]:
    """Why onnx + onnxruntime cannot be used here, or None when both import. A broken install (an
    import that raises anything, not only ImportError: a bad wheel, a missing shared library, an ABI
    mismatch) is a problem to report in one line, never a traceback."""
    try:
        import onnx  # noqa: F401 - the exporter and the int8 quantizer read/write ONNX protobufs
        import onnxruntime  # noqa: F401
    except ImportError:
        return RuntimeProblem(extra_missing(), broken=False)
    except Exception as exc:  # noqa: BLE001 - a broken install raises whatever its import raises
        return RuntimeProblem(f"the installed onnx/onnxruntime cannot be imported ({type(exc).__name__}: "
                              f"{first_line(exc)}); reinstall it: {install_hint('onnx')}", broken=True)
    return None


def import_onnxruntime():
    """onnxruntime, or a UsageError naming the extra to install (or the broken install to repair)."""
    problem = runtime_problem()
    if problem is not None:
        raise UsageError(problem.message)
    import onnxruntime

    return onnxruntime


@functools.lru_cache(maxsize=8)
def _external_files(path: str, mtime_ns: int, size: int) -> tuple[str, ...]:
    """The external-data files `path` names (its weights are not read); keyed by the file's
    mtime and size, so a fingerprint per eval does not parse a large graph again."""
    try:
        import onnx
        from onnx.external_data_helper import _get_all_tensors

        proto = onnx.load(path, load_external_data=False)
        names = {entry.value for tensor in _get_all_tensors(proto) for entry in tensor.external_data
                 if entry.key == "location"}
    except Exception:  # noqa: BLE001 - without onnx (or on a file it cannot parse): the files named like it
        base = os.path.basename(path)
        names = {n for n in os.listdir(os.path.dirname(path)) if n.startswith(base) and n != base}
    return tuple(sorted(os.path.join(os.path.dirname(path), n) for n in names))


class OnnxNSPModel:
    """`model(input_ids=…, token_type_ids=…, attention_mask=…, position_ids=None)` → `.logits`
    (a float32 torch tensor), backed by ONNX Runtime on the CPU. `variant` "float32" runs model.onnx,
    "int8" model.int8.onnx; `with_variant` gives the other one (NSPScorer picks it from its dtype)."""

    is_onnx = True

    def __init__(self, folder: str, config, variant: str = "float32", threads: Optional[int] = None,
                 file: Optional[str] = None) -> None:
        ort = import_onnxruntime()
        self.folder, self.config, self.variant = folder, config, variant
        path = os.path.join(folder, file or (INT8_FILE if variant == "int8" else FP32_FILE))
        self.path, self.name_or_path, self._digest = path, folder, None
        if not os.path.isfile(path):
            raise UsageError(f"{folder} has no {os.path.basename(path)}; export it with `nspzero export-onnx` "
                             f"(it writes model.onnx and model.int8.onnx), or use dtype float32")
        self._ort, self._threads, self._session = ort, threads, None

    @property
    def session(self):
        """The ONNX Runtime session, built on first use: the loader hands the scorer an fp32 model that
        `with_variant("int8")` replaces, and building both would hold the fp32 weights for nothing."""
        if self._session is None:
            options = self._ort.SessionOptions()
            options.intra_op_num_threads = self._threads or torch.get_num_threads()
            options.inter_op_num_threads = 1
            try:
                session = self._ort.InferenceSession(self.path, options, providers=["CPUExecutionProvider"])
            except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own untyped errors for bad files
                raise ModelError(f"could not load {self.path}: {first_line(exc)}; export the folder again with "
                                 f"`nspzero export-onnx`") from None
            names = {i.name for i in session.get_inputs()}
            if names != set(INPUT_NAMES):
                raise ModelError(f"{self.path} takes inputs {sorted(names)}, not {list(INPUT_NAMES)}: it was not "
                                 f"written by `nspzero export-onnx`; export the model again")
            self._session = session
        return self._session

    def with_variant(self, variant: str) -> "OnnxNSPModel":
        return self if variant == self.variant else OnnxNSPModel(self.folder, self.config, variant)

    # the torch.nn.Module calls NSPScorer and the benchmark make on a model
    def eval(self) -> "OnnxNSPModel":
        return self

    def to(self, device) -> "OnnxNSPModel":
        if torch.device(device).type != "cpu":
            raise UsageError("an exported ONNX model runs on CPU only here; use --device cpu (or the torch checkpoint "
                             "on a GPU)")
        return self

    def modules(self):
        return iter(())

    def loaded_files(self) -> list[str]:
        """The ONNX file and the external-data files it names: every file the session reads (the
        evaluation cache fingerprints them all). Parsed once per version of the file."""
        info = os.stat(self.path)
        return [self.path] + list(_external_files(self.path, info.st_mtime_ns, info.st_size))

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The ONNX file's sha256 as the one "tensor": the evaluation cache fingerprints a model by its
        state dict, so two exported models (or fp32 and int8) never share cached scores."""
        if self._digest is None:
            digest = hashlib.sha256()
            with open(self.path, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
            self._digest = torch.frombuffer(bytearray(digest.digest()), dtype=torch.uint8)
        return {f"onnx:{os.path.basename(self.path)}": self._digest}

    def __call__(self, input_ids: torch.Tensor, token_type_ids: Optional[torch.Tensor] = None,
                 attention_mask: Optional[torch.Tensor] = None, position_ids: Optional[torch.Tensor] = None,
                 **_ignored) -> SimpleNamespace:
        def array(tensor: Optional[torch.Tensor], default: np.ndarray) -> np.ndarray:
            return default if tensor is None else tensor.cpu().numpy().astype(np.int64)

        ids = array(input_ids, None)
        n, width = ids.shape
        feeds = {"input_ids": ids,
                 "token_type_ids": array(token_type_ids, np.zeros_like(ids)),
                 "attention_mask": array(attention_mask, np.ones_like(ids)),
                 "position_ids": array(position_ids, np.tile(np.arange(width, dtype=np.int64), (n, 1)))}
        logits = self.session.run(["logits"], feeds)[0]
        return SimpleNamespace(logits=torch.from_numpy(np.asarray(logits, dtype=np.float32)))


def load_onnx_folder(folder: str):
    """(tokenizer, OnnxNSPModel fp32) from an exported folder, or a ModelError naming what is missing."""
    from transformers import AutoTokenizer, BertConfig

    from .quiet import quiet_transformers

    if not os.path.isfile(os.path.join(folder, "config.json")):
        raise ModelError(f"{folder} holds {FP32_FILE} but no config.json; export the model again with "
                         f"`nspzero export-onnx`")
    import_onnxruntime()
    _check_onnx_config(os.path.join(folder, "config.json"))
    with quiet_transformers():
        try:
            config = BertConfig.from_json_file(os.path.join(folder, "config.json"))
            tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=False)
        except Exception as exc:  # noqa: BLE001 - config/tokenizer files broken in many ways
            raise ModelError(f"could not read the config or tokenizer in {folder}: {first_line(exc)}; export the model again")\
                from None
    return tokenizer, OnnxNSPModel(folder, config)


def _check_onnx_config(path: str) -> None:
    """The folder's config.json meets the same field checks as every other format's
    (`formats.configs.check_config`); one that cannot be read is left to the loader's own message."""
    import json

    from .formats.configs import check_config

    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, UnicodeDecodeError, ValueError):
        return
    if isinstance(data, dict):
        check_config(data, path, data.get("model_type") if isinstance(data.get("model_type"), str) else None)
