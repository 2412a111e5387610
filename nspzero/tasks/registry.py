"""The task registry: eval/tasks/*.yaml (shipped as nspzero.eval) → task objects.

A task is data: a dozen lines of YAML naming its type, fields, prompt set and mapping. Unknown
names get a nearest-name suggestion; a path to a .yaml file loads a user's own task.
"""
from __future__ import annotations

import dataclasses
import difflib
import os
from importlib import resources
from typing import Optional, Sequence, Union

from ..errors import UsageError
from ..prompt_sets import PromptVariant, load_prompt
from pydantic import ValidationError

from .base import TASK_TYPES, FewShotRecipe, Task, TaskConfig
from .choice import ClassificationTask, ClozeTask
from .pair import PairTask
from ..yamlcheck import (IDENTIFIER, at, expect_bool, expect_choice, expect_identifier, expect_label, expect_list,
                         expect_mapping, expect_number, expect_str, read_yaml, read_yaml_file, type_name)

TYPES = {"classification": ClassificationTask, "cloze": ClozeTask, "pair": PairTask, "coref": PairTask}
FEWCLUE = ("eprstmt", "csldcp", "tnews", "iflytek", "ocnli", "bustm", "csl", "chid", "cluewsc")  # the paper's order


def task_names() -> list[str]:
    folder = resources.files("nspzero.eval").joinpath("tasks")
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


METRICS = ("accuracy", "macro_f1")
# YAML key → (TaskConfig attribute, checker(value, place) → value)
_SCALARS = {
    "description": lambda v, at: expect_str(v, at, empty=True),
    "join": lambda v, at: expect_str(v, at, empty=True),
    "blank": expect_str,
    "soft_positions": expect_bool,
    "test_split": expect_identifier,
    "dev_split": expect_identifier,
}


def _data_folder(value: object, place: str) -> str:
    """A folder under --data-dir: names joined by '/', never absolute or '..'."""
    expect_str(value, place)
    parts = str(value).split("/")
    if not all(IDENTIFIER.match(part) for part in parts):
        raise UsageError(f"{place} must be a folder under the data dir (names of letters, digits, '_' or '-', "
                         f"joined by '/'; no '..' or absolute path), got {value!r}"[:300])
    return str(value)


def _metrics(value: object, place: str) -> tuple[str, ...]:
    names = [value] if isinstance(value, str) else expect_list(value, place)
    if not names:
        raise UsageError(f"{place} must name at least one metric ({', '.join(METRICS)})")
    out = tuple(expect_choice(n, place, METRICS) for n in names)
    if len(set(out)) != len(out):
        raise UsageError(f"{place} lists a metric twice: {', '.join(out)}")
    return out


def _reference(value: object, place: str) -> Optional[float]:
    if value is None:
        return None
    number = expect_number(value, place)
    if not 0 <= number <= 100:
        raise UsageError(f"{place} is an accuracy in percent (0-100), got {value!r}")
    return number


