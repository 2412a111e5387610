"""`nspzero classify --engine ray`: the one request scored on a Ray Data actor pool.

The driver reads the input with the one reader (so every data error names file:line and every
format behaves as locally), sends only the texts to the actors, each of which loads one
`NSPClassifier` and runs the request with `NSPClassifier.run` (the local code path, so the scores
are the local ones), and writes the results in the input's order, with the input's other
columns, through the one streaming loop (`resume.stream`) and the one atomic writer; with `resume`
only the rows of the shards a killed run left are sent. The input is held in the driver's memory.
An actor whose process or node dies is restarted and its batch re-run (`common.fault_tolerance`);
the driver checks that every row comes back once, in order.
"""
from __future__ import annotations

import contextlib
import json
from typing import Any, Iterator, Optional, Sequence, Union

from ..errors import NSPZeroError
from ..io import (CLASSIFY_COLUMNS, RowWriter, check_output, input_format as resolve_input_format, output_columns,
                  output_format, read_texts, result_row)
from ..request import ClassifyRequest, build_request
from ..resume import SHARD_ROWS, Progress, fingerprint, pinned, stream
from ..templates import LabelsArg
from .common import (actor_device, check_positive, cluster_resources, fault_tolerance, from_ray, ray_session,
                     reraise)


class _ClassifyBatch:
    """Ray Data callable class: one NSPClassifier per actor, loaded in __init__."""

    def __init__(self, model: str, load_args: dict, request: ClassifyRequest, torch_threads: Optional[int]) -> None:
        if torch_threads:
            import torch

            torch.set_num_threads(torch_threads)
        from ..classifier import NSPClassifier

        self.clf = NSPClassifier.from_pretrained(model, **load_args)
        self.request = request

    def __call__(self, batch: dict) -> dict:
        import numpy as np

        label_sets = [self.request.labels_for(json.loads(own), "labels") if own else None for own in batch["labels"]]
        results = self.clf.run(self.request, [str(t) for t in batch["text"]], progress=False, label_sets=label_sets)
        return {"row": batch["row"], "result": np.array([json.dumps(r.to_dict(), ensure_ascii=False) for r in results],
                                                        dtype=object)}


def _check_next(input_path: str, row: int, due: int) -> None:
    """Every row once, in the input's order, or no output: the guard behind retried batches."""
    if row != due:
        raise NSPZeroError(f"{input_path}: the Ray job returned row {row + 1} where row {due + 1} was due; the output "
                           "was not written (a bug: please report it)")


