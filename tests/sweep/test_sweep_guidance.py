"""Loss bookkeeping, resampling, proposals, guide files, the dataset cache and the results table (no Ray)."""

from __future__ import annotations

import csv
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from sfray.config import load_config
from sfray.config.schema import GenerateJobConfig
from sfray.config.sweep import SweepJobConfig
from sfray.config.train import TrainJobConfig
from sfray.errors import ConfigError
from sfray.sampling.draw import Dims, Draw
from sfray.sampling.guided import write_guide
from sfray.sampling.pose import pose_from_unit
from sfray.sampling.specs import make_specs
from sfray.sweep.cache import cached, content_key
from sfray.sweep.guidance import (
    PARAM_BOUND,
    Bounds,
    LossTracker,
    propose,
    resample,
    round_sizes,
    selection_probabilities,
)
from sfray.sweep.guided import choose_rows
from sfray.sweep.results import TrialRecord, write_results
from sfray.sweep.trial import overrides_of, preflight

ROOT = Path(__file__).resolve().parents[2]
GEN = ROOT / "configs" / "generate" / "quickstart.yaml"
SWEEP = ROOT / "configs" / "sweep" / "quickstart.yaml"
DIMS = Dims(n_shape=10, n_expression=6, latent_dim=4)


def _gen(*extra: str) -> GenerateJobConfig:
    return load_config(GenerateJobConfig, GEN, list(extra))


def _pool_draw(n: int, seed: int = 0) -> tuple[np.ndarray, callable]:
    cfg = _gen(f"seed={seed}")
    from sfray.sampling.strategies import draw_samples

    ids = np.arange(n, dtype=np.int64)
    return ids, lambda sample_ids: draw_samples(sample_ids, cfg.seed, cfg.sampling, cfg.camera, DIMS)


# ---- probabilities and resampling ------------------------------------------------------------
def test_highest_losses_get_highest_probabilities():
    losses = np.array([0.3, 5.0, 1.0, 0.1, 2.5])
    p = selection_probabilities(losses, temperature=1.0)
    assert p.sum() == pytest.approx(1.0)
    assert np.array_equal(np.argsort(p), np.argsort(losses)), "probability order follows loss order"
    assert np.argmax(p) == 1
    sharper = selection_probabilities(losses, temperature=0.2)
    assert sharper[1] > p[1], "a lower temperature concentrates on the hardest sample"
    flat = selection_probabilities(np.full(4, 2.0), 1.0)
    assert np.allclose(flat, 0.25), "equal losses: uniform"


def test_resample_holds_the_budget_without_repeats_within_a_round():
    rng = np.random.default_rng(0)
    losses = np.linspace(0.0, 3.0, 40)
    for budget, rounds in ((30, 3), (17, 4), (40, 1)):
        picked = resample(losses, budget, temperature=1.0, rounds=rounds, rng=rng)
        assert len(picked) == rounds and sum(len(r) for r in picked) == budget
        assert [len(r) for r in picked] == round_sizes(budget, rounds)
        for r in picked:
            assert len(np.unique(r)) == len(r), "no sample twice in one round"
    with pytest.raises(ValueError, match="pool of at least"):
        resample(losses, 50, 1.0, 1, rng)


def test_resample_prefers_high_loss_samples():
    losses = np.concatenate([np.zeros(50), np.full(50, 4.0)])
    rng = np.random.default_rng(1)
    picks = np.concatenate([np.concatenate(resample(losses, 20, 1.0, 2, rng)) for _ in range(50)])
    high = np.mean(picks >= 50)
    assert high > 0.85, f"the high-loss half should dominate, got {high:.2f}"


def test_loss_tracker_averages_scorings():
    t = LossTracker(4)
    t.update(np.array([0, 1, 1]), np.array([1.0, 2.0, 4.0]))
    m = t.mean()
    assert m[0] == 1.0 and m[1] == 3.0
    assert m[2] == m[3] == pytest.approx(7.0 / 3.0), "unscored positions get the scored mean"
    with pytest.raises(ValueError):
        t.update(np.array([0]), np.array([np.nan]))


