"""Which kernels run an fp32 model's Linear layers on the CPU: torch's default or oneDNN, prepacked.

Why a choice: torch sends fp32 `Linear` to MKL on x86. On some CPUs MKL takes a path at about half
the speed of oneDNN's kernels, on others the two are equal (measurements in docs/speed.md). Which
one wins is measured on the machine, never guessed: the scorer times both on the same batches
(`NSPScorer`, backend "auto") and keeps the faster. Both are exact fp32.
"""
from __future__ import annotations

from typing import Iterator

import torch

BACKENDS = ("auto", "torch", "onednn", "onnxruntime")
# oneDNN picks its packed layout for about this many rows (tokens per batch); any row count works
PACK_ROWS = 1024


def onednn_available() -> bool:
    """Whether this torch build can run a Linear through oneDNN with a prepacked weight."""
    return bool(torch.backends.mkldnn.is_available()) and hasattr(torch.ops.mkldnn, "_linear_pointwise") \
        and hasattr(torch.ops.mkldnn, "_reorder_linear_weight")


def pack_weight(weight: torch.Tensor, rows: int = PACK_ROWS) -> torch.Tensor:
    """`weight` (out × in) in oneDNN's layout for multiplying about `rows` rows at a time."""
    return torch.ops.mkldnn._reorder_linear_weight(weight, rows)


def packed_linear(x: torch.Tensor, packed: torch.Tensor, bias: "torch.Tensor | None") -> torch.Tensor:
    """x @ weight.T + bias through oneDNN, with the weight as `pack_weight` left it."""
    return torch.ops.mkldnn._linear_pointwise(x, packed, bias, "none", [], "")


class OneDNNLinear(torch.nn.Linear):
    """A Linear that keeps its parameters (so its state_dict, which the evaluation cache fingerprints,
    is unchanged) and, while `active`, multiplies with oneDNN on a prepacked copy of the weight. The
    copy costs the Linear weights' size once more in memory (`unpack` frees it). The packed path runs
    only where it gives exactly what `F.linear` would: no autograd, an fp32 weight not changed since it
    was packed (its `_version`); otherwise the plain weight runs, so training, `.to(bfloat16)` and
    in-place weight edits never meet a stale or mistyped packed copy. Copies/pickles drop it."""

    packed: "torch.Tensor | None"
    _packed_version: int = -1

    @classmethod
    def from_linear(cls, linear: torch.nn.Linear) -> "OneDNNLinear":
        new = cls.__new__(cls)
        torch.nn.Module.__init__(new)
        new.in_features, new.out_features = linear.in_features, linear.out_features
        new.weight, new.bias = linear.weight, linear.bias  # the same Parameters: no copy
        new.packed, new.active = None, False
        return new

    def pack(self) -> None:
        self.packed = pack_weight(self.weight.detach())
        self._packed_version = self.weight._version
        self.active = True

    def unpack(self) -> None:
        self.packed, self.active = None, False

    def __getstate__(self) -> dict:
        """deepcopy/pickle: the opaque packed tensor cannot be copied or saved; the copy runs torch's
        kernels until `use_onednn` packs it again."""
        state = super().__getstate__().copy()
        state["packed"], state["active"] = None, False
        return state

    def _packed_usable(self, x: torch.Tensor) -> bool:
        weight = self.weight
        return (self.active and self.packed is not None and not torch.is_grad_enabled()
                and x.dtype == torch.float32 and x.device.type == "cpu" and weight.dtype == torch.float32
                and weight.device.type == "cpu" and weight._version == self._packed_version
                and (self.bias is None or self.bias.dtype == torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self._packed_usable(x):
            return torch.nn.functional.linear(x, self.weight, self.bias)
        return packed_linear(x, self.packed, self.bias)


def _fp32_cpu_linears(model: torch.nn.Module) -> Iterator[tuple[torch.nn.Module, str, torch.nn.Linear]]:
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, torch.nn.Linear) and child.weight.dtype == torch.float32 \
                    and child.weight.device.type == "cpu":
                yield module, name, child


def use_onednn(model: torch.nn.Module, on: bool = True) -> int:
    """Run `model`'s fp32 CPU Linear layers through oneDNN (`on`: packs the current weights) or through
    torch's default kernels (frees the packed copies). The first call swaps each `torch.nn.Linear` for a
    `OneDNNLinear` in place; returns how many Linear layers are now packed."""
    count = 0
    for parent, name, linear in _fp32_cpu_linears(model):
        if not isinstance(linear, OneDNNLinear):
            if not on or type(linear) is not torch.nn.Linear:
                continue
            linear = OneDNNLinear.from_linear(linear)
            setattr(parent, name, linear)
        if on:
            linear.pack()
            count += 1
        else:
            linear.unpack()
    return count


def set_active(model: torch.nn.Module, on: bool) -> None:
    """Switch packed layers between oneDNN and torch's kernels without repacking (for a timed trial)."""
    for module in model.modules():
        if isinstance(module, OneDNNLinear) and module.packed is not None:
            module.active = on
