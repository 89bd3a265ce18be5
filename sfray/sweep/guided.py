"""Guide files of the task-guided strategies: pool -> pilot model -> per-sample losses -> chosen rows.

For (strategy, seed): an i.i.d. candidate pool of ``guided.pool_factor x data.budget`` samples;
a pilot Stage I model (the sweep's base config, ``guided.pilot_epochs`` epochs on the pool)
scores every pool sample with its validation loss; :func:`sfray.sweep.guidance.resample` draws
the budget from the pool by softmax over those losses, in ``guided.rounds`` rounds.
``loss_resample`` keeps the drawn rows' parameters; ``loss_propose`` replaces each by a
proposal near it (:func:`sfray.sweep.guidance.propose`). The rows go into a guide file that the
strategies of ``sfray.sampling.guided`` read, so the budget's dataset is then generated like any
other. The pool, pilot and guide are cached by content (docs/sweeps.md, task-guided sampling).
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import torch

from sfray.config.loader import load_config, to_yaml
from sfray.config.sweep import SweepJobConfig
from sfray.config.train import TrainJobConfig
from sfray.conventions import Field
from sfray.generation.executor import InProcessExecutor
from sfray.io.atomic import atomic_write_text
from sfray.sampling.draw import Dims
from sfray.sampling.guided import write_guide
from sfray.sampling.strategies import draw_samples
from sfray.sweep.cache import cached, content_key
from sfray.sweep.data import (
    IID_STRATEGY,
    cache_root,
    generate_cached,
    generation_config,
    log,
    validation_set,
)
from sfray.sweep.guidance import Bounds, LossTracker, propose, resample
from sfray.train.augment import TRAIN_FIELDS
from sfray.train.data import open_dataset
from sfray.train.stage1 import load_stage1_model, train_stage1
from sfray.train.stage1_task import Stage1Task

GUIDE_FILE = "guide.npz"
SCORES_FILE = "scores.json"


def _digest(*parts: object) -> str:
    return hashlib.sha256(json.dumps([str(p) for p in parts]).encode()).hexdigest()


def pilot_config(sweep: SweepJobConfig, pool: Path, val: Path, seed: int, output_dir: Path) -> TrainJobConfig:
    extra = [f"output_dir={output_dir}", "runner=local", f"seed={seed}", f"data.dataset_dir={pool}",
             f"data.val_dataset_dir={val}", f"train.epochs={sweep.guided.pilot_epochs}",
             f"train.validate_every={sweep.guided.pilot_epochs}", "train.figure_samples=0",
             "train.predictions=false", "data.num_workers=0", "train.resume=auto",
             f"train.threads={max(1, int(sweep.ray.cpus_per_trial))}"]
    return load_config(TrainJobConfig, sweep.train.config, [*sweep.train.overrides, *extra])


@torch.no_grad()
def per_sample_losses(model_dir: Path, cfg: TrainJobConfig, dataset_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """(sample ids, validation loss of each) of every sample in ``dataset_dir`` under the model."""
    model, _ = load_stage1_model(model_dir)
    task = Stage1Task(cfg)
    ds = open_dataset(dataset_dir, TRAIN_FIELDS)
    ids, losses = [], []
    for raw in torch.utils.data.DataLoader(ds, batch_size=1, shuffle=False):
        batch = task.prepare(raw, train=False, device=torch.device("cpu"), generator=None)
        terms = task.val_loss(model(batch[Field.IMAGE]), batch, depth_scale=model.depth_scale)
        ids.append(int(raw[Field.SAMPLE_ID][0]))
        losses.append(float(terms["loss"]))
    return np.asarray(ids, dtype=np.int64), np.asarray(losses, dtype=np.float64)


def choose_rows(strategy: str, sweep: SweepJobConfig, seed: int, pool_ids: np.ndarray, losses: np.ndarray,
                pool_draw_fn, bounds: Bounds):
    """The budget's rows (a Draw) for ``strategy`` from the scored pool; deterministic in (seed, strategy)."""
    g = sweep.guided
    rng = np.random.default_rng([seed, int(hashlib.sha256(strategy.encode()).hexdigest()[:8], 16)])
    tracker = LossTracker(len(pool_ids))
    tracker.update(np.arange(len(pool_ids)), losses)
    picks = np.concatenate(resample(tracker.mean(), sweep.data.budget, g.temperature, g.rounds, rng))
    parents = pool_draw_fn(pool_ids[picks])
    rows = parents if strategy == "loss_resample" else propose(parents, bounds, g.step, rng)
    return rows, picks


def build_guide(sweep: SweepJobConfig, strategy: str, seed: int) -> Path:
    """The guide file of ``strategy`` (``loss_resample`` | ``loss_propose``) for ``seed`` (cached)."""
    root = cache_root(sweep)
    val = validation_set(sweep)
    pool_n = int(math.ceil(sweep.guided.pool_factor * sweep.data.budget))
    pool_cfg = generation_config(sweep, strategy=IID_STRATEGY, seed=seed, num_samples=pool_n)
    pool = generate_cached(sweep, pool_cfg, f"pool-s{seed}")
    base = pilot_config(sweep, pool, val, seed, root / "unused")
    base.output_dir = ""
    pilot_key = _digest(content_key(pool_cfg), to_yaml(base), val.name)

    def train_pilot(path: Path) -> None:
        train_stage1(pilot_config(sweep, pool, val, seed, path), progress=False)
        ids, losses = per_sample_losses(path, pilot_config(sweep, pool, val, seed, path), pool)
        atomic_write_text(path / SCORES_FILE, json.dumps({"sample_id": ids.tolist(), "loss": losses.tolist()}))

    pilot = cached(root, f"pilot-s{seed}", pilot_key, train_pilot, log=log)
    g = sweep.guided
    guide_key = _digest(pilot_key, strategy, sweep.data.budget, g.temperature, g.rounds, g.step)

    def write(path: Path) -> None:
        scores = json.loads((pilot / SCORES_FILE).read_text())
        ids, losses = np.asarray(scores["sample_id"], dtype=np.int64), np.asarray(scores["loss"])
        stack = InProcessExecutor().producer(pool_cfg)
        dims = Dims(stack.head.n_shape, stack.head.n_expression, stack.generator.latent_dim)
        bounds = Bounds.for_scales(pool_cfg.sampling.shape_scale, pool_cfg.sampling.expression_scale)

        def pool_draw(sample_ids: np.ndarray):
            return draw_samples(sample_ids, pool_cfg.seed, pool_cfg.sampling, pool_cfg.camera, dims)

        rows, picks = choose_rows(strategy, sweep, seed, ids, losses, pool_draw, bounds)
        write_guide(path / GUIDE_FILE, rows)
        atomic_write_text(path / "picks.json", json.dumps({"pool_sample_id": ids[picks].tolist(),
                                                            "pool_loss": losses[picks].tolist()}))

    return cached(root, f"guide-{strategy}-s{seed}", guide_key, write, log=log) / GUIDE_FILE
