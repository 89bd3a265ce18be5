"""Config schema of a sweep (``sfray sweep`` / ``jobs/sweep.py``): many Stage I runs, one table.

A sweep takes a base Stage I config (``train.config`` + ``train.overrides``), a search space over
any of its keys by dotted path (``space``) plus the special key ``strategy`` (the sampling
strategy each trial's training data is made with), and schedules the trials with ASHA on the
held-out ``metric``. Data: every strategy generates ``data.budget`` training samples from
``data.generate_config``; every trial is scored on one shared held-out set (i.i.d.,
``data.val_samples``), so metrics compare across strategies. docs/sweeps.md explains every key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from sfray.config.registries import SAMPLING_STRATEGIES
from sfray.errors import ConfigError

#: Search-space kinds (docs/sweeps.md): a list of values, or a range.
DIM_KINDS = ("choice", "grid", "uniform", "loguniform")
#: The search key that selects the training data's sampling strategy (not a train config key).
STRATEGY_KEY = "strategy"
#: Metrics a Stage I validation reports, with the direction that is better.
METRIC_MODES = {"val_nme": "min", "val_seg_mean_f1": "max", "val_depth_mae": "min"}


def _check(cond: bool, key: str, msg: str) -> None:
    if not cond:
        raise ConfigError(f"bad value for config key '{key}': {msg}")


@dataclass
class Dim:
    """One search dimension: ``choice``/``grid`` over ``values``, or ``uniform``/``loguniform`` in [low, high].

    A ``choice``/``grid`` value may be a mapping of dotted keys to values: the keys move together
    (e.g. both learning rates), and the dimension's own name is only its label.
    """

    kind: str = "choice"
    values: list[Any] = field(default_factory=list)
    low: float = 0.0
    high: float = 1.0

    def validate(self, key: str) -> None:
        _check(self.kind in DIM_KINDS, f"space.{key}.kind", f"'{self.kind}' is not {' | '.join(DIM_KINDS)}")
        if self.kind in ("choice", "grid"):
            _check(len(self.values) >= 1, f"space.{key}.values", f"{self.kind} needs at least one value")
        else:
            _check(self.low < self.high, f"space.{key}", f"low < high required, got [{self.low}, {self.high}]")
            _check(self.kind != "loguniform" or self.low > 0, f"space.{key}.low", "loguniform needs low > 0")


@dataclass
class SweepTrainSection:
    """The base Stage I run every trial starts from (each trial runs it with runner=local)."""

    config: str = "configs/train/quickstart.yaml"
    overrides: list[str] = field(default_factory=list)


@dataclass
class SweepDataSection:
    """What each strategy's training data is, and the shared held-out set."""

    generate_config: str = "configs/generate/quickstart.yaml"
    overrides: list[str] = field(default_factory=list)  # dotlist overrides of the generation config
    budget: int = 256  # training samples per strategy (equal for every strategy: a fair comparison)
    val_samples: int = 64  # shared held-out samples (gaussian, i.i.d., their own seed)
    val_seed: int = 1_000_003  # dataset seed of the held-out set (never a training seed)
    cache_dir: Optional[str] = None  # datasets cached by content hash (default: output_dir/data)

    def validate(self) -> None:
        _check(self.budget >= 2, "data.budget", "must be >= 2")
        _check(self.val_samples >= 1, "data.val_samples", "must be >= 1")


@dataclass
class GuidedSection:
    """Task-guided strategies (``loss_resample``, ``loss_propose``): docs/sweeps.md, task-guided sampling."""

    pool_factor: float = 2.0  # candidate pool = pool_factor x budget i.i.d. samples
    pilot_epochs: int = 3  # epochs of the pilot model that scores the pool
    temperature: float = 1.0  # softmax(loss / temperature) over the pool's normalised losses
    rounds: int = 2  # the budget is drawn in this many rounds, without replacement within a round
    step: float = 0.25  # loss_propose: perturbation scale (std units; unit-variate units x this)

    def validate(self) -> None:
        _check(self.pool_factor >= 1.0, "guided.pool_factor", "must be >= 1")
        _check(self.pilot_epochs >= 1, "guided.pilot_epochs", "must be >= 1")
        _check(self.temperature > 0, "guided.temperature", "must be > 0")
        _check(self.rounds >= 1, "guided.rounds", "must be >= 1")
        _check(self.step > 0, "guided.step", "must be > 0")


