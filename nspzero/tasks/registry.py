"""The task registry: eval/tasks/*.yaml (shipped as nspzero.eval) → task objects.

A task is data: a dozen lines of YAML naming its type, fields, prompt set and mapping. Unknown
names get a nearest-name suggestion; a path to a .yaml file loads a user's own task.
"""
from __future__ import annotations

import dataclasses
import difflib
import os
from importlib import resources
from typing import Optional, Union

import yaml

from ..errors import UsageError
from ..prompt_sets import PromptVariant, load_prompt
from .base import TASK_TYPES, Task, TaskConfig
from .candidates import ClassificationTask, ClozeTask
from .pair import PairTask

TYPES = {"classification": ClassificationTask, "cloze": ClozeTask, "pair": PairTask, "coref": PairTask}
FEWCLUE = ("eprstmt", "csldcp", "tnews", "iflytek", "ocnli", "bustm", "csl", "chid", "cluewsc")  # the paper's order


def task_names() -> list[str]:
    folder = resources.files("nspzero.eval").joinpath("tasks")
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def parse_config(data: object, where: str) -> TaskConfig:
    """Validate a task mapping; every error names the file and the field."""
    if not isinstance(data, dict):
        raise UsageError(f"{where}: expected a mapping at the top level")
    known = {f.name for f in dataclasses.fields(TaskConfig)} - {"source"}
    unknown = set(data) - known
    if unknown:
        raise UsageError(f"{where}: unknown field(s) {', '.join(sorted(unknown))} (known: {', '.join(sorted(known))})")
    for required in ("name", "type", "prompt", "fields"):
        if required not in data:
            raise UsageError(f"{where}: field {required!r} is missing")
    if data["type"] not in TASK_TYPES:
        raise UsageError(f"{where}: type {data['type']!r} is not one of {', '.join(TASK_TYPES)}")
    if not isinstance(data["fields"], dict):
        raise UsageError(f"{where}: 'fields' must map roles to field names in the data")
    values = dict(data)
    values["fields"] = {str(k): str(v) for k, v in data["fields"].items()}
    values["label_order"] = tuple(str(x) for x in data.get("label_order", ()))
    return TaskConfig(**values, source=where)


def load_config(name: str) -> TaskConfig:
    if name.endswith((".yaml", ".yml")):
        if not os.path.isfile(name):
            raise UsageError(f"task file {name!r} does not exist")
        with open(name, encoding="utf-8") as handle:
            return parse_config(yaml.safe_load(handle), name)
    known = task_names()
    if name not in known:
        close = difflib.get_close_matches(name.lower(), known, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise UsageError(f"unknown task {name!r}; {hint}known tasks: {', '.join(known)}")
    text = resources.files("nspzero.eval").joinpath("tasks", f"{name}.yaml").read_text(encoding="utf-8")
    return parse_config(yaml.safe_load(text), f"eval/tasks/{name}.yaml")


def load_task(name: str, prompt: Union[str, PromptVariant, None] = None, soft_positions: Optional[bool] = None,
              fields: Optional[dict[str, str]] = None) -> Task:
    """Build a task by name (or YAML path). `prompt` overrides its prompt set or variant
    (":variant" keeps the set); `fields` overrides roles → data field names (e.g. text, label)."""
    config = load_config(name)
    if soft_positions is not None:
        config = dataclasses.replace(config, soft_positions=soft_positions)
    if fields:
        unknown = set(fields) - set(config.fields)
        if unknown:
            raise UsageError(f"task {config.name} has no field role(s) {', '.join(sorted(unknown))} "
                             f"(its roles: {', '.join(config.fields)})")
        config = dataclasses.replace(config, fields={**config.fields, **fields})
    if isinstance(prompt, PromptVariant):
        return TYPES[config.type](config, prompt)
    spec = prompt or config.prompt
    if prompt and prompt.startswith(":"):
        spec = config.prompt.split(":")[0] + prompt
    return TYPES[config.type](config, load_prompt(spec))


def resolve_task_list(spec: str) -> list[str]:
    """'all' → the nine FewCLUE tasks in the paper's order; 'a,b' → those (validated)."""
    if spec.strip() == "all":
        return list(FEWCLUE)
    names = [s.strip() for s in spec.split(",") if s.strip()]
    if not names:
        raise UsageError("--tasks is empty; use 'all' or a comma-separated list such as eprstmt,tnews")
    for n in names:
        load_config(n)
    if len(set(names)) != len(names):
        raise UsageError(f"--tasks lists a task twice: {spec}")
    return names
