"""``auto`` | ``cpu`` | ``cuda`` | ``cuda:N`` config values -> a torch device, for every job that
takes one (``generator.device``, ``train.device``, ``evaluate.device``)."""

from __future__ import annotations

import torch


def resolve_device(name: str) -> torch.device:
    """``auto`` picks the GPU this process was given (a Ray actor's or worker's), else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)
