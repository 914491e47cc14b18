"""Which device a run trains on and in which precision.

`precision="auto"` means bf16 mixed precision (autocast; the weights stay
fp32) where the hardware runs bf16 natively: a CUDA GPU that supports it, or a
CPU with AVX-512 BF16 or AMX tiles, where oneDNN runs bf16 matrix products
about 1.5x faster than fp32 (see bench/pretrain_speed.py). Elsewhere bf16 is
emulated and slower, so auto falls back to fp32.
"""

from __future__ import annotations

import torch

from ..config import ConfigError


def resolve_device(device: str) -> str:
    """'auto' -> cuda:0 when a GPU is present, else cpu; a named device must exist."""
    if device == "auto":
        return "cuda:0" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError("device", f"{device} requested but no CUDA GPU is available")
        index = int(device.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise ConfigError("device", f"{device} does not exist ({torch.cuda.device_count()} GPU(s) present)")
        return f"cuda:{index}"
    return "cpu"


def native_bf16(device: str) -> bool:
    """Whether `device` (a resolved device) computes in bf16 natively."""
    if device.startswith("cuda"):
        return torch.cuda.is_bf16_supported()
    cpu = torch.cpu
    return any(getattr(cpu, probe, lambda: False)() for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))


def check_precision(precision: str, device: str) -> None:
    if precision == "fp16" and not device.startswith("cuda"):
        raise ConfigError("precision", "fp16 needs a CUDA GPU; use fp32 or bf16 on the CPU")
    if precision == "bf16" and device.startswith("cuda") and not torch.cuda.is_bf16_supported():
        raise ConfigError("precision", f"{device} does not support bf16; use fp16 or fp32")


def resolve_precision(precision: str, device: str) -> str:
    """fp32, bf16 or fp16: the precision a run with this setting trains in on `device`."""
    check_precision(precision, device)
    if precision == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    return precision
