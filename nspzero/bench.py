"""Throughput benchmark: nspzero's scoring paths against a naive baseline, transformers' zero-shot
NLI pipeline and (with `peers`) CTranslate2 and ONNX Runtime, on the same pairs, in one interleaved
run, reported as ratios with each figure's spread over rounds.

"% of peak" is against the fastest fp32 GEMM this torch has (MKL via torch.mm or oneDNN, whichever
is faster here), so it never flatters a path that uses the slower kernel.

The model is a BERT with random weights of a real shape (default bert-base-chinese) unless
`--model` names a checkpoint; agreement of reduced precisions with fp32 should be checked on
the user's own checkpoint, because random weights give nearly equal label scores.
"""
from __future__ import annotations

import contextlib
import logging
import os
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator, Optional, Sequence

import numpy as np
import torch

from . import cpu
from .errors import UsageError
from .tiny_model import SPECIALS
from .scorer import BENCH_ADVICE, NSPScorer, Pair

BERT_BASE_CHINESE = dict(vocab_size=21128, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                         intermediate_size=3072, max_position_embeddings=512)
# Pairs of one full zero-shot FewCLUE test_public pass (method.md §7).
FEWCLUE_PAIRS = {"eprstmt": 610 * 2, "tnews": 2010 * 15, "csldcp": 1784 * 67, "iflytek": 1749 * 119,
                 "ocnli": 2520, "bustm": 1772, "csl": 2838, "chid": 2002 * 7, "cluewsc": 976}
SYNTHETIC = ["今天的比赛非常精彩，主队在最后一分钟打进制胜球。", "央行宣布下调存款准备金率，市场普遍上涨。",
             "这款手机的电池续航很差，屏幕却很清楚。", "新学期开始了，学校为学生准备了新的课程。",
             "这是一款可以帮助用户规划出行路线并实时查看路况的地图导航软件，支持离线地图下载。" * 2]


@dataclass
class Workload:
    """One task's benchmark pairs: texts × label words under one template."""

    name: str
    texts: list[str]
    words: list[str]
    template: str

    @property
    def pairs(self) -> list[Pair]:
        return [Pair(self.template.replace("{label}", w), t) for t in self.texts for w in self.words]


@dataclass
class PathResult:
    name: str
    seconds: dict[str, list[float]] = field(default_factory=dict)
    scores: dict[str, np.ndarray] = field(default_factory=dict)


def encoder_flops(lengths: Sequence[int], config) -> float:
    """Multiply-adds ×2 of BERT's encoder over unpadded lengths: useful work, whatever the padding."""
    h, i, n = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    return float(sum(n * (8 * L * h * h + 4 * L * h * i + 4 * L * L * h) for L in lengths))


SPREAD_WARN = 0.10  # rounds that disagree by more than this are reported as a warning


def _gemm_kernels(a: torch.Tensor, b: torch.Tensor) -> dict[str, Callable[[], object]]:
    """The GEMMs torch offers for a @ b.T: torch.mm (MKL on x86) and oneDNN with a prepacked b."""
    kernels: dict[str, Callable[[], object]] = {"torch.mm": lambda: torch.mm(a, b.t())}
    from .backends import onednn_available, pack_weight, packed_linear

    if onednn_available():
        try:
            packed = pack_weight(b, a.shape[0])
            kernels["oneDNN"] = lambda: packed_linear(a, packed, None)
        except RuntimeError:  # a dtype this oneDNN build cannot pack
            pass
    return kernels


def peak_matmul(dtype: torch.dtype, max_size: int = 2048, repeats: int = 5, budget_s: float = 3.0
                ) -> tuple[float, str]:
    """(GFLOP/s, kernel): large square matmuls after warm-up through each GEMM torch has, the best —
    the machine's practical peak for that dtype. The size grows from 256 while a matmul takes under
    `budget_s` / 8 (emulated bf16 is far slower)."""
    best_rate, best_kernel, size = 0.0, "torch.mm", 256
    while size <= max_size:
        a, b = torch.randn(size, size).to(dtype), torch.randn(size, size).to(dtype)
        slowest = 0.0
        for kernel, run in _gemm_kernels(a, b).items():
            run()
            best = float("inf")
            for _ in range(repeats):
                start = time.perf_counter()
                run()
                best = min(best, time.perf_counter() - start)
            if 2 * size ** 3 / best / 1e9 > best_rate:
                best_rate, best_kernel = 2 * size ** 3 / best / 1e9, kernel
            slowest = max(slowest, best)
        if slowest * repeats > budget_s / 8:
            break
        size *= 2
    return best_rate, best_kernel


