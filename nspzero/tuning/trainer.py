"""NSP-tuning (the paper's few-shot learner): the scorer's own model trained in place on each
labelled text's K label pairs, with Adam (torch's defaults; no decay, schedule or clipping), the
whole model trainable, dropout as configured while training and off when scoring. A step's
gradients are accumulated over chunks of `chunk_pairs` pairs, each chunk's loss divided by the
whole batch's count, so the step equals the unchunked one and memory is bounded whatever K is."""
from __future__ import annotations

import contextlib
import time
from typing import Callable, Iterator, Optional, Sequence

import numpy as np
import torch

from ..candidates import best
from ..digests import model_digest
from ..errors import ModelError, UsageError
from ..pipeline import chunked, label_rows
from ..request import ClassifyRequest
from ..scorer import Encoded, NSPScorer, progress_bar
from .loss import bce_sum, softmax_sum
from .pairs import TextPairs, Where, check_examples, text_pairs
from .settings import EpochRecord, TuneReport, TuneSettings
from .state import fingerprint, load_state, save_state


def check_trainable(scorer: NSPScorer) -> None:
    """Only a float32 torch model can be trained: an ONNX export or int8/bf16 weights cannot."""
    if getattr(scorer.model, "is_onnx", False):
        raise UsageError(f"{scorer.name} runs on ONNX Runtime and cannot be tuned; tune the transformers folder it "
                         f"was exported from (then export the tuned folder)")
    if scorer.dtype != "float32":
        raise UsageError(f"tuning trains float32 weights, but the model was loaded with dtype {scorer.dtype}; load it "
                         f"with dtype float32 (settings.bf16 trains under bf16 autocast), and use {scorer.dtype} on "
                         f"the tuned folder")


@contextlib.contextmanager
def max_length(scorer: NSPScorer, length: int) -> Iterator[None]:
    """The scorer encodes and scores with `length` tokens a pair inside the block (the recipe's 128)."""
    limit = getattr(scorer.model.config, "max_position_embeddings", 512)
    saved, scorer.max_length = scorer.max_length, min(length, limit)
    try:
        yield
    finally:
        scorer.max_length = saved


def snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _chunks(examples: Sequence[TextPairs], batch: Sequence[int], encoded: Sequence[Sequence[Encoded]],
            settings: TuneSettings) -> Iterator[list[tuple[int, int]]]:
    """(text, pair) indexes of a step, chunk by chunk: for "bce" any pairs (sorted by length: less
    padding), for "softmax" whole texts (a text's labels compete within one forward)."""
    if settings.loss == "bce":
        flat = [(t, j) for t in batch for j in range(len(examples[t].pairs))]
        flat.sort(key=lambda tj: -len(encoded[tj[0]][tj[1]].input_ids))
        for start in range(0, len(flat), settings.chunk_pairs):
            yield flat[start:start + settings.chunk_pairs]
    else:
        for texts in chunked(batch, lambda t: len(examples[t].pairs), settings.chunk_pairs):
            yield [(t, j) for t in texts for j in range(len(examples[t].pairs))]


def step_loss(scorer: NSPScorer, examples: Sequence[TextPairs], encoded: Sequence[Sequence[Encoded]],
              batch: Sequence[int], settings: TuneSettings) -> float:
    """Backpropagate one step's loss (mean over its pairs, or over its texts for "softmax") chunk by
    chunk, gradients accumulating in the model; returns the loss's value."""
    model = scorer.model
    total = sum(len(examples[t].pairs) for t in batch) if settings.loss == "bce" else len(batch)
    autocast = torch.autocast(device_type=scorer.device.type, dtype=torch.bfloat16) if settings.bf16 \
        else contextlib.nullcontext()
    value = 0.0
    for chunk in _chunks(examples, batch, encoded, settings):
        inputs = scorer._collate([encoded[t][j] for t, j in chunk])
        with autocast:
            logits = model(**inputs).logits
        if settings.loss == "bce":
            targets = torch.tensor([examples[t].targets[j] for t, j in chunk], dtype=torch.float32,
                                   device=logits.device)
            loss = bce_sum(logits, targets) / total
        else:
            texts = list(dict.fromkeys(t for t, _ in chunk))
            loss = softmax_sum(logits, [torch.as_tensor(examples[t].label_of, device=logits.device) for t in texts],
                               [examples[t].gold for t in texts]) / total
        if not torch.isfinite(loss):
            raise Diverged(f"the tuning loss became {float(loss.detach())} (NaN/inf) at learning rate "
                             f"{settings.learning_rate:g}: {DIVERGED}, e.g. to {settings.learning_rate / 10:g}")
        loss.backward()
        value += float(loss.detach())
    return value


class Diverged(ModelError):
    """The loss or the weights became NaN/inf: a saved state leads to the same end, so it is of no use."""


DIVERGED = ("the weights diverged, and the model's weights were put back as they were; start again (without "
            "resuming) at a lower learning rate")


def check_finite(model: torch.nn.Module, settings: TuneSettings) -> None:
    """Refuse weights a step made NaN/inf even where no loss showed it (the last step of a run)."""
    for name, param in model.named_parameters():
        if not torch.isfinite(param.detach()).all():
            raise Diverged(f"tuning made the weight {name} NaN/inf at learning rate {settings.learning_rate:g}: "
                             f"{DIVERGED}, e.g. to {settings.learning_rate / 10:g}")