@dataclass
class AshaSection:
    """Asynchronous successive halving; times are validation rounds of a trial."""

    enabled: bool = True
    max_t: int = 4  # validation rounds of a full trial (train.epochs = max_t x train.validate_every)
    grace_period: int = 1
    reduction_factor: int = 2

    def validate(self) -> None:
        _check(self.max_t >= 1, "asha.max_t", "must be >= 1")
        _check(1 <= self.grace_period <= self.max_t, "asha.grace_period", "must be in 1..asha.max_t")
        _check(self.reduction_factor >= 2, "asha.reduction_factor", "must be >= 2")


@dataclass
class SweepRaySection:
    address: Optional[str] = None  # None: a private local Ray | auto | HOST:PORT
    num_cpus: Optional[int] = None  # logical CPUs of a local Ray (default: this machine's)
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    max_concurrent_trials: int = 0  # 0: as many as the cluster's CPUs / GPUs allow
    max_failures: int = 1  # restarts of a crashed trial (from its last checkpoint)

    def validate(self) -> None:
        _check(self.cpus_per_trial > 0, "ray.cpus_per_trial", "must be > 0")
        _check(self.gpus_per_trial >= 0, "ray.gpus_per_trial", "must be >= 0")
        _check(self.max_concurrent_trials >= 0, "ray.max_concurrent_trials", "0 (from resources) or >= 1")
        _check(self.max_failures >= -1, "ray.max_failures", "-1 (unlimited) or >= 0")


@dataclass
class SweepJobConfig:
    """``sfray sweep``: Ray Tune over Stage I runs."""

    output_dir: str = "outputs/sweep"
    name: str = "sweep"
    metric: str = "val_nme"
    mode: str = ""  # min | max ('' = the metric's natural direction)
    num_samples: int = 1  # repeats of the space (each grid point is repeated num_samples times)
    seeds: list[int] = field(default_factory=lambda: [0])  # data and training seeds (a grid dimension)
    train: SweepTrainSection = field(default_factory=SweepTrainSection)
    data: SweepDataSection = field(default_factory=SweepDataSection)
    space: dict[str, Dim] = field(default_factory=dict)
    guided: GuidedSection = field(default_factory=GuidedSection)
    asha: AshaSection = field(default_factory=AshaSection)
    ray: SweepRaySection = field(default_factory=SweepRaySection)

    def resolved_mode(self) -> str:
        return self.mode or METRIC_MODES.get(self.metric, "min")

    def validate(self) -> None:
        _check(bool(self.output_dir.strip()), "output_dir", "must not be empty")
        _check(self.metric in METRIC_MODES, "metric", f"'{self.metric}' is not {' | '.join(METRIC_MODES)}")
        _check(self.mode in ("", "min", "max"), "mode", "min | max (or empty: the metric's direction)")
        _check(self.num_samples >= 1, "num_samples", "must be >= 1")
        _check(len(self.seeds) >= 1 and len(set(self.seeds)) == len(self.seeds), "seeds", "distinct seeds, >= 1")
        _check("seed" not in self.space, "space.seed", "use the top-level `seeds` list")
        for key, dim in self.space.items():
            dim.validate(key)
        if STRATEGY_KEY in self.space:
            dim = self.space[STRATEGY_KEY]
            _check(dim.kind in ("choice", "grid"), f"space.{STRATEGY_KEY}.kind", "choice | grid (a list of names)")
            for name in dim.values:
                SAMPLING_STRATEGIES.check(str(name))
        for section in (self.data, self.guided, self.asha, self.ray):
            section.validate()
