"""Where inference runs: the GPU when PyTorch can see one, otherwise the CPU; and how many CPU cores it may use."""

from __future__ import annotations

import os

import torch


def inference_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def available_cores() -> int:
    """The logical cores this process may run on (a container's or taskset's limit, where there is one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1