def accuracy(scorer: NSPScorer, request: ClassifyRequest, texts: Sequence[str], targets: Sequence[str]) -> float:
    """Share of `texts` whose best label (argmax P(IsNext), exactly as classifying) is the target."""
    names = request.labels
    rows = label_rows(scorer, request, texts, progress=False)
    return float(np.mean([best(names, row) == target for row, target in zip(rows, targets)]))


def tune(scorer: NSPScorer, request: ClassifyRequest, texts: Sequence[str], targets: Sequence[str],
         settings: TuneSettings = TuneSettings(), dev: Optional[tuple[Sequence[str], Sequence[str]]] = None,
         progress: Optional[bool] = None, on_epoch_end: Optional[Callable[[EpochRecord], None]] = None,
         state_dir: Optional[str] = None, where: Optional[Where] = None,
         dev_where: Optional[Where] = None, restart_other_state: bool = False) -> TuneReport:
    """Tune `scorer`'s model in place on `texts` labelled `targets` (names of `request`'s labels).

    With `dev` (texts, targets) each epoch is scored on it (at `settings.max_length`) and the best
    epoch's weights are kept (ties: the earlier); without, the last epoch's. `on_epoch_end` sees each
    epoch's record. `state_dir`: after each epoch the run's state is saved there, and a run finding a
    state of the same inputs and settings goes on from it (`state.py`; a state of another run is
    refused, or with `restart_other_state` dropped). A NaN/inf loss stops the run
    with an error and puts the original weights back; so does any other failure. `where(i)` names
    example i in errors (e.g. its file:line)."""
    check_trainable(scorer)
    texts = check_examples(request, texts, targets, where)
    targets = list(targets)
    if dev is not None:
        dev = (check_examples(request, dev[0], dev[1], dev_where or (lambda i: f"dev[{i}]"), what="dev"),
               list(dev[1]))
    model = scorer.model
    with max_length(scorer, settings.max_length):
        examples = text_pairs(scorer, request, texts, targets)
        encoded = [scorer.encode(e.pairs).items for e in examples]
    # chunk_pairs only bounds memory (the step is the same), so a resume may change it; the model's
    # weights as they stand before tuning say which checkpoint a saved state continues
    resumable = {k: v for k, v in settings.to_dict().items() if k != "chunk_pairs"}
    key = fingerprint(texts, targets, request.to_dict(), resumable, dev,
                      model_digest(model, files=scorer.weights_from_files) if state_dir is not None else None)
    saved = load_state(state_dir, key, restart_other_state)
    initial = snapshot(model)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=settings.learning_rate)
    order = np.random.default_rng(settings.seed)
    report, best_weights, best_accuracy, first = TuneReport(), None, -1.0, 1
    steps = -(-len(texts) // settings.batch_size)
    devices = [scorer.device.index or 0] if scorer.device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(settings.seed)
            if saved is not None:
                model.load_state_dict(saved["model"])
                optimizer.load_state_dict(saved["optimizer"])
                torch.set_rng_state(saved["torch_rng"])
                if devices and saved.get("cuda_rng") is not None:  # dropout on a GPU draws from its own generator
                    torch.cuda.set_rng_state(saved["cuda_rng"], devices[0])
                order.bit_generator.state = saved["order_rng"]
                report = TuneReport([EpochRecord(**e) for e in saved["report"]["epochs"]], saved["report"]["best_epoch"])
                best_weights, best_accuracy, first = saved["best"], saved["best_accuracy"], saved["epoch"] + 1
            pairs_total = sum(len(e.pairs) for e in examples) * (settings.epochs - first + 1)
            with progress_bar(progress, pairs_total, steps * (settings.epochs - first + 1), "tuning", "step") as bar:
                for epoch in range(first, settings.epochs + 1):
                    start = time.perf_counter()
                    model.train()
                    losses = []
                    shuffled = order.permutation(len(texts)).tolist()
                    for at in range(0, len(shuffled), settings.batch_size):
                        optimizer.zero_grad(set_to_none=True)
                        losses.append(step_loss(scorer, examples, encoded, shuffled[at:at + settings.batch_size],
                                                settings))
                        optimizer.step()
                        bar.set_postfix(epoch=f"{epoch}/{settings.epochs}", loss=f"{losses[-1]:.4f}", refresh=False)
                        bar.update(1)
                    model.eval()
                    scorer.weights_changed()
                    check_finite(model, settings)  # a last step can break the weights with a finite loss
                    score = None
                    if dev is not None:
                        with max_length(scorer, settings.max_length):
                            score = accuracy(scorer, request, *dev)
                    record = EpochRecord(epoch, float(np.mean(losses)), score, time.perf_counter() - start)
                    report.epochs.append(record)
                    if dev is None:
                        report.best_epoch = epoch
                    elif score > best_accuracy:
                        best_accuracy, best_weights, report.best_epoch = score, snapshot(model), epoch
                    if state_dir is not None:
                        save_state(state_dir, {"fingerprint": key, "epoch": epoch, "model": model.state_dict(),
                                               "optimizer": optimizer.state_dict(), "torch_rng": torch.get_rng_state(),
                                               "cuda_rng": torch.cuda.get_rng_state(devices[0]) if devices else None,
                                               "order_rng": order.bit_generator.state, "report": report.to_dict(),
                                               "best": best_weights, "best_accuracy": best_accuracy})
                    if on_epoch_end is not None:
                        on_epoch_end(record)
    except BaseException:
        model.load_state_dict(initial)
        model.eval()
        scorer.weights_changed()
        raise
    if best_weights is not None:
        model.load_state_dict(best_weights)
    model.eval()
    scorer.weights_changed()
    return report