def _few_shot(value: object, place: str) -> FewShotRecipe:
    """The task's NSP-tuning recipe; one line naming the field on a bad value."""
    try:
        return FewShotRecipe.model_validate(expect_mapping(value, place))
    except ValidationError as exc:
        first = exc.errors(include_input=False, include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"])
        raise UsageError(f"{place}: few_shot.{where}: {first['msg'].lower()} "
                         f"(fields: {', '.join(FewShotRecipe.model_fields)})"[:300]) from None


def parse_config(data: object, where: str) -> TaskConfig:
    """Validate a task mapping strictly; every error names the file, the line and the field."""
    if not isinstance(data, dict):
        raise UsageError(f"{where}: expected a mapping at the top level (name: ..., type: ..., ...), "
                         f"got {type_name(data)}")
    known = ("name", "type", "prompt", "fields", "data", "description", "test_split", "dev_split", "label_order",
             "join", "blank", "soft_positions", "metric", "reference", "few_shot")
    for key in data:
        if key not in known:
            raise UsageError(f"{at(where, data, key)} is not a task field (known: {', '.join(sorted(known))})")
    for required in ("name", "type", "prompt", "fields"):
        if required not in data:
            raise UsageError(f"{where}: field {required!r} is missing")
    values: dict = {"source": where}
    values["name"] = expect_identifier(data["name"], at(where, data, "name"))
    values["type"] = expect_choice(data["type"], at(where, data, "type"), TASK_TYPES)
    values["prompt"] = expect_str(data["prompt"], at(where, data, "prompt"))
    fields = expect_mapping(data["fields"], at(where, data, "fields"))
    if not fields:
        raise UsageError(f"{at(where, data, 'fields')} must map roles to field names in the data")
    values["fields"] = {expect_identifier(role, at(where, fields, role, f"fields.{role}")):
                        expect_str(path, at(where, fields, role, f"fields.{role}")) for role, path in fields.items()}
    if "data" in data:
        values["data"] = _data_folder(data["data"], at(where, data, "data"))
    for key, check in _SCALARS.items():
        if key in data:
            values[key] = check(data[key], at(where, data, key))
    if "label_order" in data:
        place = at(where, data, "label_order")
        labels = tuple(expect_label(x, place) for x in expect_list(data["label_order"], place))
        if len(set(labels)) != len(labels):
            raise UsageError(f"{place} lists a label twice: {', '.join(labels)}")
        values["label_order"] = labels
    if "metric" in data:
        values["metrics"] = _metrics(data["metric"], at(where, data, "metric"))
    if "reference" in data:
        values["reference"] = _reference(data["reference"], at(where, data, "reference"))
    if "few_shot" in data:
        if values["type"] != "classification":  # NSP-tuning trains a label set's pairs (method.md §13)
            raise UsageError(f"{at(where, data, 'few_shot')}: few_shot (NSP-tuning) applies to classification tasks, "
                             f"not {values['type']}; remove it")
        values["few_shot"] = _few_shot(data["few_shot"], at(where, data, "few_shot"))
    return TaskConfig(**values)


def load_config(name: str) -> TaskConfig:
    if name.endswith((".yaml", ".yml")):
        if not os.path.isfile(name):
            raise UsageError(f"task file {name!r} does not exist")
        return parse_config(read_yaml_file(name), name)
    known = task_names()
    if name not in known:
        close = difflib.get_close_matches(name.lower(), known, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise UsageError(f"unknown task {name!r}; {hint}known tasks: {', '.join(known)}")
    where = f"eval/tasks/{name}.yaml"
    raw = resources.files("nspzero.eval").joinpath("tasks", f"{name}.yaml").read_bytes()
    config = parse_config(read_yaml(raw, where), where)
    if config.name != name:
        raise UsageError(f"{where}: field 'name' is {config.name!r} but the file is {name}.yaml; they must agree")
    return config


def check_distinct_names(configs: Sequence[TaskConfig]) -> None:
    """Task names name the output files and results.json entries: two tasks with one name would
    overwrite each other, so they are a UsageError."""
    seen: dict[str, TaskConfig] = {}
    for config in configs:
        if config.name in seen:
            raise UsageError(f"two tasks are named {config.name!r} ({seen[config.name].source} and {config.source}); "
                             f"give each task its own name")
        seen[config.name] = config


def load_task(name: str, prompt: Union[str, PromptVariant, None] = None, soft_positions: Optional[bool] = None,
              fields: Optional[dict[str, str]] = None) -> Task:
    """Build a task by name (or YAML path). `prompt` overrides its prompt set or variant
    (":variant" keeps the set); `fields` overrides roles → data field names (e.g. text, label)."""
    config = load_config(name)
    if soft_positions is not None:
        config = dataclasses.replace(config, soft_positions=expect_bool(soft_positions, "soft_positions"))
    if fields:
        unknown = set(fields) - set(config.fields)
        if unknown:
            raise UsageError(f"task {config.name} has no field role(s) {', '.join(sorted(unknown))} "
                             f"(its roles: {', '.join(config.fields)})")
        config = dataclasses.replace(config, fields={**config.fields, **fields})
    if isinstance(prompt, PromptVariant):
        return TYPES[config.type](config, prompt)
    if not isinstance(prompt, (str, type(None))):
        raise UsageError(f"prompt must be a prompt-set name ('set' or 'set:variant'), got {type_name(prompt)}")
    spec = prompt or config.prompt
    if prompt and prompt.startswith(":"):
        spec = config.prompt.split(":")[0] + prompt
    if not prompt:  # the task's own prompt: errors name the task file
        try:
            variant = load_prompt(spec)
        except UsageError as exc:
            raise UsageError(f"{config.source}: field 'prompt': {exc}") from None
        return TYPES[config.type](config, variant)
    return TYPES[config.type](config, load_prompt(spec))


def resolve_task_list(spec: str) -> list[str]:
    """'all' → the nine FewCLUE tasks in the paper's order; 'a,b' → those (validated)."""
    if spec.strip() == "all":
        return list(FEWCLUE)
    names = [s.strip() for s in spec.split(",") if s.strip()]
    if not names:
        raise UsageError("--tasks is empty; use 'all' or a comma-separated list such as eprstmt,tnews")
    if len(set(names)) != len(names):
        raise UsageError(f"--tasks lists a task twice: {spec}")
    check_distinct_names([load_config(n) for n in names])
    return names
