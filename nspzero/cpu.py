"""What the CPU can do, asked once in one place: kernels and defaults follow it (int8's activation
width, whether bf16 is worth it), and every speed figure names it."""
from __future__ import annotations

import platform
import resource

import torch


def name() -> str:
    """The CPU's model name (Linux /proc/cpuinfo): speed figures mean little without it."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def capability() -> str:
    """The vector ISA torch dispatches to (AVX2, AVX512, ...), "unknown" on a torch that cannot say."""
    return getattr(torch.backends.cpu, "get_cpu_capability", lambda: "unknown")()


def _probe(probe) -> bool:
    try:
        return bool(probe())
    except (AttributeError, RuntimeError):  # a torch build without the probe: assume the feature is absent
        return False


def has_vnni() -> bool:
    """VNNI (AVX-512 VNNI / AVX-VNNI): int8 dot products accumulate in int32, so 8-bit activations
    cannot saturate and fbgemm's `reduce_range` (7 bits) is not needed."""
    return _probe(lambda: torch.cpu._is_vnni_supported())


def has_native_bf16() -> bool:
    """bfloat16 multiplied natively (AVX-512 BF16 / AMX); without it torch emulates bf16 matmuls, far
    slower than float32."""
    return _probe(lambda: torch.ops.mkldnn._is_mkldnn_bf16_supported())


def has_amx() -> bool:
    """AMX tiles, which make bf16 matmuls faster than fp32. AVX-512 BF16 alone runs them slower than
    fp32 on the Xeon measured in docs/speed.md, so bf16 is no speed-up there."""
    return _probe(lambda: torch.cpu._is_amx_tile_supported())


def peak_rss_bytes() -> int:
    """This process's peak resident memory so far (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
