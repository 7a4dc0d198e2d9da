"""Device and dtype are chosen here and nowhere else."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Placement:
    device: torch.device
    dtype: torch.dtype  # weights and activations for inference; trainable LoRA weights stay fp32

    @property
    def is_cuda(self) -> bool:
        return self.device.type == "cuda"


def placement(mixed_precision: str = "auto") -> Placement:
    """CUDA with bf16 (or fp16 where bf16 is missing) when there is a GPU; CPU float32 otherwise."""
    if torch.cuda.is_available():
        if mixed_precision == "no":
            dtype = torch.float32
        elif mixed_precision == "fp16":
            dtype = torch.float16
        elif mixed_precision == "bf16" or torch.cuda.is_bf16_supported():
            dtype = torch.bfloat16
        else:
            dtype = torch.float16
        return Placement(torch.device("cuda"), dtype)
    if mixed_precision not in ("auto", "no"):
        raise ValueError(
            f"mixed_precision={mixed_precision!r} needs a CUDA GPU; this machine has none."
        )
    return Placement(torch.device("cpu"), torch.float32)
