"""Loss bookkeeping for task-guided sampling: which samples of a pool to train on, and new ones near them.

:class:`LossTracker` keeps a running per-sample loss over a candidate pool (several scorings of
the same sample average). :func:`selection_probabilities` turns the losses into a softmax over
``normalised loss / temperature``: losses are divided by their standard deviation first, so the
temperature means the same thing whatever the loss scale (the authors' version applied a fixed
0.2 to raw accumulated losses, which makes the scale of the loss decide the sharpness).
:func:`resample` draws a budget in rounds, without replacement within a round (a sample can come
back in a later round: that is how a hard sample gains weight). :func:`propose` perturbs the
drawn samples in parameter space and clips every value into the ranges the head model and camera
preset accept (docs/sweeps.md, task-guided sampling).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from sfray.sampling.draw import Draw

#: Shape, expression and latent values stay within this many standard deviations (times the
#: config's scale): the region the linear head bases and the generator's latent prior cover.
PARAM_BOUND = 3.0
#: Unit variates (pose and camera quantiles) stay in [0, UNIT_MAX]: inside the configured ranges.
UNIT_MAX = 1.0 - 1e-9


class LossTracker:
    """Mean loss per pool position, accumulated over scorings."""

    def __init__(self, size: int):
        self.sum = np.zeros(size, dtype=np.float64)
        self.count = np.zeros(size, dtype=np.int64)

    def update(self, positions: np.ndarray, losses: np.ndarray) -> None:
        positions = np.asarray(positions, dtype=np.int64)
        losses = np.asarray(losses, dtype=np.float64)
        if positions.shape != losses.shape:
            raise ValueError(f"{positions.shape} positions for {losses.shape} losses")
        if not np.all(np.isfinite(losses)):
            raise ValueError("per-sample losses must be finite")
        np.add.at(self.sum, positions, losses)
        np.add.at(self.count, positions, 1)

    def mean(self) -> np.ndarray:
        """Mean loss per position; positions never scored get the mean of the scored ones."""
        scored = self.count > 0
        if not scored.any():
            return np.zeros_like(self.sum)
        out = np.full_like(self.sum, self.sum[scored].sum() / self.count[scored].sum())
        out[scored] = self.sum[scored] / self.count[scored]
        return out


def selection_probabilities(losses: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(loss / (std(loss) x temperature)): higher loss, higher probability; sums to 1."""
    if temperature <= 0:
        raise ValueError("temperature must be > 0")
    x = np.asarray(losses, dtype=np.float64)
    spread = float(x.std())
    z = (x - x.max()) / ((spread if spread > 0 else 1.0) * temperature)
    p = np.exp(z)
    return p / p.sum()


def round_sizes(budget: int, rounds: int) -> list[int]:
    """Split ``budget`` into ``rounds`` near-equal parts that sum to it exactly."""
    base, extra = divmod(int(budget), int(rounds))
    return [base + (1 if r < extra else 0) for r in range(rounds)]


def resample(losses: np.ndarray, budget: int, temperature: float, rounds: int,
             rng: np.random.Generator) -> list[np.ndarray]:
    """Pool positions for each round: ``budget`` in all, no position twice within one round."""
    p = selection_probabilities(losses, temperature)
    sizes = round_sizes(budget, rounds)
    if max(sizes) > len(p):
        raise ValueError(f"a round of {max(sizes)} samples without replacement needs a pool of at least that many, "
                         f"got {len(p)}")
    return [rng.choice(len(p), size=n, replace=False, p=p) for n in sizes]


@dataclass(frozen=True)
class Bounds:
    """Per-field limits of a draw (the head model's and camera preset's accepted ranges)."""

    shape: float
    expression: float
    latent: float

    @staticmethod
    def for_scales(shape_scale: float, expression_scale: float) -> Bounds:
        return Bounds(PARAM_BOUND * shape_scale, PARAM_BOUND * expression_scale, PARAM_BOUND)

    def clip(self, draw: Draw) -> Draw:
        return Draw(shape=np.clip(draw.shape, -self.shape, self.shape),
                    expression=np.clip(draw.expression, -self.expression, self.expression),
                    latent=np.clip(draw.latent, -self.latent, self.latent),
                    pose_u=np.clip(draw.pose_u, 0.0, UNIT_MAX), camera_u=np.clip(draw.camera_u, 0.0, UNIT_MAX))

    def contains(self, draw: Draw) -> bool:
        return bool(np.all(np.abs(draw.shape) <= self.shape) and np.all(np.abs(draw.expression) <= self.expression)
                    and np.all(np.abs(draw.latent) <= self.latent)
                    and all(np.all((u >= 0) & (u <= UNIT_MAX)) for u in (draw.pose_u, draw.camera_u)))


def propose(parents: Draw, bounds: Bounds, step: float, rng: np.random.Generator) -> Draw:
    """One new row near each parent: Gaussian steps of ``step`` x each field's scale, then clipped.

    Scales: ``bounds / PARAM_BOUND`` (one standard deviation) for shape, expression and latent;
    1 for the unit variates of pose and camera (their whole range), so ``step`` is comparable.
    """
    scale = {"shape": bounds.shape / PARAM_BOUND, "expression": bounds.expression / PARAM_BOUND,
             "latent": bounds.latent / PARAM_BOUND, "pose_u": 1.0, "camera_u": 1.0}
    moved = {f.name: getattr(parents, f.name) + rng.normal(size=getattr(parents, f.name).shape)
             * step * scale[f.name] for f in fields(Draw)}
    return bounds.clip(Draw(**moved))
