"""Checkpoint loading: a model name or folder → (tokenizer, NSP-only model), or a ModelError.

Kept apart from scoring because checkpoint formats grow (transformers folders, Google TF1 bundles and
UER-py state dicts, see `formats.checkpoints`) while the scorer only ever needs a tokenizer and a model. Every
way a load can fail ends here as one ModelError line naming the file and the fix.
"""
from __future__ import annotations

import functools
import json
import logging
import os
import re
import socket
import threading
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from .errors import ModelError, UsageError, first_line
from .quiet import quiet_transformers

if TYPE_CHECKING:  # torch loads with the model, not with the CLI: a usage error is answered at once
    import torch

log = logging.getLogger("nspzero")

DEFAULT_MODEL = "bert-base-chinese"
FILE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".index", ".safetensors", ".json", ".txt", ".h5", ".msgpack")
HUB_PROBE_TIMEOUT_S = 1.5
LOCAL_HINT = ("download it on a machine with internet (e.g. `hf download NAME --local-dir DIR`) and "
              "pass the folder with --model DIR")


HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?")  # the hub's 'name' or 'org/name'


def _is_local_path(name: str) -> bool:
    """Hub ids are 'name' or 'org/name'. Anything else is a local path (`nope/`, `my model`), and so is
    'a/b' whose first component exists here (`models/mybert` beside a `models/` folder) or that ends like a file."""
    if os.path.exists(name) or name.startswith(("/", ".", "~")) or name.count("/") > 1 or "\\" in name:
        return True
    if not HUB_ID.fullmatch(name):
        return True
    first = name.split("/", 1)[0]
    return ("/" in name and os.path.exists(first)) or name.lower().endswith(FILE_SUFFIXES)


def config_file_path() -> str:
    """Where nspzero's user config lives: $XDG_CONFIG_HOME/nspzero/config.yaml (~/.config/... by default)."""
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, "nspzero", "config.yaml")


def default_model_name() -> tuple[str, str]:
    """The model to use when none is given, and where that choice came from (for a one-line notice).

    In order: the environment variable NSP_MODEL; `model: NAME` in the YAML file `config_file_path()`
    (`$XDG_CONFIG_HOME/nspzero/config.yaml`, i.e. `~/.config/nspzero/config.yaml`); else bert-base-chinese,
    as transformers' pipelines pick a default model. Returns (name, "NSP_MODEL" | the config path |
    "built-in default")."""
    env = os.environ.get("NSP_MODEL", "").strip()
    if env:
        return env, "NSP_MODEL"
    path = config_file_path()
    if os.path.isfile(path):
        import yaml

        try:
            with open(path, encoding="utf-8") as handle:
                data = yaml.safe_load(handle)
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise UsageError(f"cannot read nspzero config {path}: {first_line(exc)}; fix it or delete it") from None
        model = data.get("model") if isinstance(data, dict) else None
        if model is not None:
            if not isinstance(model, str) or not model.strip():
                raise UsageError(f"{path}: 'model' must be a model name or folder (a string), got {model!r}")
            return model.strip(), path
    return DEFAULT_MODEL, "built-in default"


def _hub_offline_env() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


@functools.lru_cache(maxsize=8)
def _hub_reachable(endpoint: str, proxy: str) -> bool:
    """Can a TCP connection to the hub (or the HTTPS proxy) be opened within ~1.5 s? DNS included: the
    probe runs in a thread so a hanging resolver cannot hold the load for transformers' ~30 s."""
    url = urlparse(proxy or endpoint)
    host = url.hostname or "huggingface.co"
    port = url.port or (443 if (url.scheme or "https") == "https" else 80)
    result: list[bool] = []

    def probe() -> None:
        try:
            socket.create_connection((host, port), timeout=HUB_PROBE_TIMEOUT_S).close()
            result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(HUB_PROBE_TIMEOUT_S + 0.5)
    return bool(result and result[0])


def _hub_online() -> bool:
    if _hub_offline_env():
        return False
    endpoint = os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
    proxy = os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy") or ""
    return _hub_reachable(endpoint.rstrip("/"), proxy)



