"""What a bigger encoder costs before anyone downloads it: `nspzero bench --shape base|large|1.3B`.

A shape preset builds a random model of that size (the architecture's NSP/SOP class from `heads`), and
reports, per dtype, the bytes its weights take once loaded, the measured pairs per second, and the hours
one full zero-shot FewCLUE pass (about 380,000 pairs, method.md §7) would take at that speed. Random
weights cost as much compute as trained ones; the figures are only as good as the machine is quiet.
"""
from __future__ import annotations

import fnmatch
import tempfile
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from . import cpu
from .bench import FEWCLUE_PAIRS, write_char_vocab
from .errors import UsageError

# model_type and config of each preset. "1.3B": the shape of IDEA-CCNL/Erlangshen-MegatronBert-1.3B (MegatronBERT,
# pre-LayerNorm; 2048 hidden × 24 layers, FFN 8192: 1.3e9 parameters with its 21,248-token vocab).
SHAPES: dict[str, tuple[str, dict]] = {
    "base": ("bert", dict(vocab_size=21128, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                          intermediate_size=3072)),
    "large": ("bert", dict(vocab_size=21128, hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                           intermediate_size=4096)),
    "1.3B": ("megatron-bert", dict(vocab_size=21248, hidden_size=2048, num_hidden_layers=24, num_attention_heads=32,
                                   intermediate_size=8192)),
}
FEWCLUE_PASS_PAIRS = sum(FEWCLUE_PAIRS.values())
SHAPE_DTYPES = ("float32", "int8", "bfloat16")
TEXT = "这是一款可以帮助用户规划出行路线并实时查看路况的地图导航软件，支持离线地图下载和语音播报。"


@dataclass
class ShapeRow:
    """One dtype of one shape: parameters, bytes of loaded weights, measured speed and the projection."""

    shape: str
    dtype: str
    parameters: int
    weight_bytes: int
    pairs_per_second: float
    peak_rss_bytes: int

    @property
    def fewclue_hours(self) -> float:
        return FEWCLUE_PASS_PAIRS / self.pairs_per_second / 3600 if self.pairs_per_second > 0 else float("inf")


def shape_config(shape: str):
    """The transformers config of preset `shape` (UsageError naming the presets otherwise)."""
    import transformers

    if shape not in SHAPES:
        raise UsageError(f"unknown --shape {shape!r}; use one of {', '.join(SHAPES)}")
    model_type, sizes = SHAPES[shape]
    config = transformers.AutoConfig.for_model(model_type, **sizes, max_position_embeddings=512)
    return config


def weight_bytes(model: torch.nn.Module, dtype: str) -> int:
    """Bytes of the weights once `NSPScorer` prepared them: bfloat16 halves only the Linear layers (embeddings
    and LayerNorms stay fp32); int8 stores Linear weights in one byte plus an fp32 scale per output row,
    except the layers `quantize.KEEP_FP32` keeps (pooler, head)."""
    from .quantize import KEEP_FP32

    total = 0
    linear = {}
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear):
            linear[name + ".weight"] = (module, name)
            if module.bias is not None:
                linear[name + ".bias"] = (module, name)
    for name, param in model.named_parameters():
        n = param.numel()
        hit = linear.get(name)
        if hit is None or dtype == "float32":
            total += 4 * n
        elif dtype == "bfloat16":
            total += 2 * n
        elif any(fnmatch.fnmatchcase(hit[1], p) for p in KEEP_FP32) or name.endswith(".bias"):
            total += 4 * n
        else:
            total += n + 4 * hit[0].out_features
    return total


def random_scorer_inputs(shape: str, directory: str, seed: int = 0):
    """(tokenizer, model) of preset `shape` with random weights: the model class `heads` gives its type, a
    character vocab padded with [unused] tokens to the preset's size."""
    from transformers import BertTokenizer

    from .formats.heads import HEADS
    from .quiet import quiet_transformers

    config = shape_config(shape)
    write_char_vocab(directory, TEXT + "这是一则新闻体育财经科技", config.vocab_size)
    torch.manual_seed(seed)
    with quiet_transformers():
        tokenizer = BertTokenizer.from_pretrained(directory)
        model = HEADS[config.model_type].model_class()(config).eval()
    return tokenizer, model


def measure_shape(shape: str, dtypes: Sequence[str] = SHAPE_DTYPES, pairs: int = 16, max_length: int = 128,
                  batch_size: int = 8, log: Callable[[str], None] = print) -> list[ShapeRow]:
    """Build preset `shape` afresh per dtype (the scorer quantises or converts the model it owns in place:
    a shared model would carry one dtype's changes into the next row) and time `pairs` pairs of
    `max_length` tokens (after one warm-up batch) on torch's kernels (backend "torch": no backend trial
    inside the timing). Most FewCLUE pairs (CSLDCP, IFLYTEK) fill 128 tokens, so the projection uses
    full-length pairs."""
    from .scorer import NSPScorer, Pair

    shape_config(shape)  # an unknown preset is a UsageError before any work
    unknown = [d for d in dtypes if d not in SHAPE_DTYPES]
    if unknown:
        raise UsageError(f"--dtypes for --shape: {', '.join(unknown)} unknown; use {', '.join(SHAPE_DTYPES)}")
    rows = []
    work = [Pair(f"这是一则{w}新闻", TEXT * 4, prompt="first") for w in ("体育", "财经", "科技", "教育")]
    work = (work * (pairs // len(work) + 1))[:pairs]
    with tempfile.TemporaryDirectory(prefix="nspzero-shape-") as tmp:
        for dtype in sorted(dtypes, key=SHAPE_DTYPES.index):
            log(f"building a random {shape} model ({SHAPES[shape][0]}) for {dtype}")
            tokenizer, model = random_scorer_inputs(shape, tmp)  # the same seed: the same weights every time
            parameters = sum(p.numel() for p in model.parameters())
            stored = weight_bytes(model, dtype)  # from the untouched fp32 model
            scorer = NSPScorer(tokenizer, model, device="cpu", dtype=dtype, max_length=max_length,
                               batch_size=batch_size, name=f"random {shape}", backend="torch", _owns_model=True)
            del model  # the scorer holds the only reference: int8/bf16 replace its weights in place
            scorer.score(work[:batch_size], progress=False)  # warm-up
            start = time.perf_counter()
            scorer.score(work, progress=False)
            rate = len(work) / (time.perf_counter() - start)
            rows.append(ShapeRow(shape, dtype, parameters, stored, rate, cpu.peak_rss_bytes()))
            log(f"{shape} {dtype}: {rate:.2f} pairs/s")
            del scorer
    return rows


def format_shape_table(rows: Sequence[ShapeRow]) -> str:
    """A Markdown table: shape, dtype, parameters, weights in memory, pairs/s, hours per FewCLUE pass, peak RSS."""
    lines = [f"CPU: {cpu.name()} ({cpu.capability()}), {torch.get_num_threads()} threads; "
             f"a full zero-shot FewCLUE pass = {FEWCLUE_PASS_PAIRS:,} pairs",
             "| shape | dtype | parameters | weights loaded | pairs/s | hours per FewCLUE pass | peak RSS so far |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.shape} | {r.dtype} | {r.parameters / 1e6:,.0f} M | {r.weight_bytes / 2**30:.2f} GiB | "
                     f"{r.pairs_per_second:.2f} | {r.fewclue_hours:,.1f} | {r.peak_rss_bytes / 2**30:.2f} GiB |")
    return "\n".join(lines)
