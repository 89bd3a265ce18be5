"""AdamW over named parameter groups, and the learning-rate schedule: warm-up, cosine, floor.

Each group ``g`` with base rate ``lr_g`` follows ``floor + (lr_g - floor) * c(t)`` where ``c``
falls from 1 to 0 along a half cosine over the run (``optim.schedule=cosine``) or stays 1
(``constant``); ``floor`` is ``optim.min_lr`` for every group (so a group whose base rate is
already at the floor stays flat, as the authors' encoder does). A linear warm-up scales the first
``optim.warmup_steps`` steps. With ``optim.schedule_unit=epoch`` the rate changes once per epoch.
The schedule is a pure function of the step, so a resumed run needs no scheduler state.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from sfray.config.train import OptimSection


def build_optimizer(groups: Sequence[dict], cfg: OptimSection) -> torch.optim.AdamW:
    """AdamW over ``groups`` (dicts with ``params``, ``lr`` and ``name``); empty groups dropped."""
    kept = [dict(g, initial_lr=g["lr"]) for g in groups if len(g["params"])]
    if not kept:
        raise ValueError("no trainable parameters")
    return torch.optim.AdamW(kept, lr=kept[0]["lr"], betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)


class LearningRate:
    """Sets every group's ``lr`` for optimizer step ``t`` (0-based) of ``total`` steps."""

    def __init__(self, cfg: OptimSection, total_steps: int, steps_per_epoch: int):
        self.cfg = cfg
        self.total = max(int(total_steps), 1)
        self.per_epoch = max(int(steps_per_epoch), 1)

    def factor(self, t: int) -> float:
        """c(t) in [0, 1] (before the floor); warm-up included."""
        cfg = self.cfg
        if cfg.schedule_unit == "epoch":
            t = (t // self.per_epoch) * self.per_epoch
        c = 1.0
        if cfg.schedule == "cosine":
            c = 0.5 * (1.0 + math.cos(math.pi * min(t, self.total) / self.total))
        return c

    def rate(self, base: float, t: int) -> float:
        floor = self.cfg.min_lr
        lr = floor + (base - floor) * self.factor(t)
        if self.cfg.warmup_steps > 0 and t < self.cfg.warmup_steps:
            lr *= (t + 1) / self.cfg.warmup_steps
        return lr

    def apply(self, optimizer: torch.optim.Optimizer, t: int) -> None:
        for group in optimizer.param_groups:
            group["lr"] = self.rate(group["initial_lr"], t)
