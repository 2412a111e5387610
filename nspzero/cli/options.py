"""Options several commands share, declared once: the model options (a decorator that adds them
to a command and hands them over as one `ModelOptions`), the Ray engine options, and helpers."""
import functools
import inspect
import typing
from dataclasses import dataclass
from typing import Callable, Optional, Union

import typer

from ..errors import UsageError

COMPILE_CHOICES = {"auto": "auto", "on": True, "off": False}
ENGINES = ("local", "ray")

RAY_ADDRESS_OPTION = typer.Option(None, "--ray-address", help="--engine ray: a cluster (auto, ray://HEAD:10001); "
                                                              "default: start Ray on this machine.")
NUM_ACTORS_OPTION = typer.Option(1, "--num-actors", help="--engine ray: actors, each loading the model once.")


@dataclass(frozen=True)
class ModelOptions:
    """--model --device --dtype --max-length --batch-size --compile, as one value."""

    model: str
    device: Optional[str]
    dtype: str
    max_length: Optional[int]   # None: 256, or the model's position limit if smaller
    batch_size: int
    compile: Union[bool, str]

    @property
    def load_args(self) -> dict:
        """Keyword arguments of `NSPScorer.from_pretrained` / `NSPClassifier.from_pretrained`."""
        return dict(device=self.device, dtype=self.dtype, max_length=self.max_length, batch_size=self.batch_size,
                    compile=self.compile)

    def classifier(self):
        from ..classifier import NSPClassifier

        return NSPClassifier.from_pretrained(self.model, **self.load_args)

    def scorer(self, **overrides):
        from ..scorer import NSPScorer

        return NSPScorer.from_pretrained(self.model, **{**self.load_args, **overrides})


def compile_choice(value: str) -> Union[bool, str]:
    """--compile on|off|auto → the `compile=` argument of from_pretrained."""
    if value not in COMPILE_CHOICES:
        raise UsageError(f"--compile must be one of {', '.join(COMPILE_CHOICES)}, got {value!r}")
    return COMPILE_CHOICES[value]


def _model_parameters(max_length: Optional[int], compile_default: str, long_text: bool) -> list[inspect.Parameter]:
    options = {
        "model": (Optional[str], typer.Option(None, "--model", "-m",
                                              help="Hub name, local folder (transformers, Google TF1 bert_model.ckpt, "
                                                   "UER-py .bin, or an export-onnx folder) of a BERT with an NSP "
                                                   "head. Default: $NSP_MODEL, "
                                                   "~/.config/nspzero/config.yaml 'model:', else bert-base-chinese.")),
        "device": (Optional[str], typer.Option(None, help="cpu, cuda, cuda:N or auto (default).")),
        "dtype": (str, typer.Option("float32", help="float32 (exact, default) | bfloat16 | float16 (GPU) | "
                                                    "int8 (CPU) | int8-dynamic (CPU, the previous int8).")),
        "max_length": (Optional[int], typer.Option(max_length, help=_max_length_help(max_length, long_text))),
        "batch_size": (int, typer.Option(32, help="Pairs per forward pass.")),
        "compile_model": (str, typer.Option(compile_default, "--compile",
                                            help="torch.compile the model (~1.15x faster on CPU after ~30-60 s of "
                                                 "compiling): on | off | auto (once scoring has taken 5 minutes).")),
    }
    return [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=annotation)
            for name, (annotation, option) in options.items()]


def _max_length_help(default: Optional[int], long_text: bool) -> str:
    """--max-length's help, naming the default and only the options the command has."""
    where = "read in windows with --long-text chunk" if long_text else "cut from their end"
    given = (f"Default {default}." if default is not None else
             "Default 256, or the model's position limit if that is smaller.")
    return f"Max tokens per pair; longer texts are {where} (the prompt is never cut). {given}"


OMITTED_DEFAULTS = {"batch_size": 32, "compile_model": "off"}  # what an omitted model option is


def with_model_options(max_length: Optional[int] = None, compile_default: str = "auto",
                       long_text: bool = False, omit: tuple[str, ...] = ()) -> Callable[[Callable], Callable]:
    """Decorator: the command gets the shared model options and receives them as `models: ModelOptions`.
    `long_text`: the command has --long-text (its --max-length help then mentions it). `omit`: options
    the command does not have (`OMITTED_DEFAULTS` then stand; `nspzero tune`'s --batch-size counts texts)."""
    def decorate(fn: Callable) -> Callable:
        signature = inspect.signature(fn)
        hints = typing.get_type_hints(fn)
        own = [p.replace(annotation=hints.get(p.name, p.annotation)) for p in signature.parameters.values()
               if p.name != "models"]
        added = [p for p in _model_parameters(max_length, compile_default, long_text) if p.name not in omit]
        names = [p.name for p in added]

        @functools.wraps(fn)
        def command(**kwargs):
            values = {name: kwargs.pop(name) for name in names}
            values.update({name: OMITTED_DEFAULTS[name] for name in omit})
            values["compile"] = compile_choice(values.pop("compile_model"))
            if values["model"] is None:
                values["model"] = _default_model()
            return fn(models=ModelOptions(**values), **kwargs)

        command.__signature__ = signature.replace(parameters=own + added)
        command.__annotations__ = {p.name: p.annotation for p in own + added}
        return command
    return decorate


def _default_model() -> str:
    """The default model (as transformers' pipelines pick one), with a one-line notice naming it."""
    import logging

    from ..loading import default_model_name

    name, origin = default_model_name()
    logging.getLogger("nspzero").info("using model %s (%s); pass --model to choose another", name, origin)
    return name


def check_engine(engine: str, ray_address: Optional[str], num_actors: int) -> None:
    if engine not in ENGINES:
        raise UsageError(f"--engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if num_actors < 1:
        raise UsageError(f"--num-actors must be a positive number, got {num_actors}")
    if engine == "local" and (ray_address is not None or num_actors != 1):
        raise UsageError("--ray-address and --num-actors apply to --engine ray; add --engine ray")


def label_option(labels: Optional[list[str]], labels_file: Optional[str]):
    """--labels (comma-separated or repeated) or --labels-file, as the `labels` of a request (or None)."""
    from ..request import split_labels

    if labels and labels_file is not None:
        raise UsageError("give --labels or --labels-file, not both")
    if labels_file is not None:
        from ..label_files import read_labels_file

        return read_labels_file(labels_file)
    return [label for value in labels for label in split_labels(value)] if labels else None
