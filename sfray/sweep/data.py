"""The datasets of a sweep: one shared held-out set, one training set per (strategy, seed).

Every training set has exactly ``data.budget`` samples, made from ``data.generate_config`` with
the trial's strategy and seed; the held-out set is i.i.d. (``gaussian``) with its own seed, the
same for every trial, so a metric compares strategies on the same faces. All are cached by
content hash (``sfray.sweep.cache``): a second trial with the same strategy and seed reuses the
first one's data. Task-guided strategies first build their guide file (``sfray.sweep.guided``).
"""

from __future__ import annotations

import sys
from pathlib import Path

from sfray.config.loader import load_config
from sfray.config.registries import GUIDED_STRATEGIES
from sfray.config.schema import GenerateJobConfig
from sfray.config.sweep import SweepJobConfig
from sfray.generation.executor import InProcessExecutor
from sfray.generation.run import run_generation
from sfray.sweep.cache import cached, content_key

#: The strategy of the shared held-out set and of the task-guided strategies' candidate pools.
IID_STRATEGY = "gaussian"


def log(msg: str) -> None:
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()


def cache_root(sweep: SweepJobConfig) -> Path:
    return Path(sweep.data.cache_dir or Path(sweep.output_dir) / "data").resolve()


def generation_config(sweep: SweepJobConfig, *, strategy: str, seed: int, num_samples: int,
                      guide: str | None = None) -> GenerateJobConfig:
    """The sweep's generation config for one dataset (output_dir is set by the cache)."""
    extra = [f"sampling.strategy={strategy}", f"seed={seed}", f"generate.num_samples={num_samples}",
             "generate.preview_samples=0"]
    if guide:
        extra.append(f"sampling.guide={guide}")
    return load_config(GenerateJobConfig, sweep.data.generate_config, [*sweep.data.overrides, *extra])


def generate_cached(sweep: SweepJobConfig, cfg: GenerateJobConfig, label: str) -> Path:
    """The dataset ``cfg`` describes, from the cache or generated in this process."""
    def build(path: Path) -> None:
        cfg.output_dir = str(path)
        run_generation(cfg, InProcessExecutor(), progress=False)
    return cached(cache_root(sweep), label, content_key(cfg), build, log=log)


def validation_set(sweep: SweepJobConfig) -> Path:
    cfg = generation_config(sweep, strategy=IID_STRATEGY, seed=sweep.data.val_seed,
                            num_samples=sweep.data.val_samples)
    return generate_cached(sweep, cfg, "val")


def training_set(sweep: SweepJobConfig, strategy: str, seed: int) -> Path:
    """``data.budget`` training samples made by ``strategy`` with dataset seed ``seed``."""
    guide = None
    if strategy in GUIDED_STRATEGIES:
        from sfray.sweep.guided import build_guide

        guide = str(build_guide(sweep, strategy, seed))
    cfg = generation_config(sweep, strategy=strategy, seed=seed, num_samples=sweep.data.budget, guide=guide)
    return generate_cached(sweep, cfg, f"{strategy}-s{seed}")