OUTLIER_SCALE = 20.0  # how much larger the outlier features are than the rest


def add_outlier_features(model: torch.nn.Module, count: int, scale: float = OUTLIER_SCALE) -> list[int]:
    """Give `count` hidden features a `scale`x larger magnitude in every encoder LayerNorm's output, as
    trained BERTs have (a few dimensions dominate the residual stream): what makes int8 activations
    hard, and what random weights lack. Returns the feature indexes."""
    hidden = model.config.hidden_size
    dims = [(i + 1) * hidden // (count + 1) for i in range(count)]
    with torch.no_grad():
        for name, module in model.named_modules():
            if isinstance(module, torch.nn.LayerNorm) and ".encoder." in f".{name}.":
                module.weight[dims] *= scale
                module.bias[dims] += scale / 10
    return dims


def write_char_vocab(directory: str, chars: str, size: int) -> None:
    """vocab.txt of BERT's special tokens and `chars` one per token, padded with [unused] tokens to `size`
    entries (the random model's embedding rows): texts of those characters never read as [UNK]."""
    tokens = SPECIALS + sorted(set(chars))
    tokens += [f"[unused{i}]" for i in range(size - len(tokens))]
    with open(os.path.join(directory, "vocab.txt"), "w", encoding="utf-8") as handle:
        handle.write("\n".join(tokens[:size]) + "\n")


def build_random_model(directory: str, config_path: Optional[str], vocab_path: Optional[str], seed: int = 0,
                       outliers: int = 0) -> str:
    """Save a random BertForPreTraining of the given shape (and the real vocab if given), with
    `outliers` large-magnitude hidden features (see add_outlier_features)."""
    from transformers import BertConfig, BertForPreTraining, BertTokenizer

    from .quiet import quiet_transformers

    config = BertConfig.from_json_file(config_path) if config_path else BertConfig(**BERT_BASE_CHINESE)
    if vocab_path:
        shutil.copy(vocab_path, os.path.join(directory, "vocab.txt"))
    else:  # a character vocab covering the synthetic texts
        write_char_vocab(directory, "".join(SYNTHETIC) + "这是一则新闻体育财经科技教育软件类", config.vocab_size)
    torch.manual_seed(seed)
    with quiet_transformers():  # no "Writing model shards" bars
        model = BertForPreTraining(config)
        if outliers:
            add_outlier_features(model, outliers)
        model.save_pretrained(directory)
        BertTokenizer.from_pretrained(directory).save_pretrained(directory)
    return directory


def check_inputs(config_path: Optional[str], vocab_path: Optional[str], data_dir: Optional[str]) -> None:
    """Refuse a missing or unreadable --config/--vocab and a --data-dir that is not a folder up front
    (never a silent switch to synthetic texts), each in one line."""
    import json

    if config_path is not None:
        try:
            with open(config_path, encoding="utf-8") as handle:
                config = json.load(handle)
        except OSError as exc:
            raise UsageError(f"--config {config_path!r}: {exc.strerror or exc}") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise UsageError(f"--config {config_path!r} is not a JSON BERT config ({exc})") from None
        if not isinstance(config, dict) or "hidden_size" not in config:
            raise UsageError(f"--config {config_path!r} is not a BERT config (no hidden_size); pass a config.json")
    if vocab_path is not None and not os.path.isfile(vocab_path):
        raise UsageError(f"--vocab {vocab_path!r} is not a file; pass a vocab.txt")
    if data_dir is not None and not os.path.isdir(data_dir):
        raise UsageError(f"--data-dir {data_dir!r} is not a folder; pass the FewCLUE datasets folder, or leave it "
                         f"out for synthetic texts")


def load_workloads(data_dir: Optional[str], tasks: Sequence[str], pairs_per_task: int) -> list[Workload]:
    """Real texts and the task's default prompt (FewCLUE), or a synthetic fallback."""
    from .prompt_sets import load_prompt
    from .tasks.registry import load_task

    out = []
    for name in tasks:
        variant = load_prompt(name)
        words = [ws[0] for ws in (variant.words or {}).values()]
        n_texts = max(1, pairs_per_task // max(1, len(words)))
        if data_dir and os.path.isdir(os.path.join(data_dir, name)):
            task = load_task(name)
            texts = [str(e.fields["text"]) for e in task.read(data_dir, task.config.test_split, n_texts)]
        else:
            texts = [SYNTHETIC[i % len(SYNTHETIC)] + str(i) for i in range(n_texts)]
        out.append(Workload(name, texts, words, variant.templates[0]))
    return out


def pad_to_max_scores(scorer: NSPScorer, pairs: Sequence[Pair], batch_size: int = 32) -> np.ndarray:
    """The naive baseline: every pair padded to max_length, input order, fixed batches."""
    tok = scorer.tokenizer
    out = []
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start:start + batch_size]
        enc = tok([p.first for p in chunk], [p.second for p in chunk], padding="max_length", truncation="longest_first",
                  max_length=scorer.max_length, return_tensors="pt")
        with torch.inference_mode():
            logits = scorer.model(**enc).logits
        out.append(torch.softmax(logits.float(), -1)[:, 0].numpy())
    return np.concatenate(out)


def nli_pipeline(scorer: NSPScorer):
    """transformers' zero-shot pipeline on a same-shaped BertForSequenceClassification (encoder
    weights copied from the NSP model, so both do the same encoder work per pair)."""
    from transformers import BertForSequenceClassification, pipeline

    config = scorer.model.config.__class__.from_dict(scorer.model.config.to_dict())
    config.num_labels = 3
    config.id2label = {0: "contradiction", 1: "neutral", 2: "entailment"}
    config.label2id = {v: k for k, v in config.id2label.items()}
    model = BertForSequenceClassification(config).eval()
    model.bert.load_state_dict(scorer.model.bert.state_dict(), strict=False)
    tokenizer = scorer.tokenizer
    tokenizer.model_max_length = scorer.max_length  # truncate to the same length as nspzero
    return pipeline("zero-shot-classification", model=model, tokenizer=tokenizer, device=-1)


def run_benchmark(model: Optional[str] = None, config_path: Optional[str] = None, vocab_path: Optional[str] = None,
                  data_dir: Optional[str] = None, tasks: Sequence[str] = ("tnews", "iflytek"), pairs_per_task: int = 240,
                  rounds: int = 2, max_length: int = 128, batch_size: int = 32, include_pipeline: bool = True,
                  dtypes: Optional[Sequence[str]] = None, log: Callable[[str], None] = print,
                  compile: bool = False, peers: bool = False, outliers: int = 0) -> dict:
    """`dtypes` None: int8 beside the previous int8 (int8-dynamic), plus bfloat16 where the CPU has native
    bf16 (else it is far slower). `compile`: also time the torch.compile'd fp32 (and bf16) paths
    (compiled during the warm-up). `peers`: also CTranslate2 and ONNX Runtime where installed (peers.py).
    `outliers`: give the random model that many large-magnitude hidden features (add_outlier_features)."""
    if dtypes is None:
        dtypes = ("int8", "int8-dynamic")
        if cpu.has_native_bf16():
            dtypes = ("bfloat16",) + dtypes
        if "bfloat16" not in dtypes:
            log("skipping the bfloat16 path: this CPU has no native bf16 matmul (AVX-512 BF16/AMX); "
                "force it with --dtypes bfloat16,int8,int8-dynamic")
    tmp = None
    if model is None:
        tmp = tempfile.mkdtemp(prefix="nspzero-bench-")
        model = build_random_model(tmp, config_path, vocab_path, outliers=outliers)
    try:
        with each_warning_once(), _cache_in(os.path.join(tmp, "cache") if tmp else None):
            summary = _run(model, data_dir, tasks, pairs_per_task, rounds, max_length, batch_size, include_pipeline,
                           dtypes, log, random_weights=tmp is not None, compile=compile, peers=peers)
        if tmp and outliers:
            summary["model"] += f", {outliers} outlier features ({OUTLIER_SCALE:.0f}x)"
        return summary
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def each_warning_once() -> Iterator[None]:
    """The bench loads its model once per dtype and path: each load's warning (random weights, a slow
    bfloat16) is shown once, and without the advice to run `nspzero bench`, which is running."""
    seen: set[str] = set()

    def once(record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message in seen:
            return False
        seen.add(message)
        if BENCH_ADVICE in message:
            record.msg, record.args = message.replace(BENCH_ADVICE, ""), ()
        return True

    logger = logging.getLogger("nspzero")
    logger.addFilter(once)
    try:
        yield
    finally:
        logger.removeFilter(once)


@contextlib.contextmanager
def _cache_in(folder: Optional[str]) -> Iterator[None]:
    """The bench's own random model is thrown away after the run: so is its ONNX export (~490 MB for
    BERT-base), written into the run's temp folder instead of the user cache (NSPZERO_CACHE_DIR)."""
    if folder is None:
        yield
        return
    saved = os.environ.get("NSPZERO_CACHE_DIR")
    os.environ["NSPZERO_CACHE_DIR"] = folder
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("NSPZERO_CACHE_DIR", None)
        else:
            os.environ["NSPZERO_CACHE_DIR"] = saved


def _run(model, data_dir, tasks, pairs_per_task, rounds, max_length, batch_size, include_pipeline, dtypes, log,
         random_weights, compile=False, peers=False) -> dict:
    log(f"threads: {torch.get_num_threads()}; measuring peak matmul …")
    peak, peak_kernel = {}, {}
    for name, dtype in (("float32", torch.float32), ("bfloat16", torch.bfloat16)):
        peak[name], peak_kernel[name] = peak_matmul(dtype)
    fp32 = NSPScorer.from_pretrained(model, max_length=max_length, batch_size=batch_size)
    scorers = {"nspzero fp32": fp32}  # the default path: backend "auto" settles during the first round
    for backend, label in (("torch", "torch kernels"), ("onednn", "oneDNN")):
        if fp32.backend == "auto":
            scorers[f"nspzero fp32 {label}"] = NSPScorer.from_pretrained(model, max_length=max_length,
                                                                         batch_size=batch_size, backend=backend)
    if fp32.unpad:  # what skipping the pad tokens gains: beside "torch kernels", on transformers' padded forward
        padded = NSPScorer.from_pretrained(model, max_length=max_length, batch_size=batch_size, backend="torch")
        padded.unpad = False
        scorers["nspzero fp32 pad tokens kept"] = padded
    for dtype in dtypes:
        scorers[f"nspzero {dtype}"] = NSPScorer.from_pretrained(model, max_length=max_length, batch_size=batch_size,
                                                                dtype=dtype)
        if scorers[f"nspzero {dtype}"].backend == "onnxruntime" and dtype == "int8":  # torch's own int8 beside it
            scorers["nspzero int8 torch kernels"] = NSPScorer.from_pretrained(
                model, max_length=max_length, batch_size=batch_size, dtype=dtype, backend="torch")
    if compile:
        for dtype in ["float32"] + [d for d in dtypes if d == "bfloat16"]:
            scorers[f"nspzero {'fp32' if dtype == 'float32' else dtype} compiled"] = NSPScorer.from_pretrained(
                model, max_length=max_length, batch_size=batch_size, dtype=dtype, compile=True)
    workloads = load_workloads(data_dir, tasks, pairs_per_task)
    paths: dict[str, Callable[[Workload], np.ndarray]] = {
        name: (lambda w, s=s: s.score(w.pairs, progress=False)) for name, s in scorers.items()}
    paths["pad-to-max fp32"] = lambda w: pad_to_max_scores(fp32, w.pairs, batch_size)
    if include_pipeline:
        pipe = nli_pipeline(fp32)

        def run_pipe(w: Workload, bs: int) -> np.ndarray:
            pipe(w.texts, candidate_labels=w.words, hypothesis_template=w.template.replace("{label}", "{}"),
                 batch_size=bs, multi_label=True)
            return np.zeros(len(w.pairs))  # its entailment scores come from another head: timing only
        paths["transformers NLI pipeline bs=1"] = lambda w: run_pipe(w, 1)
        paths["transformers NLI pipeline bs=32"] = lambda w: run_pipe(w, 32)
    workdir = tempfile.mkdtemp(prefix="nspzero-peers-") if peers else None
    if peers:
        from .peers import ctranslate2_peers, onnxruntime_peers

        log("converting the model for CTranslate2 and ONNX Runtime …")
        for name, fn in {**ctranslate2_peers(fp32, workdir, log),
                         **onnxruntime_peers(model, workdir, max_length, batch_size, log)}.items():
            paths[name] = lambda w, fn=fn: fn(w.pairs)

    lengths = {w.name: [len(e.input_ids) for e in fp32.encode(w.pairs)] for w in workloads}
    flops = {w.name: encoder_flops(lengths[w.name], fp32.model.config) for w in workloads}
    results = {name: PathResult(name) for name in paths}
    if compile:
        log("compiling (torch.compile, once per path) …")
    for w in workloads:  # warm-up (and compilation), and the scores for agreement
        for name, fn in paths.items():
            results[name].scores[w.name] = fn(Workload(w.name, w.texts[:2], w.words, w.template))
    for scorer in scorers.values():  # a trial held in a timed round would time neither of its paths
        if scorer.settle_backend([w.pairs[:scorer.batch_size] for w in workloads if w.pairs]):
            log(f"fp32 backend settled before the timed rounds: {scorer.engine}")
    for r in range(rounds):
        for w in workloads:
            for name, fn in paths.items():  # interleaved: every path once per round
                start = time.perf_counter()
                scores = fn(w)
                results[name].seconds.setdefault(w.name, []).append(time.perf_counter() - start)
                results[name].scores[w.name] = scores
            log(f"round {r + 1}/{rounds} {w.name}: done")
    if workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    summary = _summary(results, workloads, lengths, flops, peak, fp32, data_dir, random_weights, model)
    summary["peak_kernel"] = peak_kernel
    for line in spread_warnings(summary):
        log(line)
    return summary


def spread_warnings(summary: dict) -> list[str]:
    """One warning per path whose rounds disagree by more than SPREAD_WARN (slowest vs fastest round of
    any task): on a busy machine two runs can disagree by 2x, and the reader must know."""
    out = []
    for row in summary["paths"]:
        spread = max(t["spread"] for t in row["tasks"].values())
        if spread > SPREAD_WARN:
            out.append(f"warning: {row['path']}: rounds disagree by {100 * spread:.0f}% (slowest vs fastest round): "
                       f"the machine was busy or the rounds too short; its ratios are uncertain — rerun with more "
                       f"--rounds or --pairs on an idle machine")
    return out


def _summary(results, workloads, lengths, flops, peak, fp32, data_dir, random_weights, model) -> dict:
    base = results["nspzero fp32"]
    rows = []
    for name, res in results.items():
        row = {"path": name, "tasks": {}}
        for w in workloads:
            secs = min(res.seconds[w.name])
            pairs_s = len(w.pairs) / secs
            dtype = "bfloat16" if "bfloat16" in name else "float32"
            row["tasks"][w.name] = {"pairs_per_s": pairs_s, "seconds": secs,
                                    "spread": max(res.seconds[w.name]) / secs - 1,
                                    "gflops": flops[w.name] / secs / 1e9,
                                    "fraction_of_peak": flops[w.name] / secs / 1e9 / peak[dtype],
                                    "vs_fp32": (min(base.seconds[w.name]) / secs)}
            if name != "nspzero fp32" and "pipeline" not in name:  # the pipeline's scores are not NSP scores
                ref, got = base.scores[w.name], res.scores[w.name]
                n_words = len(w.words)
                top = np.mean(ref.reshape(-1, n_words).argmax(1) == got.reshape(-1, n_words).argmax(1))
                row["tasks"][w.name].update(max_abs_dp=float(np.max(np.abs(ref - got))), top1_agreement=float(top))
        rows.append(row)
    out = {"model": "random weights" if random_weights else model, "threads": torch.get_num_threads(),
           "default_engine": fp32.engine,
           "cpu": cpu.name(), "capability": cpu.capability(),
           "peak_gflops": peak, "peak_rss_mb": cpu.peak_rss_bytes() / 2**20,
           "mean_tokens_per_pair": {w.name: float(np.mean(lengths[w.name])) for w in workloads},
           "pairs": {w.name: len(w.pairs) for w in workloads}, "paths": rows,
           "projection_hours": _projection(rows, fp32, data_dir)}
    return out


def _projection(rows, fp32: NSPScorer, data_dir) -> dict:
    """Hours for a full FewCLUE test_public pass per path: each task's pair count × its mean
    encoder FLOPs per pair (from a sample of its real pairs), at the path's measured FLOP/s."""
    if not data_dir:
        return {}
    from .tasks.registry import load_task

    per_pair = {}
    for name in FEWCLUE_PAIRS:
        if not os.path.isdir(os.path.join(data_dir, name)):
            return {}
        task = load_task(name)
        sample = task.read(data_dir, task.config.test_split, 40)
        pairs = [p for e in sample for p in task.example_pairs(e)]
        per_pair[name] = encoder_flops([len(e.input_ids) for e in fp32.encode(pairs)], fp32.model.config) / len(pairs)
    total = sum(FEWCLUE_PAIRS[n] * per_pair[n] for n in FEWCLUE_PAIRS)
    out = {}
    for row in rows:
        rate = statistics.mean(t["gflops"] for t in row["tasks"].values()) * 1e9
        out[row["path"]] = total / rate / 3600
    return out


def format_table(summary: dict) -> str:
    tasks = list(summary["pairs"])
    head = ["path"] + [f"{t} pairs/s" for t in tasks] + [f"{t} ×fp32" for t in tasks] + \
        [f"{t} %peak" for t in tasks] + ["spread", "max|ΔP|", "top-1 agree", "FewCLUE h"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in summary["paths"]:
        t = row["tasks"]
        dps = [t[k].get("max_abs_dp") for k in tasks if "max_abs_dp" in t[k]]
        agree = [t[k].get("top1_agreement") for k in tasks if "top1_agreement" in t[k]]
        cells = [row["path"]] + [f"{t[k]['pairs_per_s']:.1f}" for k in tasks] + \
            [f"{t[k]['vs_fp32']:.2f}" for k in tasks] + [f"{100 * t[k]['fraction_of_peak']:.0f}%" for k in tasks] + \
            [f"±{100 * max(t[k]['spread'] for k in tasks):.0f}%", f"{max(dps):.1e}" if dps else "—", f"{min(agree):.2f}" if agree else "—",
             f"{summary['projection_hours'][row['path']]:.1f}" if row["path"] in summary["projection_hours"] else "—"]
        lines.append("| " + " | ".join(cells) + " |")
    peak = summary["peak_gflops"]
    kernel = summary.get("peak_kernel", {})
    lines += ["", f"nspzero fp32 (the default) ran: {summary['default_engine']}. Figures: best of the rounds; "
              f"spread: slowest round vs fastest (the worst task).",
              f"peak matmul: fp32 {peak['float32']:.0f} GFLOP/s ({kernel.get('float32', 'torch.mm')}), bf16 "
              f"{peak['bfloat16']:.0f} GFLOP/s ({kernel.get('bfloat16', 'torch.mm')}) (%peak of bf16 paths is "
              f"against the bf16 peak); threads {summary['threads']}; peak RSS "
              f"{summary['peak_rss_mb']:.0f} MB; mean tokens/pair: "
              + ", ".join(f"{k} {v:.1f}" for k, v in summary["mean_tokens_per_pair"].items())
              + f"; model: {summary['model']}; CPU: {summary['cpu']} ({summary['capability']})."]
    return "\n".join(lines)


def save_json(summary: dict, path: str) -> None:
    from .io import atomic_write_json

    atomic_write_json(path, summary)