def _check_config_json(folder: str) -> None:
    """config.json must be a JSON object with a known activation, fields of the right types and bounds
    (`formats.configs.check_config`), sizes that agree with the safetensors weights' shapes (read from
    their headers) and nothing the installed transformers would drop: refused here, in one line, before
    anything is allocated, instead of as a traceback (or a silently different model) from transformers."""
    path = os.path.join(folder, "config.json")
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ModelError(f"{path} is not a valid JSON file ({first_line(exc)}); restore the checkpoint's config.json") \
            from None
    if not isinstance(data, dict):
        raise ModelError(f"{path} holds {json.dumps(data)[:20]}, not a JSON object; restore the checkpoint's "
                         f"config.json")
    act = data.get("hidden_act")
    if act is not None:
        from transformers.activations import ACT2FN

        if not isinstance(act, str) or act not in ACT2FN:
            raise ModelError(f"{path}: unknown hidden_act {act!r}; BERT uses \"gelu\" (fix config.json)")
    from .formats.configs import check_against_tensors, check_config

    model_type = data.get("model_type") if isinstance(data.get("model_type"), str) else None
    check_config(data, path, model_type)
    shapes = _safetensors_shapes(folder)
    if shapes:
        check_against_tensors(data, shapes, path, model_type or "bert")


def _safetensors_shapes(folder: str) -> dict[str, tuple[int, ...]]:
    """Every tensor's shape in the folder's .safetensors files, from their headers (nothing is read)."""
    from safetensors import safe_open

    shapes: dict[str, tuple[int, ...]] = {}
    for file in sorted(os.listdir(folder)):
        if file.endswith(".safetensors"):
            _check_safetensors(os.path.join(folder, file))
            with safe_open(os.path.join(folder, file), framework="pt") as handle:
                shapes.update((k, tuple(handle.get_slice(k).get_shape())) for k in handle.keys())
    return shapes


def _check_safetensors(path: str) -> None:
    """Header and length of a .safetensors file (checked by safetensors itself), so a truncated or empty
    download is named in one line, not a traceback."""
    from safetensors import safe_open

    try:
        with safe_open(path, framework="pt"):
            pass
    except Exception as exc:  # noqa: BLE001 - SafetensorError is a bare Exception; OSError too
        raise ModelError(f"{path} is truncated or corrupt ({first_line(exc)}); download the weights again") \
            from None


def _check_folder_vocab(folder: str) -> None:
    """The vocab.txt a folder's tokenizer is built from (no tokenizer.json) has [CLS]/[SEP]/[PAD]:
    a tokenizer adds a missing one with an id the id checks cannot always tell. Foreign checkpoints
    check the vocab they use when they load (`checkpoints.load_checkpoint`), so it is read once."""
    if not os.path.isfile(os.path.join(folder, "tokenizer.json")) and os.path.isfile(os.path.join(folder, "vocab.txt")):
        from .formats.checkpoints import check_vocab

        check_vocab(os.path.join(folder, "vocab.txt"))


def _check_vocab_tokens(tokenizer, name: str, vocab_size: int) -> None:
    """A vocab without [CLS]/[SEP]/[PAD] would fail (or silently use [UNK]) at the first batch: refuse now.
    A tokenizer that added a missing special token gives it an id past the model's embeddings."""
    bad = []
    for token in (tokenizer.cls_token, tokenizer.sep_token, tokenizer.pad_token):
        token_id = tokenizer.convert_tokens_to_ids(token) if token is not None else None
        if token_id is None or token_id == tokenizer.unk_token_id or (vocab_size and token_id >= vocab_size):
            bad.append(str(token or "[CLS]/[SEP]/[PAD]"))
    if bad:
        raise ModelError(f"the vocabulary of {name!r} has no {'/'.join(bad)} token; NSP needs a BERT WordPiece vocab "
                         f"(put the checkpoint's own vocab.txt beside config.json)")


def _weights_file(folder: str) -> str:
    for candidate in ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                      "pytorch_model.bin.index.json"):
        if os.path.isfile(os.path.join(folder, candidate)):
            return os.path.join(folder, candidate)
    return os.path.join(folder, "model.safetensors")


def _load_foreign(name: str, source: str) -> tuple["object", torch.nn.Module]:
    """A Google TF1 / UER-py checkpoint, converted in memory (see `checkpoints.load_checkpoint`)."""
    from .formats.checkpoints import load_checkpoint, tokenizer_for

    log.info("reading %s as a %s checkpoint (converted in memory)", name, "Google TF1" if source == "google" else "UER-py")
    with quiet_transformers():
        checkpoint = load_checkpoint(name, source=source)
        tokenizer = tokenizer_for(checkpoint.vocab, checkpoint.do_lower_case)
    return tokenizer, checkpoint.model


