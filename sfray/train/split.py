"""The held-out synthetic split: a pure function of the sample id (docs/training.md, split).

A sample is held out when ``splitmix64(id XOR salt) / 2**64 < fraction``. The rule depends on
nothing but the id, the salt and the fraction, so it is the same on every worker, in every
resumed run and for a dataset that grows later (ids already held out stay held out); no file
records it. splitmix64 mixes consecutive ids into unrelated values, so any id range is held out
in the expected proportion.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def splitmix64(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser of uint64 values (vectorised, wraps modulo 2**64)."""
    z = np.asarray(x, dtype=np.uint64) + _GOLDEN
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


@dataclass(frozen=True)
class HeldOutSplit:
    fraction: float
    salt: int = 0

    def is_held_out(self, sample_ids) -> np.ndarray:
        """(N,) bool for (N,) integer ids."""
        ids = np.asarray(sample_ids, dtype=np.int64).astype(np.uint64)
        u = splitmix64(ids ^ np.uint64(self.salt & 0xFFFFFFFFFFFFFFFF)) >> np.uint64(11)
        return u.astype(np.float64) / float(1 << 53) < self.fraction

    def describe(self) -> dict:
        return {"rule": "splitmix64(sample_id ^ salt) / 2**64 < fraction", "fraction": self.fraction,
                "salt": self.salt}
