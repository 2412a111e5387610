"""What dtype="int8" means: an fp32 NSP model → the same model with int8 Linear layers, for CPUs.

Why not plain `torch.ao.quantization.quantize_dynamic` (kept as dtype "int8-dynamic"): it quantises
each weight matrix with one scale and each batch's activations with one range, which costs accuracy.
`Int8Linear` keeps fbgemm's dynamic kernel and lowers the error where it is cheap:

* per-channel weights: one scale per output row instead of one per matrix;
* per-token activation ranges: each row (token) is divided by its own max |x| before the kernel
  quantises the batch, and two rows of +1/-1 pin the kernel's one range to [-1, 1], so every token's
  int8 codes are its own and a layer gives a row the same output in any batch (dynamic per-tensor
  int8 moved a pair by up to ~2.5e-3 with its batch-mates; fp32 attention's reordering across padded
  lengths can still cross a rounding step: ~3e-3 on BERT-base, see docs/reliability.md); the output
  row is scaled back;
* the pooler and the NSP head stay fp32 (`KEEP_FP32`): they run on one token per pair, so they
  cost nothing, and their error lands on the logits undamped;
* activations in 8 bits where the CPU has VNNI (`cpu.has_vnni`); 7 bits (fbgemm's reduce_range) only on
  CPUs without it (AVX2), where u8×s8 pair sums saturate int16 — on VNNI 7 bits only cost accuracy.

The measurements behind each choice (per-group sensitivity, speed against fp32 and CTranslate2, the
outlier-feature variant) are in docs/speed.md, made with benchmarks/bench_int8.py; check a trained
checkpoint with `nspzero bench --model`.
"""
from __future__ import annotations

import copy
import fnmatch
import warnings
from typing import Optional, Sequence

import torch

from . import cpu

# Linear layers (module names, fnmatch patterns) left in fp32 by `quantize_int8`: see the module docstring.
KEEP_FP32: tuple[str, ...] = ("*pooler", "*pooler.*", "cls.*", "sop_classifier.*")  # every head in heads.HEADS


class Int8Linear(torch.nn.Module):
    """A Linear with per-channel int8 weights and per-token int8 activations (fbgemm dynamic kernel).
    `reduce_range` None follows the CPU: 7-bit activations only without VNNI."""

    def __init__(self, linear: torch.nn.Linear, per_token: bool = True, reduce_range: Optional[bool] = None) -> None:
        super().__init__()
        weight = linear.weight.detach().float()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        scales = (weight.abs().amax(dim=1) / 127.0).clamp_min(1e-12).double()
        with warnings.catch_warnings():  # quantized tensors are deprecated in favour of torchao (not a dependency)
            warnings.simplefilter("ignore")
            qweight = torch.quantize_per_channel(weight, scales, torch.zeros_like(scales, dtype=torch.long), 0,
                                                 torch.qint8)
            self._packed = torch.ops.quantized.linear_prepack(qweight, None)
        self.register_buffer("bias", None if linear.bias is None else linear.bias.detach().float().clone())
        self.per_token = per_token
        self.reduce_range = (not cpu.has_vnni()) if reduce_range is None else reduce_range

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        rows = x.reshape(-1, shape[-1]).float()
        if self.per_token:  # row max |x| from amax/amin (no |x| temporary; aminmax(dim) is 6x slower here)
            scale = torch.maximum(rows.amax(dim=1, keepdim=True), rows.amin(dim=1, keepdim=True).neg_())
            scale.clamp_min_(1e-6)
            n = rows.shape[0]
            # Two rows of +1 and -1 below the scaled ones pin the kernel's one range to [-1, 1], whatever
            # the batch holds: a row's int8 codes, and so its scores, never depend on its batch-mates.
            scaled = rows.new_empty(n + 2, rows.shape[1])
            torch.mul(rows, scale.reciprocal(), out=scaled[:n])
            scaled[n].fill_(1.0)
            scaled[n + 1].fill_(-1.0)
            out = torch.ops.quantized.linear_dynamic(scaled, self._packed, self.reduce_range)[:n]
            # one pass, in place: a fresh output would be one more large allocation (page faults) per Linear
            out = out.mul_(scale) if self.bias is None else torch.addcmul(self.bias, out, scale, out=out)
        else:
            out = torch.ops.quantized.linear_dynamic(rows, self._packed, self.reduce_range)
            if self.bias is not None:
                out.add_(self.bias)
        return out.reshape(*shape[:-1], self.out_features)

    def _save_to_state_dict(self, destination, prefix, keep_vars) -> None:
        """The int8 weight (with its per-channel scales) is in the state dict, unpacked on demand: the
        evaluation cache fingerprints a model by its state dict."""
        super()._save_to_state_dict(destination, prefix, keep_vars)
        destination[prefix + "weight"] = torch.ops.quantized.linear_unpack(self._packed)[0]

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, per_token={self.per_token}, "
                f"reduce_range={self.reduce_range}")


def _replace_linears(model: torch.nn.Module, make, keep: Sequence[str]) -> torch.nn.Module:
    for name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            full = f"{name}.{child_name}" if name else child_name
            if isinstance(child, torch.nn.Linear) and not any(fnmatch.fnmatchcase(full, p) for p in keep):
                setattr(module, child_name, make(child))
    return model


def quantize_int8(model: torch.nn.Module, keep_fp32: Sequence[str] = KEEP_FP32, per_token: bool = True,
                  inplace: bool = False, reduce_range: Optional[bool] = None) -> torch.nn.Module:
    """nspzero's int8: a copy of `model` (CPU, fp32) where every Linear but `keep_fp32` (module-name
    patterns) is an `Int8Linear`. `inplace=True` changes `model` itself: no copy of the fp32 weights,
    and each fp32 Linear is freed as its int8 twin replaces it (the scorer's way: lower peak memory)."""
    if not inplace:
        model = copy.deepcopy(model)
    return _replace_linears(model, lambda lin: Int8Linear(lin, per_token, reduce_range), keep_fp32).eval()


def dynamic_int8(model: torch.nn.Module) -> torch.nn.Module:
    """The previous int8: torch's dynamic quantisation of every Linear (per-tensor weights, per-batch
    activation range); kept for the side-by-side benchmark."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
