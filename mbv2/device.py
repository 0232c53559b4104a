"""Where inference runs: the GPU when PyTorch can see one, otherwise the CPU."""

from __future__ import annotations

import torch


def inference_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
