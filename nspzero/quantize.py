"""What dtype="int8" means: an fp32 NSP model → the same model with int8 Linear layers, for CPUs.

Why not plain `torch.ao.quantization.quantize_dynamic` (kept as dtype "int8-dynamic"): it quantises
each weight matrix with one scale and each batch's activations with one range, and on CPUs without
VNNI (AVX2) fbgemm keeps activations to 7 bits so that its u8×s8 pair sums cannot saturate int16.
On random BERT-base (TNEWS × 15 labels) that gives max |ΔP| 1.2e-2. `Int8Linear` keeps fbgemm's
kernel (~2× an fp32 matmul on AVX2) and lowers the error where it is cheap:

* per-channel weights: one scale per output row instead of one per matrix;
* per-token activation ranges: each row (token) is divided by its own max |x| before the kernel
  quantises the batch, so the kernel's one range is every token's own, and the output row is
  scaled back (~5% of a forward pass);
* the pooler and the NSP head stay fp32 (`KEEP_FP32`): they run on one token per pair, so they
  cost nothing, and quantised alone they gave max |ΔP| 4.0e-3, as much as any encoder layer group.

Measured with benchmarks/bench_int8.py (random BERT-base, 2-core AVX2 EPYC): max |ΔP| 7.9e-3 (mean
2.0e-3; 6.9e-3 / 1.9e-3 with an earlier x / scale instead of x * (1 / scale): rounding) against
1.2e-2 (4.1e-3), at 0.86-0.92x the previous int8's speed (1.36-1.47x fp32 against 1.51-1.60x). Quantising one group at a
time (96 pairs), the error is spread evenly over the 12 layers (max 1.8-2.8e-3 each) and comes
mostly from the two FFN matmuls (5.1e-3 and 4.3e-3 alone; value 1.1e-3, attention output 1.8e-3,
query/key 2-3e-4), which are two thirds of the work: keeping every FFN-in fp32 only reached 6.8e-3
at 1.28x fp32, so no encoder layer is kept fp32. Activations stay at 7 bits: with 8 bits and 8-bit
weights fbgemm saturates on AVX2 (one BERT-base-shaped layer: max error ×6), and 8-bit activations
with 7-bit weights are no better (the sum of the bits is what counts). Random weights have no
outlier features; a trained checkpoint can differ, so check it with `nspzero bench --model`.
"""
from __future__ import annotations

import copy
import fnmatch
import warnings
from typing import Sequence

import torch

# Linear layers (module names, fnmatch patterns) left in fp32 by `quantize_int8`: see the module docstring.
KEEP_FP32: tuple[str, ...] = ("*pooler", "*pooler.*", "cls.*", "sop_classifier.*")  # every head in heads.HEADS


class Int8Linear(torch.nn.Module):
    """A Linear with per-channel int8 weights and per-token int8 activations (fbgemm dynamic kernel)."""

    def __init__(self, linear: torch.nn.Linear, per_token: bool = True) -> None:
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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        rows = x.reshape(-1, shape[-1]).float()
        if self.per_token:  # row max |x| from amax/amin (no |x| temporary; aminmax(dim) is 6x slower here)
            scale = torch.maximum(rows.amax(dim=1, keepdim=True), rows.amin(dim=1, keepdim=True).neg_())
            scale.clamp_min_(1e-6)
            out = torch.ops.quantized.linear_dynamic(rows * scale.reciprocal(), self._packed, True)
            out = out.mul_(scale) if self.bias is None else torch.addcmul(self.bias, out, scale)  # one pass
        else:
            out = torch.ops.quantized.linear_dynamic(rows, self._packed, True)
            if self.bias is not None:
                out.add_(self.bias)
        return out.reshape(*shape[:-1], self.out_features)

    def _save_to_state_dict(self, destination, prefix, keep_vars) -> None:
        """The int8 weight (with its per-channel scales) is in the state dict, unpacked on demand: the
        evaluation cache fingerprints a model by its state dict."""
        super()._save_to_state_dict(destination, prefix, keep_vars)
        destination[prefix + "weight"] = torch.ops.quantized.linear_unpack(self._packed)[0]

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, per_token={self.per_token}"


def _replace_linears(model: torch.nn.Module, make, keep: Sequence[str]) -> torch.nn.Module:
    for name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            full = f"{name}.{child_name}" if name else child_name
            if isinstance(child, torch.nn.Linear) and not any(fnmatch.fnmatchcase(full, p) for p in keep):
                setattr(module, child_name, make(child))
    return model


def quantize_int8(model: torch.nn.Module, keep_fp32: Sequence[str] = KEEP_FP32, per_token: bool = True,
                  inplace: bool = False) -> torch.nn.Module:
    """nspzero's int8: a copy of `model` (CPU, fp32) where every Linear but `keep_fp32` (module-name
    patterns) is an `Int8Linear`. `inplace=True` changes `model` itself (no copy of the weights)."""
    if not inplace:
        model = copy.deepcopy(model)
    return _replace_linears(model, lambda lin: Int8Linear(lin, per_token), keep_fp32).eval()


def dynamic_int8(model: torch.nn.Module) -> torch.nn.Module:
    """The previous int8: torch's dynamic quantisation of every Linear (per-tensor weights, per-batch
    activation range); kept for the side-by-side benchmark."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
