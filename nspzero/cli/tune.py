"""`nspzero tune`: NSP-tuning (the paper's few-shot learner) from a file of labelled texts to a new
tuned folder, written whole or not at all; `--resume` goes on from a killed run's last finished epoch."""
import os
import shutil
import sys
from pathlib import Path
from typing import List, Optional

import typer

from ..errors import DataError, UsageError
from .app import app
from .options import ModelOptions, label_option, with_model_options

STATE_SUFFIX = ".tune-state"  # `.OUT.tune-state` beside OUT: the resume state, removed on success


def state_dir(output: str) -> Path:
    out = Path(os.path.expanduser(output)).absolute()
    return out.parent / f".{out.name}{STATE_SUFFIX}"


def read_examples(path: str, fmt: Optional[str], text_field: str, label_field: str):
    """(texts, targets, where) of a file of labelled records, through the one reader (file:line errors)."""
    from ..io import field_text, read_records

    texts, targets, where = [], [], []
    for record in read_records(path, fmt):
        texts.append(field_text(record, text_field))
        if label_field not in record.fields:
            raise DataError(f"{record.where}: no field {label_field!r} (fields: {', '.join(map(str, record.fields))}); "
                            f"choose the label field with --label-field")
        target = record.fields[label_field]
        targets.append(str(target) if isinstance(target, int) and not isinstance(target, bool) else target)
        where.append(record.where)
    if not texts:
        raise DataError(f"{path}: no records; tuning needs at least 2 labelled texts")
    return texts, targets, where


@app.command()
@with_model_options(max_length=128, omit=("batch_size", "compile_model"))
def tune(
    input_path: str = typer.Option(..., "--input", "-i", help="Labelled texts: .jsonl/.csv/.tsv/.parquet records "
                                                              "with a text and its label."),
    output: str = typer.Option(..., "--output", "-o", help="The tuned folder to write (new; written whole or not "
                                                           "at all): transformers files + nspzero_tuning.json."),
    labels: Optional[List[str]] = typer.Option(None, "--labels", "-l", help="The task's labels, comma-separated or "
                                                                           "repeated; every label is a negative for "
                                                                           "the texts of the others."),
    labels_file: Optional[str] = typer.Option(None, "--labels-file", help="Labels (and words) from a file: .txt, "
                                                                          ".json or .yaml."),
    prompt: Optional[str] = typer.Option(None, "--prompt", "-p", help="A named prompt set (e.g. eprstmt) giving "
                                                                     "labels, words, templates and placement."),
    template: Optional[List[str]] = typer.Option(None, "--template", "-t", help="Prompt with {label}; repeat for "
                                                                               "several. Default '{label}'."),
    placement: Optional[str] = typer.Option(None, help="prefix: prompt first (the paper's) | suffix."),
    combine: Optional[str] = typer.Option(None, help="How a label's several prompts combine: mean | logmean."),
    dev: Optional[str] = typer.Option(None, "--dev", help="Labelled dev file: each epoch is scored on it and the "
                                                          "best epoch's weights are kept (ties: the earlier)."),
    input_format: Optional[str] = typer.Option(None, help="jsonl|csv|tsv|parquet; default from the suffix."),
    text_field: str = typer.Option("text", help="Field holding the text."),
    label_field: str = typer.Option("label", help="Field holding the gold label (one of the labels)."),
    epochs: int = typer.Option(10, help="Passes over the data (the paper's: 10)."),
    lr: float = typer.Option(1e-5, "--lr", help="Adam's learning rate (the paper's: 1e-5 for base models, 2e-5 "
                                                "for large)."),
    batch_size: int = typer.Option(8, "--batch-size", help="Texts per step, each with all its label pairs (the "
                                                           "paper's: 8; 1 for tasks with very many labels)."),
    seed: int = typer.Option(0, help="Seeds the shuffling and dropout: the same seed gives the same weights."),
    loss: str = typer.Option("bce", help="bce: binary cross-entropy on P(IsNext), mean over pairs (the paper's) | "
                                         "softmax: cross-entropy over each text's labels."),
    chunk_pairs: int = typer.Option(256, "--chunk-pairs", help="Pairs per forward pass; a step's gradients are "
                                                               "accumulated over them (memory bound)."),
    resume: bool = typer.Option(False, "--resume", help="Go on from the last finished epoch of a killed run with "
                                                        "the same input and settings."),
    models: ModelOptions = None,
) -> None:
    """Tune a model on labelled texts (NSP-tuning, the paper's few-shot learner) and save it as a new folder.

    Each text is paired with every label's prompt (target 1 for its own label, 0 for the others); the
    whole model is trained with Adam. --max-length is the training length (the paper's 128); --dtype
    bfloat16 trains under bfloat16 autocast (float32 weights). Then: nspzero classify --model OUT "text"."""
    from ..folders import check_folder_output
    from ..request import build_request
    from ..tuning.saved import check_output
    from ..tuning.settings import TuneSettings

    if models.dtype not in ("float32", "bfloat16"):
        raise UsageError(f"--dtype {models.dtype}: tuning trains float32 weights (--dtype bfloat16: under bf16 "
                         f"autocast); use --dtype {models.dtype} on the tuned folder afterwards")
    settings = TuneSettings(epochs=epochs, learning_rate=lr, batch_size=batch_size, seed=seed,
                            max_length=models.max_length, loss=loss, chunk_pairs=chunk_pairs,
                            bf16=models.dtype == "bfloat16")
    label_arg = label_option(labels, labels_file)
    if label_arg is None and prompt is None:
        raise UsageError("--labels is required (or --labels-file FILE, or --prompt NAME), e.g. --labels 好评,差评")
    request = build_request(label_arg, prompt=prompt, template=template or None, placement=placement,
                            combine=combine)
    check_output(output, models.model)
    check_folder_output(output, [input_path, dev, labels_file], "--output")
    state = state_dir(output)
    if resume and not (state / "state.pt").is_file():
        raise UsageError(f"nothing to resume: no saved state at {state}; run without --resume")
    if not resume and state.exists():
        raise UsageError(f"a killed run's state is at {state}: add --resume to go on from it, or remove it to start "
                         f"again")
    texts, targets, where = read_examples(input_path, input_format, text_field, label_field)
    dev_data = read_examples(dev, input_format, text_field, label_field) if dev else None
    from ..scorer import NSPScorer
    from ..tuning import save_tuned
    from ..tuning.trainer import Diverged, tune as run_tuning

    scorer = NSPScorer.from_pretrained(models.model, device=models.device, max_length=models.max_length)

    def report_epoch(record) -> None:
        from tqdm import tqdm

        dev_text = "" if record.dev_accuracy is None else f", dev accuracy {record.dev_accuracy:.4f}"
        tqdm.write(f"epoch {record.epoch}/{epochs}: loss {record.loss:.4f}{dev_text} ({record.seconds:.1f} s)",
                   file=sys.stderr)

    try:
        report = run_tuning(scorer, request, texts, targets, settings,
                            dev=dev_data[:2] if dev_data else None, on_epoch_end=report_epoch, state_dir=str(state),
                            where=lambda i: where[i], dev_where=(lambda i: dev_data[2][i]) if dev_data else None)
    except Diverged:  # resuming would diverge again: the state goes, so that a run at a lower --lr may start
        shutil.rmtree(state, ignore_errors=True)
        raise
    save_tuned(scorer, request, settings, report, output)
    shutil.rmtree(state, ignore_errors=True)
    typer.echo(f"tuned model → {output} (epoch {report.best_epoch} of {epochs} kept)", err=True)
