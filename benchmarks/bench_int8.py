"""The int8 trade-off curve: speed vs fp32 and |ΔP| of every int8 variant tried, in one interleaved run.

Each variant scores the same length-sorted batches (TNEWS-like texts × 15 labels under the default
prompt, batches of 32) on a random-weight BERT of a real shape; the table gives its speed as a ratio
to torch fp32 (best round each, rounds interleaved so load on a shared machine hits all alike), max and
mean |ΔP| against torch fp32 and the top-1 agreement per text, and names the CPU and torch's capability.

    python benchmarks/bench_int8.py --config /work/shared/data/configs/chinese_L-12_H-768_A-12.json \\
        --vocab /work/shared/data/vocab/bert-base-chinese-vocab.txt --data-dir /work/shared/data/fewclue

Random weights have no outlier features; agreement on a trained checkpoint should be checked with
`nspzero bench --model CHECKPOINT`. Add --sensitivity to print each layer group's own |ΔP| (that group
alone int8), the measurement behind quantize.KEEP_FP32.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from typing import Callable

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from nspzero import cpu  # noqa: E402
from nspzero.bench import build_random_model, load_workloads  # noqa: E402
from nspzero.loading import load_nsp_model  # noqa: E402
from nspzero.quantize import KEEP_FP32, dynamic_int8, quantize_int8  # noqa: E402
from nspzero.scorer import NSPScorer  # noqa: E402

GROUPS = {"query": ".attention.self.query", "key": ".attention.self.key", "value": ".attention.self.value",
          "attention out": ".attention.output.dense", "FFN in": ".intermediate.dense", "FFN out": ".output.dense"}


def per_channel_dynamic(model):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        qconfig = torch.ao.quantization.per_channel_dynamic_qconfig
        return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear: qconfig})


def torch_variants(model) -> dict[str, Callable[[], torch.nn.Module]]:
    """name → builder; every builder copies `model`."""
    last_two_ffn = tuple(f"bert.encoder.layer.{i}.{part}" for i in (10, 11) for part in ("intermediate.dense",
                                                                                         "output.dense"))
    return {
        "torch int8 dynamic (previous int8)": lambda: dynamic_int8(model),
        "torch int8 dynamic, per-channel weights": lambda: per_channel_dynamic(model),
        "per-channel, head fp32, per-batch range": lambda: quantize_int8(model, per_token=False),
        "per-channel + per-token, head fp32 (int8; 8-bit activations on VNNI)": lambda: quantize_int8(model),
        "the same with 7-bit activations (reduce_range, the AVX2 setting)": lambda: quantize_int8(model,
                                                                                               reduce_range=True),
        "int8 + FFN of layers 10-11 fp32": lambda: quantize_int8(model, KEEP_FP32 + last_two_ffn),
        "int8 + every FFN-in fp32": lambda: quantize_int8(model, KEEP_FP32 + ("*.intermediate.dense",)),
    }


def onnx_variants(model, folder: str) -> dict[str, Callable[[], object]]:
    """ONNX Runtime fp32 and int8 flavours of the same model (skipped when onnxruntime is missing)."""
    try:
        import onnxruntime  # noqa: F401
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError:
        print("onnxruntime not installed: ONNX variants skipped (pip install 'nspzero[onnx]')", file=sys.stderr)
        return {}
    import logging

    import onnx

    from nspzero.onnx_export import ONNX_FP32_NODES, export_fp32

    logging.getLogger().setLevel(logging.ERROR)
    fp32 = os.path.join(folder, "model.onnx")
    export_fp32(model, fp32)
    nodes = [n.name for n in onnx.load(fp32).graph.node if n.op_type in ("MatMul", "Gemm")
             and any(p in n.name for p in ONNX_FP32_NODES)]
    flavours = {"ORT int8 per-channel 8-bit weights, head fp32": dict(weight_type=QuantType.QInt8,
                                                                      nodes_to_exclude=nodes),
                "ORT int8 per-channel 7-bit weights, head fp32 (export-onnx)": dict(
                    weight_type=QuantType.QInt8, reduce_range=True, nodes_to_exclude=nodes),
                "ORT int8 u8u8 per-channel, head fp32": dict(weight_type=QuantType.QUInt8, nodes_to_exclude=nodes)}
    out: dict[str, Callable[[], object]] = {"ORT fp32": lambda: _session(folder, "model.onnx", model.config)}
    for i, (name, kwargs) in enumerate(flavours.items()):
        file = f"model.q{i}.onnx"
        quantize_dynamic(fp32, os.path.join(folder, file), per_channel=True, **kwargs)
        out[name] = lambda file=file: _session(folder, file, model.config)
    return out


def _session(folder: str, file: str, config):
    from nspzero.onnx_model import OnnxNSPModel

    return OnnxNSPModel(folder, config, file=file)  # the wrapper export-onnx folders load into


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", help="BERT config.json (default: bert-base-chinese's shape)")
    parser.add_argument("--vocab", help="vocab.txt for the random model")
    parser.add_argument("--data-dir", help="FewCLUE folder (TNEWS texts); else synthetic texts")
    parser.add_argument("--pairs", type=int, default=300, help="about this many pairs (texts × 15 labels)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--no-onnx", action="store_true")
    parser.add_argument("--sensitivity", action="store_true", help="also measure each layer group alone in int8")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    tmp = tempfile.mkdtemp(prefix="nspzero-int8-")
    try:
        run(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(args, tmp: str) -> None:
    os.makedirs(os.path.join(tmp, "model"))
    model_dir = build_random_model(os.path.join(tmp, "model"), args.config, args.vocab)
    tokenizer, model = load_nsp_model(model_dir)
    scorer = NSPScorer(tokenizer, model, max_length=args.max_length, batch_size=32)
    work = load_workloads(args.data_dir, ["tnews"], args.pairs)[0]
    encoded = scorer.encode(work.pairs)
    order = scorer.batches(encoded)
    batches = [scorer._collate([encoded[i] for i in idx]) for idx in order]
    where = np.concatenate([np.asarray(idx) for idx in order])

    @torch.inference_mode()
    def score(m) -> np.ndarray:
        out = np.empty(len(work.pairs))
        out[where] = np.concatenate([torch.softmax(m(**b).logits.float(), -1)[:, 0].numpy() for b in batches])
        return out

    builders: dict[str, Callable[[], object]] = {"torch fp32": lambda: model}
    builders.update(torch_variants(model))
    if not args.no_onnx:
        builders.update(onnx_variants(model, tmp))
    models = {name: build() for name, build in builders.items()}
    print(f"CPU: {cpu.name()}; torch {torch.__version__}, capability {cpu.capability()}, "
          f"{torch.get_num_threads()} threads; {len(work.pairs)} pairs ({len(work.texts)} texts × {len(work.words)} "
          f"labels), mean {np.mean([len(e.input_ids) for e in encoded]):.1f} tokens/pair, {len(batches)} batches",
          flush=True)
    seconds = {name: [] for name in models}
    scores = {}
    for m in models.values():  # warm-up
        with torch.inference_mode():
            m(**batches[-1])
    for _ in range(args.rounds):
        for name, m in models.items():
            start = time.perf_counter()
            scores[name] = score(m)
            seconds[name].append(time.perf_counter() - start)
    ref, base = scores["torch fp32"], min(seconds["torch fp32"])
    n_labels = len(work.words)
    print("\n| variant | × torch fp32 | max abs ΔP | mean abs ΔP | top-1 agree |\n|---|---|---|---|---|")
    for name in models:
        diff = np.abs(scores[name] - ref)
        agree = np.mean(ref.reshape(-1, n_labels).argmax(1) == scores[name].reshape(-1, n_labels).argmax(1))
        print(f"| {name} | {base / min(seconds[name]):.2f} | {diff.max():.1e} | {diff.mean():.1e} | {agree:.2f} |")
    print(f"\n(torch fp32: {len(work.pairs) / base:.1f} pairs/s; best of {args.rounds} interleaved rounds)")
    if args.sensitivity:
        sensitivity(model, score, ref)


def sensitivity(model, score, ref) -> None:
    """|ΔP| with only one group of Linear layers int8 (per-channel + per-token), the rest fp32."""
    names = [n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)]
    head = ("bert.pooler.", "cls.")
    groups: dict[str, Callable[[str], bool]] = {
        label: (lambda n, suffix=suffix, ffn_out=label == "FFN out":
                n.endswith(suffix) and not (ffn_out and ".attention." in n))
        for label, suffix in GROUPS.items()}
    groups.update({f"layer {i}": (lambda n, i=i: n.startswith(f"bert.encoder.layer.{i}."))
                   for i in range(model.config.num_hidden_layers)})
    groups["pooler + NSP head"] = lambda n: n.startswith(head)
    print("\n| only this group int8 | max abs ΔP | mean abs ΔP |\n|---|---|---|")
    for label, chosen in groups.items():
        keep = tuple(n for n in names if not chosen(n))
        diff = np.abs(score(quantize_int8(model, keep)) - ref)
        print(f"| {label} ({len(names) - len(keep)} layers) | {diff.max():.1e} | {diff.mean():.1e} |", flush=True)


if __name__ == "__main__":
    main()
