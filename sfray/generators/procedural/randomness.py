"""Per-sample random streams of the procedural renderer.

Every random choice of a sample (skin, hair, light, background) comes from a ``torch.Generator``
seeded from that sample's ``SampleSpecs.seed`` alone, one independent stream per purpose, so a
sample renders bit for bit the same alone or in any batch, and changing, say, the background
options leaves its skin tone untouched. The global RNG is never used.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np
import torch


class Stream(IntEnum):
    """Independent random streams of one rendered sample."""

    APPEARANCE = 1  # skin, lips, hair, iris colours and the hair-cap decision
    TEXTURE_NOISE = 2  # blotches and grain of the UV texture
    LIGHT = 3
    BACKGROUND = 4
    HAIR = 5  # hair-cap shell thickness


def stream_generator(seed: int, stream: Stream) -> torch.Generator:
    """A CPU ``torch.Generator`` for (sample seed, stream), independent of every other pair."""
    state = np.random.SeedSequence([int(seed) & (2**63 - 1), int(stream)]).generate_state(1, np.uint64)[0]
    return torch.Generator(device="cpu").manual_seed(int(state >> np.uint64(1)))


def uniform(gen: torch.Generator, low: float = 0.0, high: float = 1.0, size: tuple[int, ...] = ()) -> torch.Tensor:
    """Uniform float32 draws in [low, high) from ``gen`` (a 0-d tensor when size is ())."""
    return low + (high - low) * torch.rand(size, generator=gen, dtype=torch.float32)


def choice(gen: torch.Generator, n: int) -> int:
    """A uniform index in 0..n-1."""
    return int(torch.randint(0, n, (1,), generator=gen).item())
