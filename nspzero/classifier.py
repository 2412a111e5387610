"""NSPClassifier: the public API — a request and texts → candidates → one scoring call → results.

Scoring rule for a label with several verbalizations and/or templates: its score is the mean
P(IsNext) over every (template, verbalization) pair of that label (or, with combine="logmean",
the geometric mean). The best label is the one with the highest score; ties go to the label
given first. Scores are P(IsNext) per label, not a distribution over the labels: they need not
add up to 1 (`normalize=True` divides them by their sum, for callers that want one).
"""
from __future__ import annotations

import os
from typing import Any, Optional, Sequence, Union

import numpy as np

from . import pipeline
from .errors import UsageError
from .linking import LinkResult, link
from .pipeline import ClassificationResult, make_result  # noqa: F401  (the public result type lives with the path)
from .request import DEFAULT_OVERLAP, ClassifyArgs, ClassifyRequest, LabelSet, build_request, check_texts
from .scorer import NSPScorer, Pair
from .templates import LabelsArg, check_unicode


class NSPClassifier:
    """Zero-shot classifier built on an NSPScorer (see `from_pretrained`)."""

    def __init__(self, scorer: NSPScorer, defaults: Optional[dict] = None) -> None:
        self.scorer = scorer
        # a tuned model's request fields (labels, template, placement, combine): what a call giving none uses
        self.defaults = defaults
        self.tuned: Optional[tuple[ClassifyRequest, Any, Any]] = None  # (request, settings, report) after `fit`

    @classmethod
    def from_pretrained(cls, name_or_path: str, device: Optional[str] = None, max_length: Optional[int] = None,
                        batch_size: int = 32, dtype: str = "float32",
                        compile: Union[bool, str] = False) -> "NSPClassifier":
        """Load a BERT checkpoint with a trained NSP head from a hub name or a local directory.
        `compile=True` runs the model through torch.compile (faster for long jobs; see NSPScorer);
        "auto" compiles once scoring has taken AUTO_COMPILE_AFTER_S seconds. `max_length` None: 256
        tokens per pair, or the model's position limit if that is smaller."""
        from .tuning import tuned_defaults

        defaults = tuned_defaults(name_or_path) if os.path.isdir(os.path.expanduser(str(name_or_path))) else None
        return cls(NSPScorer.from_pretrained(name_or_path, device=device, max_length=max_length,
                                             batch_size=batch_size, dtype=dtype, compile=compile), defaults)

    def _fill(self, labels: Any, template: Any, placement: Optional[str], combine: Optional[str],
              prompt: Optional[str], labels_per_text: Any = None) -> dict:
        """The call's request fields, a tuned model's own filling those left out (`tuning.saved.with_defaults`)."""
        from .tuning.saved import with_defaults

        return with_defaults(self.defaults, labels, template, placement, combine, prompt, labels_per_text is not None)

    def fill_args(self, args: ClassifyArgs) -> ClassifyArgs:
        """A call stated as data (the server's body), a tuned model's labels and templates filling what it leaves out."""
        fields = self._fill(args.labels, args.template, args.placement, args.combine, args.prompt,
                            args.labels_per_text)
        changed = {k: v for k, v in fields.items() if v is not getattr(args, k)}
        return args.model_copy(update=changed) if changed else args

    def fit(self, texts: Sequence[str], targets: Sequence[str], labels: Any = None,
            template: Union[str, Sequence[str], None] = None, placement: Optional[str] = None,
            prompt: Optional[str] = None, combine: Optional[str] = None, epochs: int = 10,
            learning_rate: float = 1e-5, batch_size: int = 8, seed: int = 0,
            dev: Optional[tuple[Sequence[str], Sequence[str]]] = None, progress: Optional[bool] = None,
            max_length: int = 128, loss: str = "bce", chunk_pairs: int = 256, bf16: bool = False,
            on_epoch_end=None) -> "NSPClassifier":
        """NSP-tuning (the paper's few-shot learner): tune the loaded model in place on `texts` labelled
        `targets` (label names), each text paired with every label's prompts (`labels`, `template`,
        `placement`, `prompt` as `classify` takes them); returns self. `batch_size` texts a step (all
        their label pairs), Adam at `learning_rate`, `epochs` passes, shuffled by `seed`; with `dev`
        (texts, targets) the best epoch's weights are kept. Afterwards `classify` with no labels uses
        these, and `save_pretrained` writes the tuned folder. The record is `self.tuned[2]` (a TuneReport)."""
        from .tuning import TuneSettings, tune

        fields = self._fill(labels, template, placement, combine, prompt)
        request = build_request(fields["labels"], prompt=prompt, template=fields["template"],
                                placement=fields["placement"], combine=fields["combine"])
        settings = TuneSettings(epochs=epochs, learning_rate=learning_rate, batch_size=batch_size, seed=seed,
                                max_length=max_length, loss=loss, chunk_pairs=chunk_pairs, bf16=bf16)
        report = tune(self.scorer, request, texts, targets, settings, dev=dev, progress=progress,
                      on_epoch_end=on_epoch_end)
        self.tuned = (request, settings, report)
        self.defaults = {"labels": request.label_set.to_dict(), "template": list(request.templates),
                         "placement": request.placement, "combine": request.combine}
        return self

    def save_pretrained(self, folder: str) -> None:
        """Write the tuned model as a new folder (transformers files + nspzero_tuning.json with its labels,
        templates and training record), whole or not at all; `from_pretrained(folder)` needs no labels."""
        from .tuning import save_tuned

        if self.tuned is None:
            raise UsageError("nothing to save: save_pretrained writes a tuned model; call fit(texts, targets, "
                             "labels=...) first")
        save_tuned(self.scorer, *self.tuned, folder)

    def score_pairs(self, first: Sequence[str], second: Sequence[str], progress: Optional[bool] = None) -> np.ndarray:
        """P(IsNext) of each (first[i], second[i]) pair, shape (n,)."""
        if isinstance(first, str) or isinstance(second, str):
            raise UsageError("score_pairs takes two lists of strings; wrap single strings in a list")
        first, second = list(first), list(second)
        if len(first) != len(second):
            raise UsageError(f"score_pairs needs lists of equal length, got {len(first)} and {len(second)}")
        for name, seq in (("first", first), ("second", second)):
            for i, s in enumerate(seq):
                if not isinstance(s, str):
                    raise UsageError(f"{name}[{i}] is {type(s).__name__} {s!r}, not a string")
                check_unicode(s, f"{name}[{i}]")
        return self.scorer.score([Pair(a, b) for a, b in zip(first, second)], progress=progress)

    def run(self, request: ClassifyRequest, texts: Sequence[str], progress: Optional[bool] = None,
            label_sets: Optional[Sequence[Optional[LabelSet]]] = None) -> list[ClassificationResult]:
        """The one classification path every front door ends in: checked texts × a built request
        (and, for per-row labels, each text's own label set; None items take the request's)."""
        return pipeline.run(self.scorer, request, texts, label_sets, progress)

    def label_scores(self, texts: Union[str, Sequence[str]], labels: Optional[LabelsArg] = None,
                     template: Union[str, Sequence[str], None] = None, placement: Optional[str] = None,
                     progress: Optional[bool] = None, combine: Optional[str] = None,
                     prompt: Optional[str] = None, long_text: str = "truncate", aggregate: str = "max",
                     overlap: int = DEFAULT_OVERLAP) -> tuple[list[str], np.ndarray]:
        """(label names, texts × labels matrix of combined P(IsNext)) — the scores before mapping."""
        fields = self._fill(labels, template, placement, combine, prompt)
        request = build_request(fields["labels"], prompt=prompt, template=fields["template"],
                                placement=fields["placement"], combine=fields["combine"], multi_label=True,
                                threshold=0.0, long_text=long_text, aggregate=aggregate, overlap=overlap)
        items, _ = check_texts(texts)
        return list(request.labels), np.vstack(list(pipeline.label_rows(self.scorer, request, items, None, progress)))

    def classify(self, texts: Union[str, Sequence[str]], labels: Any = None,
                 template: Union[str, Sequence[str], None] = None, placement: Optional[str] = None,
                 multi_label: bool = False, threshold: float = 0.5, progress: Optional[bool] = None,
                 combine: Optional[str] = None, prompt: Optional[str] = None, normalize: bool = False,
                 long_text: str = "truncate", aggregate: str = "max", overlap: int = DEFAULT_OVERLAP,
                 top_k: Optional[int] = None, labels_per_text: Optional[Sequence[Any]] = None
                 ) -> Union[ClassificationResult, list[ClassificationResult]]:
        """Classify `texts` among `labels`; a single string gives a single result.

        `labels`: a list of names, or a dict name → verbalization(s) (or {"words": ..., "description":
        ...}, a description being a whole prompt sentence). `labels_per_text` instead: one label set
        per text (a list, a dict, or a comma string: `labels_per_text=[["体育", "财经"], "好评,差评"]`),
        all scored in one call; a None item takes `labels`. `prompt`: a
        named prompt set (e.g. "tnews" or "tnews:news-2021") giving labels, words, templates,
        placement and combine rule; `labels` then picks some of its labels, and any argument given
        explicitly overrides the set's. `template`: a string with {label}, or a list of them
        (default "{label}"). `placement`: 'prefix' (prompt is sentence A, the paper's default) or
        'suffix'. With `multi_label`, `.label` lists every label whose score ≥ `threshold`, best
        first (one label is then allowed); otherwise at least two labels. `combine`: how a label's
        several pairs make its score — "mean" P(IsNext) (default) or "logmean". `long_text`:
        "truncate" (the paper's: the text is cut to max_length) or "chunk": a long text is read in
        windows on sentence boundaries (`overlap` tokens repeated between neighbours) and a label's
        score is the `aggregate` ("max" or "mean") over the windows. `top_k`: keep only the K best
        labels' scores per result (the decision uses all). `normalize`: divide each text's scores
        by their sum (the ranking is unchanged). `progress`: True draws a progress bar, False none;
        None (default) only for a long call (a few seconds or more) when stderr is a terminal.
        """
        args = ClassifyArgs.of(text=texts if isinstance(texts, str) else None,
                               texts=None if isinstance(texts, str) else texts, labels=labels,
                               labels_per_text=labels_per_text, prompt=prompt, template=template, placement=placement,
                               combine=combine, multi_label=multi_label, threshold=threshold, long_text=long_text,
                               aggregate=aggregate, overlap=overlap, top_k=top_k, normalize=normalize)
        return self.classify_args(args, progress)

    def classify_args(self, args: ClassifyArgs, progress: Optional[bool] = None) -> Union[
            ClassificationResult, list[ClassificationResult]]:
        """`classify` for a request already stated as data (what the server and Ray payloads are)."""
        request = self.fill_args(args).to_request()
        items, single = args.text_list()
        results = self.run(request, items, progress, args.label_sets(request, len(items)))
        return results[0] if single else results

    def __call__(self, sequences: Union[str, Sequence[str]], candidate_labels: Union[str, Sequence[str]],
                 hypothesis_template: str = "{}", multi_label: bool = False, normalize: bool = False,
                 threshold: float = 0.5) -> Union[dict, list[dict]]:
        """transformers' zero-shot pipeline call style: `clf(texts, candidate_labels=[...],
        hypothesis_template="这是一则{}新闻")` → {"sequence", "labels", "scores"} (labels best first).

        Differences from the NLI pipeline: scores are P(IsNext) per label (not a softmax over the
        labels, so they need not sum to 1; `normalize=True` divides them by their sum), and the
        hypothesis is the NSP prompt placed before the text (the paper's placement). `{}` and
        `{label}` both mark the label in the template; `candidate_labels` may be a comma string.
        """
        from .request import zero_shot_prompts

        labels, template = zero_shot_prompts(candidate_labels, hypothesis_template)
        results = self.classify(sequences, labels, template=template, multi_label=multi_label, threshold=threshold,
                                normalize=normalize)
        as_dicts = [r.to_zero_shot() for r in ([results] if isinstance(results, ClassificationResult) else results)]
        return as_dicts[0] if isinstance(sequences, str) else as_dicts

    def link(self, contexts: Union[str, Sequence[str]], candidates) -> Union[LinkResult, list[LinkResult]]:
        """Entity linking: for each mention context, the candidate entity whose description has the
        highest P(IsNext) after it. `candidates`: dict id → description or list of (id, description);
        with a list of contexts, a list of such candidate sets. A single string gives a single result."""
        items, single = check_texts(contexts)
        results = link(self.scorer, items, [candidates] if single else candidates)
        return results[0] if single else results