# ---- proposals ---------------------------------------------------------------------------------
def test_proposals_stay_inside_the_ranges():
    ids, draw_fn = _pool_draw(64)
    parents = draw_fn(ids)
    cfg = _gen()
    bounds = Bounds.for_scales(cfg.sampling.shape_scale, cfg.sampling.expression_scale)
    rng = np.random.default_rng(0)
    wild = propose(parents, bounds, step=10.0, rng=rng)  # a huge step must still be clipped
    assert bounds.contains(wild)
    assert np.abs(wild.shape).max() == pytest.approx(PARAM_BOUND * cfg.sampling.shape_scale)
    near = propose(bounds.clip(parents), bounds, step=0.01, rng=rng)
    assert np.abs(near.pose_u - bounds.clip(parents).pose_u).max() < 0.1, "a small step stays near its parent"
    # the specs of clipped rows map into the configured pose range and camera preset
    pose = pose_from_unit(wild.pose_u, cfg.sampling)
    jaw = pose[:, 6]  # jaw axis-angle x
    assert jaw.min() >= cfg.sampling.jaw_open_range[0] - 1e-6 and jaw.max() <= cfg.sampling.jaw_open_range[1] + 1e-6


# ---- determinism: same strategy + seed + budget -> same specs ---------------------------------
@pytest.mark.parametrize("strategy", ["gaussian", "sobol", "diverse"])
def test_same_strategy_seed_budget_same_specs(strategy):
    cfg = _gen(f"sampling.strategy={strategy}")
    ids = np.arange(24)
    a = make_specs(ids, 3, cfg.sampling, cfg.camera, n_shape=10, n_expression=6, latent_dim=4)
    b = make_specs(ids, 3, cfg.sampling, cfg.camera, n_shape=10, n_expression=6, latent_dim=4)
    c = make_specs(ids, 4, cfg.sampling, cfg.camera, n_shape=10, n_expression=6, latent_dim=4)
    assert torch.equal(a.shape, b.shape) and torch.equal(a.camera, b.camera) and torch.equal(a.pose, b.pose)
    assert not torch.equal(a.shape, c.shape), "another seed, other specs"


@pytest.mark.parametrize("strategy", ["loss_resample", "loss_propose"])
def test_guided_rows_are_reproducible_and_become_specs(strategy, tmp_path):
    sweep = load_config(SweepJobConfig, SWEEP, ["data.budget=24", "guided.rounds=3"])
    ids, draw_fn = _pool_draw(48)
    losses = np.random.default_rng(5).gamma(2.0, size=48)
    cfg = _gen()
    bounds = Bounds.for_scales(cfg.sampling.shape_scale, cfg.sampling.expression_scale)
    rows_a, picks_a = choose_rows(strategy, sweep, 0, ids, losses, draw_fn, bounds)
    rows_b, picks_b = choose_rows(strategy, sweep, 0, ids, losses, draw_fn, bounds)
    rows_c, _ = choose_rows(strategy, sweep, 1, ids, losses, draw_fn, bounds)
    assert len(rows_a) == 24 and np.array_equal(picks_a, picks_b)
    assert np.array_equal(rows_a.shape, rows_b.shape) and np.array_equal(rows_a.camera_u, rows_b.camera_u)
    assert not np.array_equal(rows_a.shape, rows_c.shape), "another seed, other rows"
    if strategy == "loss_resample":  # the drawn pool rows themselves
        assert np.array_equal(rows_a.shape, draw_fn(ids[picks_a]).shape)
    else:  # proposals: new rows, inside the ranges
        assert not np.array_equal(rows_a.shape, draw_fn(ids[picks_a]).shape)
        assert bounds.contains(rows_a)
    # the guide file is what the registered strategy reads: sample id i is row i
    guide = tmp_path / "guide.npz"
    write_guide(guide, rows_a)
    g = _gen(f"sampling.strategy={strategy}", f"sampling.guide={guide}")
    specs = make_specs(np.array([5, 0, 23]), 0, g.sampling, g.camera, n_shape=10, n_expression=6, latent_dim=4)
    assert np.allclose(specs.shape.numpy(), rows_a.shape[[5, 0, 23]], atol=1e-6)
    assert np.allclose(specs.latent.numpy(), rows_a.latent[[5, 0, 23]], atol=1e-6)
    with pytest.raises(ConfigError, match="holds 24 rows"):
        make_specs(np.array([24]), 0, g.sampling, g.camera, n_shape=10, n_expression=6, latent_dim=4)
    with pytest.raises(ConfigError, match="columns"):
        make_specs(np.array([0]), 0, g.sampling, g.camera, n_shape=12, n_expression=6, latent_dim=4)


def test_guided_strategy_needs_a_guide():
    with pytest.raises(ConfigError, match="sampling.guide"):
        _gen("sampling.strategy=loss_resample")


