"""A tuned folder: an ordinary transformers folder (config, safetensors weights, tokenizer files)
plus `nspzero_tuning.json` (the labels with their words, templates, placement, combine rule, the
training settings, the epoch log, the nspzero version), written as one unit (`folders.atomic_folder`).
Reading the json back (`tuned_defaults`) needs no torch: the CLI reads it before loading a model."""
from __future__ import annotations

import json
import os
from typing import Any, Optional

from ..errors import DataError, UsageError
from ..folders import atomic_folder, current_umask, new_folder
from ..quiet import quiet_transformers

TUNING_FILE = "nspzero_tuning.json"
FORMAT = 1
DEFAULT_FIELDS = ("labels", "template", "placement", "combine")


def check_output(folder: str, model: Optional[str]) -> None:
    """Refuse, before any training, an output that is the model's folder or inside it, or not new."""
    if model and os.path.isdir(os.path.expanduser(model)):
        out = os.path.realpath(os.path.expanduser(folder))
        source = os.path.realpath(os.path.expanduser(model))
        if out == source or out.startswith(source + os.sep):
            raise UsageError(f"--output {folder!r} is the model folder {model!r} or inside it; write the tuned model "
                             f"to a new folder (the original is never changed)")
    new_folder(folder, "--output")


def save_tuned(scorer, request, settings, report, folder: str) -> None:
    """Write `scorer`'s (tuned) model, its tokenizer and the request it was tuned with to a new
    `folder`, whole or not at all (an existing folder is refused: nothing is overwritten)."""
    from .. import __version__

    out = new_folder(folder, "folder")
    model = scorer.model
    if getattr(model, "is_onnx", False):
        raise UsageError("an ONNX model cannot be saved as a tuned folder; tune the transformers folder")
    meta = {"format": FORMAT, "nspzero_version": __version__,
            "labels": request.label_set.to_dict() if request.label_set is not None else None,
            "template": list(request.templates), "placement": request.placement, "combine": request.combine,
            "prompt": request.prompt, "settings": settings.to_dict(), "epochs": report.to_dict()["epochs"],
            "best_epoch": report.best_epoch}
    with atomic_folder(out, "tuning") as tmp, quiet_transformers():
        model.save_pretrained(str(tmp), safe_serialization=True)
        scorer.tokenizer.save_pretrained(str(tmp))
        if not (tmp / "vocab.txt").exists():  # the plain vocab.txt other BERT tools (and digests) read
            vocab = sorted(scorer.tokenizer.get_vocab().items(), key=lambda item: item[1])
            (tmp / "vocab.txt").write_text("".join(token + "\n" for token, _ in vocab), encoding="utf-8")
        with open(tmp / TUNING_FILE, "w", encoding="utf-8") as handle:
            json.dump(meta, handle, ensure_ascii=False, indent=2)
        for entry in tmp.iterdir():  # the usual permissions (some writers make 0600 temp files)
            os.chmod(entry, 0o666 & ~current_umask())


def read_tuning(folder: str) -> Optional[dict[str, Any]]:
    """The folder's `nspzero_tuning.json`, or None when it has none (an ordinary checkpoint, a hub name)."""
    path = os.path.join(os.path.expanduser(str(folder)), TUNING_FILE)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot be read as JSON ({exc}); restore it, or remove it to use the folder as an "
                        f"ordinary checkpoint") from None
    if not isinstance(data, dict) or not isinstance(data.get("labels"), dict) or len(data["labels"]) < 2:
        raise DataError(f"{path}: not an nspzero tuning file (no 'labels' with at least 2 labels); restore it, or "
                        f"remove it to use the folder as an ordinary checkpoint")
    return data


def tuned_defaults(folder: str) -> Optional[dict]:
    """The request fields a tuned folder was trained with (labels, template, placement, combine),
    for a call that gives none: None for a folder that is not a tuned one."""
    data = read_tuning(folder)
    if data is None:
        return None
    return {k: data[k] for k in DEFAULT_FIELDS if data.get(k) is not None}


def with_defaults(defaults: Optional[dict], labels: Any, template: Any, placement: Optional[str],
                  combine: Optional[str], prompt: Optional[str] = None, own_labels: bool = False) -> dict:
    """A call's request fields, a tuned model's `defaults` filling those left out — the one rule of every
    door: explicit arguments win; a prompt set brings its own, and per-text labels their own labels."""
    given = {"labels": labels, "template": template, "placement": placement, "combine": combine}
    if defaults is None or prompt is not None:
        return given
    return {k: (None if own_labels and k == "labels" else defaults.get(k)) if v is None else v for k, v in given.items()}