def load_nsp_model(name_or_path: str) -> tuple["object", torch.nn.Module]:
    """Load (tokenizer, NSP model) from a hub name or a local directory, or raise ModelError; the
    tokenizer of every format (torch, TF1, UER, ONNX) is checked against the model (`check_tokenizer`).
    See `_load_nsp_model`."""
    tokenizer, model = _load_nsp_model(name_or_path)
    check_tokenizer(tokenizer, os.path.expanduser(str(name_or_path)), getattr(model.config, "vocab_size", 0))
    return tokenizer, model


def check_tokenizer(tokenizer, name: str, vocab_size: int) -> None:
    """At load, not at the first long text: a vocabulary far smaller than the model's (every text
    [UNK]), one with ids past its embeddings (an IndexError, or ONNX Runtime's Gather error, at the
    first text using them), or one without [CLS]/[SEP]/[PAD] is refused."""
    if len(tokenizer) < vocab_size // 2:
        raise ModelError(f"the tokenizer of {name!r} knows {len(tokenizer)} tokens but the model has "
                         f"{vocab_size}: its vocab.txt (or tokenizer.json) is missing or wrong, so every text "
                         f"would become [UNK]; put the checkpoint's vocab.txt beside config.json")
    _check_vocab_tokens(tokenizer, name, vocab_size)
    top = max(tokenizer.get_vocab().values(), default=-1)
    if vocab_size and top >= vocab_size:
        raise ModelError(f"the vocabulary of {name!r} has token ids up to {top} but the model has {vocab_size} "
                         f"embeddings; it is not this model's vocabulary (put the checkpoint's own vocab.txt beside "
                         f"config.json)")


WORDPIECE_ONLY = "vocab.txt"
TOKENIZER_DESCRIPTIONS = ("tokenizer.json", "tokenizer_config.json")


def _folder_tokenizer(folder: str, kwargs: dict):
    """The tokenizer of a local folder. A folder whose only tokenizer file is vocab.txt (how Chinese ALBERT,
    ERNIE and many BERT checkpoints ship) is a WordPiece vocab read by BertTokenizer: AutoTokenizer would
    pick the architecture's own class (ALBERT's SentencePiece one) and find nothing to read."""
    from transformers import AutoTokenizer, BertTokenizer

    described = any(os.path.isfile(os.path.join(folder, f)) for f in TOKENIZER_DESCRIPTIONS)
    if not described and os.path.isfile(os.path.join(folder, WORDPIECE_ONLY)):
        return BertTokenizer.from_pretrained(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder, **kwargs)
    files = getattr(tokenizer, "vocab_files_names", {}) or {}
    if not any(os.path.isfile(os.path.join(folder, f)) for f in files.values()):
        wanted = " or ".join(sorted(set(files.values()))) or "its vocabulary file"
        raise ModelError(f"{os.path.join(folder, 'tokenizer_config.json')} names {type(tokenizer).__name__}, which "
                         f"reads {wanted}, and {folder!r} has none; add that file, or, if vocab.txt is the "
                         f"checkpoint's WordPiece vocab, delete tokenizer_config.json")
    return tokenizer