# ---- config and preflight ----------------------------------------------------------------------
def test_sweep_config_errors_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match="sampling strategy|sampling.strategy"):
        load_config(SweepJobConfig, SWEEP, ["space.strategy.values=[gaussian,nope]"])
    with pytest.raises(ConfigError, match="metric"):
        load_config(SweepJobConfig, SWEEP, ["metric=accuracy"])
    log0 = tmp_path / "log0.yaml"
    log0.write_text("space:\n  loss.depth: {kind: loguniform, low: 0.0, high: 1.0}\n")
    with pytest.raises(ConfigError, match="loguniform"):
        load_config(SweepJobConfig, log0)
    typo = tmp_path / "typo.yaml"
    typo.write_text("space:\n  loss.dpeth: {kind: choice, values: [1.0]}\n")
    with pytest.raises(ConfigError, match="loss.dpeth"):
        preflight(load_config(SweepJobConfig, typo))


def test_coupled_keys_expand_to_overrides():
    got = overrides_of({"seed": 1, "strategy": "sobol", "loss.depth": 0.5,
                        "lr": {"optim.lr_heads": 0.01, "optim.lr_encoder": 0.001}})
    assert got == ["loss.depth=0.5", "optim.lr_heads=0.01", "optim.lr_encoder=0.001"]


# ---- the dataset cache -------------------------------------------------------------------------
def test_content_key_ignores_output_dir_and_tracks_content(tmp_path):
    a, b = _gen("output_dir=/x"), _gen("output_dir=/y")
    assert content_key(a) == content_key(b)
    assert content_key(a) != content_key(_gen("seed=9"))
    guide = tmp_path / "g.npz"
    rows = Draw(np.zeros((2, 10)), np.zeros((2, 6)), np.zeros((2, 4)), np.full((2, 6), 0.5), np.full((2, 3), 0.5))
    write_guide(guide, rows)
    k1 = content_key(_gen("sampling.strategy=loss_resample", f"sampling.guide={guide}"))
    rows.shape[0, 0] = 1.0
    write_guide(guide, rows)
    k2 = content_key(_gen("sampling.strategy=loss_resample", f"sampling.guide={guide}"))
    assert k1 != k2, "the guide file's content is part of the key"


def test_cache_builds_once_under_concurrency(tmp_path):
    calls = []
    started = threading.Event()

    def build(path: Path) -> None:
        calls.append(path)
        started.set()
        path.mkdir(parents=True)
        (path / "data.txt").write_text("x")
        threading.Event().wait(0.5)  # a slow build: the other caller must wait, not build too

    got = []
    threads = [threading.Thread(target=lambda: got.append(cached(tmp_path, "gaussian", "ab" * 32, build,
                                                                 poll_s=0.05))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len(set(got)) == 1
    assert (got[0] / "READY").is_file()
    assert cached(tmp_path, "gaussian", "ab" * 32, build) == got[0] and len(calls) == 1


def test_a_failed_build_is_not_published(tmp_path):
    def broken(path: Path) -> None:
        path.mkdir(parents=True)
        raise RuntimeError("disk gone")

    with pytest.raises(RuntimeError):
        cached(tmp_path, "sobol", "cd" * 32, broken)
    built = []
    path = cached(tmp_path, "sobol", "cd" * 32, lambda p: built.append(p))
    assert built == [path], "the next caller builds it again"


# ---- results -----------------------------------------------------------------------------------
def test_results_table_flags_early_stops_and_writes_a_rerunnable_best(tmp_path):
    sweep = load_config(SweepJobConfig, SWEEP, [f"output_dir={tmp_path}", "asha.max_t=3"])
    good = tmp_path / "trials" / "t1"
    good.mkdir(parents=True)
    train = load_config(TrainJobConfig, ROOT / "configs" / "train" / "quickstart.yaml", [f"output_dir={good}"])
    from sfray.config.loader import save_config

    save_config(train, good / "config.yaml")
    hist = lambda vals: [{"round": i + 1, "step": 10 * (i + 1), "val_nme": v} for i, v in enumerate(vals)]  # noqa: E731
    records = [TrialRecord("t1", {"seed": 0, "strategy": "gaussian"}, hist([0.5, 0.3, 0.2]), str(good)),
               TrialRecord("t2", {"seed": 0, "strategy": "sobol"}, hist([0.9]), None),
               TrialRecord("t3", {"seed": 0, "strategy": "sobol"}, [], None, error="ValueError: boom")]
    summary = write_results(sweep, records)
    rows = list(csv.DictReader(open(tmp_path / "sweep.csv")))
    assert [r["stopped_early"] for r in rows] == ["False", "True", "False"]
    assert float(rows[0]["best_val_nme"]) == 0.2 and rows[1]["rounds"] == "1" and rows[2]["error"]
    assert summary["best"]["trial_id"] == "t1"
    best = load_config(TrainJobConfig, tmp_path / "best.yaml")
    assert best.output_dir == str(tmp_path.resolve() / "best_run")
    assert (tmp_path / "metric.png").stat().st_size > 1000
    assert "metric.png" in (tmp_path / "report.md").read_text()
