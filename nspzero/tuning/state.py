"""What `tune` keeps between epochs so a killed run can go on (`state_dir`): one file, replaced
atomically after each finished epoch, holding the model, the optimizer, both RNGs, the epoch log,
the best epoch's weights and a fingerprint of the inputs and settings (a changed run is refused)."""
from __future__ import annotations

import hashlib
import json
import os
from typing import Any, Optional, Sequence

import torch

from ..errors import UsageError
from ..io import atomic_file

STATE_FILE = "state.pt"


def fingerprint(texts: Sequence[str], targets: Sequence[str], request_dict: dict, settings: dict,
                dev: Optional[tuple[Sequence[str], Sequence[str]]], model: Optional[str] = None) -> str:
    """What a resumed run must share with the one it continues: the data, the labels and prompts, the
    settings and the model it started from (its digest)."""
    digest = hashlib.sha256()
    for part in (list(texts), list(targets), request_dict, settings,
                 None if dev is None else [list(dev[0]), list(dev[1])], model):
        digest.update(json.dumps(part, ensure_ascii=False, sort_keys=True, default=str).encode("utf-8"))
        digest.update(b"\x00")
    return digest.hexdigest()


def load_state(state_dir: Optional[str], expected: str, restart_other: bool = False) -> Optional[dict[str, Any]]:
    """The last finished epoch's state in `state_dir`, or None when there is none; a state of another
    run (other model, data, labels or settings) is refused in one line, or with `restart_other`
    (eval's own state folder, which no user asked to resume) removed so that the run starts afresh."""
    if state_dir is None:
        return None
    path = os.path.join(state_dir, STATE_FILE)
    if not os.path.isfile(path):
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - a damaged file of any kind
        raise UsageError(f"the saved tuning state {path} cannot be read ({type(exc).__name__}); remove {state_dir} "
                         f"and start again") from None
    if state.get("fingerprint") != expected:
        if restart_other:
            os.remove(path)
            return None
        raise UsageError(f"the saved tuning state in {state_dir} is of another run (the model, input, labels, template "
                         f"or settings changed); run with the same ones, or remove {state_dir} to start again")
    return state


def save_state(state_dir: str, state: dict[str, Any]) -> None:
    """Replace the state file as a whole (a kill while writing leaves the previous epoch's)."""
    os.makedirs(state_dir, exist_ok=True)
    with atomic_file(os.path.join(state_dir, STATE_FILE)) as handle:
        torch.save(state, handle)