def classify_with_ray(input_path: str, output_path: str, model: str, labels: Optional[LabelsArg] = None, *,
                      request: Optional[ClassifyRequest] = None, prompt: Optional[str] = None,
                      template: Union[str, Sequence[str], None] = None, placement: Optional[str] = None,
                      combine: Optional[str] = None, multi_label: bool = False, threshold: float = 0.5,
                      text_field: str = "text", input_format: Optional[str] = None, num_actors: int = 1,
                      ray_address: Optional[str] = None, rows_per_batch: int = 256, resume: bool = False,
                      raw_csv: bool = False,
                      **load_args: Any) -> int:
    """Classify every text of `input_path` (any format the reader takes) on Ray and write
    `output_path` (its suffix picks the format) in the input's row order; returns the rows written.

    The classification is a built `request`, or is built from `labels`, `prompt`, `template`,
    `placement`, `combine`, `multi_label` and `threshold` exactly as `NSPClassifier.classify` does.
    `num_actors` actors each load `model` once (a hub name, or a directory every Ray node can read;
    nspzero must be installed on every node); `load_args` are `NSPClassifier.from_pretrained`'s.
    Ray is started locally unless it is already running or `ray_address` names a cluster.
    `raw_csv`: CSV cells as they are (by default formula-like texts are neutralised, as `RowWriter` does).
    `resume`: keep finished shards beside the output and score only the rows a killed run left
    (`nspzero.resume`); the output is the same file.
    """
    if request is None:
        request = build_request(labels, prompt=prompt, template=template, placement=placement, combine=combine,
                                multi_label=multi_label, threshold=threshold, labels_per_row=True)
    check_positive(num_actors=num_actors, rows_per_batch=rows_per_batch)
    check_output(output_path, [input_path])
    fmt = output_format(output_path)
    rows = list(read_texts(input_path, input_format, text_field))
    own = [request.row_labels(r.labels, r.where) is not None for r in rows]  # checked here: errors name file:line
    flat = output_columns(request, fmt, any(own))
    load_args = {**load_args, "device": actor_device(load_args.get("device"))}
    progress: Any = contextlib.nullcontext()
    if resume:  # locked and checked before Ray starts
        load_args = pinned(load_args)
        parts = fingerprint(input_path=input_path, input_format=resolve_input_format(input_path, input_format),
                            text_field=text_field, model=model, request=request,
                            dtype=load_args.get("dtype", "float32"), max_length=load_args.get("max_length"),
                            device=load_args["device"], backend=load_args["backend"], compile=load_args["compile"])
        progress = Progress(output_path, parts)
    with progress:
        size = progress.shard_rows if resume else SHARD_ROWS
        wanted: Sequence[int] = range(len(rows))
        if resume:  # only the rows of the shards a killed run left
            wanted = [i for shard in progress.pending([r.text for r in rows])
                      for i in range(shard * size, min((shard + 1) * size, len(rows)))]

        def emit(chunk: list[int], results: list[dict]) -> None:
            for i, result in zip(chunk, results):
                writer.write(result_row(result, rows[i].extra, fmt, flat))

        with contextlib.ExitStack() as stack:
            ray = stack.enter_context(ray_session(ray_address)) if wanted else None
            writer = stack.enter_context(RowWriter(output_path, fmt, columns=CLASSIFY_COLUMNS, raw_csv=raw_csv))
            scored = _scored_on_ray(ray, rows, own, wanted, request, model, load_args, num_actors,
                                    rows_per_batch) if wanted else (item for item in ())

            def score(chunk: list[int]) -> list[dict]:
                out = []
                for i in chunk:
                    row, result = next(scored, (None, None))
                    if row is None:
                        raise NSPZeroError(f"{input_path}: the Ray job returned too few rows; the output was not "
                                           "written (a bug: please report it)")
                    _check_next(input_path, row, i)  # a restarted actor's re-run batch must not add or reorder rows
                    out.append(result)
                return out

            try:
                stream(range(len(rows)), score, emit, progress if resume else None, text=lambda i: rows[i].text,
                       chunk_rows=size)
                leftover = next(scored, None)  # run Ray's iterator to its end: the job finishes, its actors go
                if leftover is not None:
                    raise NSPZeroError(f"{input_path}: the Ray job returned row {leftover[0] + 1} more than once or "
                                       "past the input's end; the output was not written (a bug: please report it)")
            except Exception as exc:
                if ray is None or (isinstance(exc, NSPZeroError) and not from_ray(exc)):
                    raise
                reraise(exc, ray, f"{input_path}: the Ray job failed")
                raise
            finally:
                scored.close()  # a failed or interrupted job's iterator shuts its executor down now
        if resume:
            progress.finish()
    return len(rows)


def _scored_on_ray(ray: Any, rows: list, own: list[bool], wanted: Sequence[int], request: ClassifyRequest, model: str,
                   load_args: dict, num_actors: int, rows_per_batch: int) -> Iterator[tuple[int, dict]]:
    """(row index, result) of the `wanted` rows, in their order, as the actor pool scores them."""
    res = cluster_resources(ray, num_actors, load_args["device"], read=True)
    ds = ray.data.from_items([{"row": i, "text": rows[i].text,
                               "labels": json.dumps(rows[i].labels, ensure_ascii=False) if own[i] else ""}
                              for i in wanted],
                             override_num_blocks=max(1, min(len(wanted) // rows_per_batch + 1, 64)))
    ds = ds.map_batches(
        _ClassifyBatch, fn_constructor_kwargs=dict(model=model, load_args=load_args, request=request,
                                                   torch_threads=res.torch_threads),
        batch_size=rows_per_batch, batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=num_actors),
        num_cpus=res.actor_cpus, num_gpus=res.actor_gpus,
        **fault_tolerance())  # a dead actor is restarted and its batch re-run, a few times at most
    for batch in ds.iter_batches(batch_format="numpy", batch_size=None):
        for i, result in zip(batch["row"], batch["result"]):
            yield int(i), json.loads(result)