def _load_nsp_model(name_or_path: str) -> tuple["object", torch.nn.Module]:
    """Load (tokenizer, NSP model) from a hub name or a local directory, or raise ModelError.

    Uses the NSP-only model class (no masked-LM head to compute), never `trust_remote_code`,
    safetensors when present and torch's weights-only loader otherwise (transformers' default).
    A checkpoint with any weight missing — above all its sentence-relation head (`cls.seq_relationship.*`,
    ALBERT's `sop_classifier.*`, see `formats.heads`) —
    is refused instead of running with random weights. A folder holding Google's
    `bert_model.ckpt.*` + `bert_config.json` + `vocab.txt` (or a UER-py `.bin` with a vocab.txt
    beside it) is converted in memory; a folder from `nspzero export-onnx` (model.onnx) gives an
    `onnx_model.OnnxNSPModel` run by ONNX Runtime. Hub names are tried only when the hub answers within ~1.5 s
    (or from the local cache: HF_HUB_OFFLINE=1 or no connection), so an offline machine fails fast.
    """
    from transformers import AutoConfig, AutoTokenizer

    from .formats.checkpoints import detect_source
    from .formats.heads import KNOWN_CHECKPOINTS, head_weights, missing_head, sentence_head

    name = os.path.expanduser(str(name_or_path))
    local = _is_local_path(name)
    kwargs: dict = {"trust_remote_code": False}
    if local:
        if not os.path.exists(name):
            foreign = detect_source(name)  # a TF prefix such as dir/bert_model.ckpt
            if foreign:
                return _load_foreign(name, foreign)
            raise ModelError(f"model directory {name!r} does not exist; pass a folder holding config.json, the weights "
                             f"and vocab.txt, or a hub name such as bert-base-chinese")
        from .onnx_model import is_onnx_folder, load_onnx_folder

        if is_onnx_folder(name):  # written by `nspzero export-onnx`: run by ONNX Runtime
            _check_folder_vocab(name)
            return load_onnx_folder(name)
        foreign = detect_source(name)
        if foreign and (os.path.isfile(name) or not os.path.isfile(_weights_file(name))):
            return _load_foreign(name, foreign)
        if not os.path.isdir(name):
            raise ModelError(f"{name!r} is a file; pass the folder holding config.json, the weights and vocab.txt "
                             f"(or a Google bert_model.ckpt / UER-py .bin checkpoint)")
        if not os.path.isfile(os.path.join(name, "config.json")):
            raise ModelError(f"{name!r} has no config.json (nor a Google bert_model.ckpt.index or a UER-py .bin); pass "
                             f"the folder a model was saved to with save_pretrained()")
        _check_config_json(name)  # checks the .safetensors files too
        where = name
    else:
        online = _hub_online()
        if not online:
            kwargs["local_files_only"] = True  # the local cache still works offline
        where = f"hub model {name!r}"

    def hub_failure(exc: BaseException) -> ModelError:
        why = ("HF_HUB_OFFLINE is set" if _hub_offline_env() else "the hub cannot be reached") \
            if "local_files_only" in kwargs else first_line(exc)
        both = f"no local folder {name}, and " if "/" in name else ""
        hint = LOCAL_HINT.replace("NAME", name)
        return ModelError(f"could not load model {name!r}: {both}{why} (and it is not in the local cache); "
                          f"{hint}")

    with quiet_transformers():
        try:
            config = AutoConfig.from_pretrained(name, **kwargs)
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            if not local:
                raise hub_failure(exc) from None
            raise ModelError(f"could not load model {name!r}: {first_line(exc)} — fix or restore "
                             f"{os.path.join(name, 'config.json')}") from None
        head = sentence_head(config.model_type, name)  # the one rule: no trained sentence-relation head, no load
        if not local:  # a folder's config.json was checked as written; a hub model's is checked as read
            from .formats.configs import check_config

            check_config(config.to_dict(), where, config.model_type)
        try:
            model, info = head.model_class().from_pretrained(name, config=config, output_loading_info=True, **kwargs)
        except Exception as exc:  # noqa: BLE001 - unpickling/deserialising errors come in many types
            if isinstance(exc, ModelError):
                raise
            file = _weights_file(name) if local else where
            raise ModelError(f"could not load the weights {file}: {first_line(exc)}; the file is corrupt or "
                             f"incomplete, download it again") from None
        missing = sorted(info.get("missing_keys", ()))
        if missing:
            in_head = head_weights(head, missing)
            if in_head:
                raise missing_head(head, f"model {name!r}", in_head)
            raise ModelError(f"model {name!r} has no trained weights for {', '.join(missing[:4])}; transformers would "
                             f"initialise them randomly and the scores would be noise. Use a checkpoint pre-trained "
                             f"with {head.kind}, e.g. {KNOWN_CHECKPOINTS}")
        if local and not any(os.path.isfile(os.path.join(name, f)) for f in ("vocab.txt", "tokenizer.json")):
            raise ModelError(f"{name!r} has no vocab.txt or tokenizer.json; copy the checkpoint's vocab.txt into it "
                             f"(without it every text would become [UNK])")
        if local:
            _check_folder_vocab(name)
        try:
            tokenizer = _folder_tokenizer(name, kwargs) if local else AutoTokenizer.from_pretrained(name, **kwargs)
        except Exception as exc:  # noqa: BLE001 - the tokenizers library raises bare Exception on bad JSON
            if isinstance(exc, ModelError):
                raise
            files = "/".join(f for f in ("tokenizer.json", "tokenizer_config.json", "vocab.txt")
                             if local and os.path.isfile(os.path.join(name, f))) or "vocab.txt"
            raise ModelError(f"could not load the tokenizer of {name!r} ({files}): {first_line(exc)}; restore the "
                             f"checkpoint's tokenizer files (vocab.txt alone is enough)") from None
    model.eval()
    return tokenizer, model
