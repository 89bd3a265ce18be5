"""A Ray Tune sweep of 4 tiny Stage I trials over a learning-rate pair, two strategies and a loss
weight: it writes its table, ASHA stops the weak trials, each strategy's data is made once."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sweep_setup import shared_cache, write_sweep_yaml  # noqa: E402

from sfray.config import load_config  # noqa: E402
from sfray.config.sweep import SweepJobConfig  # noqa: E402
from sfray.config.train import TrainJobConfig  # noqa: E402

pytestmark = pytest.mark.ray

GOOD = {"optim.lr_heads": 0.03, "optim.lr_encoder": 0.03}
WEAK = {"optim.lr_heads": 1.0e-8, "optim.lr_encoder": 1.0e-8}  # the schema refuses 0; this learns nothing


def test_sweep_writes_table_and_asha_stops_weak_trials(shared_ray, tmp_path, tmp_path_factory):
    from sfray.distributed.tune import run_sweep

    # grid order: the learning-rate pair varies slowest, so both weak trials start after a good
    # trial has finished (2 at a time) and ASHA's first rung already holds a good value
    space = {"lr": {"kind": "grid", "values": [GOOD, WEAK]},
             "strategy": {"kind": "grid", "values": ["gaussian", "sobol"]},
             "loss.depth": {"kind": "uniform", "low": 0.5, "high": 2.0}}
    out = tmp_path / "sweep"
    cfg = load_config(SweepJobConfig, write_sweep_yaml(tmp_path / "s.yaml", out, shared_cache(tmp_path_factory),
                                                       space=space, max_t=2))
    summary = run_sweep(cfg)
    rows = list(csv.DictReader(open(out / "sweep.csv")))
    assert len(rows) == 4 and not any(r["error"] for r in rows)
    assert {r["strategy"] for r in rows} == {"gaussian", "sobol"}
    weak = [r for r in rows if "1e-08" in r["lr"]]
    good = [r for r in rows if "0.03" in r["lr"]]
    assert len(weak) == 2 and len(good) == 2
    for r in weak:
        assert r["stopped_early"] == "True" and int(r["rounds"]) < cfg.asha.max_t, f"ASHA let a weak trial run: {r}"
    assert any(int(r["rounds"]) == cfg.asha.max_t for r in good), "a good trial ran to max_t"
    assert max(float(r["final_val_nme"]) for r in good) < min(float(r["final_val_nme"]) for r in weak)
    assert summary["best"]["trial_id"] in {r["trial_id"] for r in good}
    best = load_config(TrainJobConfig, out / "best.yaml")
    assert best.optim.lr_heads == 0.03 and best.output_dir.endswith("best_run")
    assert best.data.val_dataset_dir and Path(best.data.dataset_dir).is_dir()
    assert (out / "metric.png").is_file() and "| trial |" in (out / "report.md").read_text()
    cache = shared_cache(tmp_path_factory)
    assert len(list(cache.glob("gaussian-s0-*"))) == 1 and len(list(cache.glob("sobol-s0-*"))) == 1, \
        "two trials per strategy, one dataset each"
    assert len(list(cache.glob("val-*"))) == 1
