"""Ray Tune glue of ``sfray sweep``: the search space, the function trainable, ASHA, restore.

Each trial is a plain function trainable (Tune's V2 pattern for runs that are not Ray Train
runs) that calls :func:`sfray.sweep.trial.run_trial` with ``runner=local`` in its own actor and
forwards every validation round to ``tune.report`` with a small checkpoint (the round reached;
the model itself is checkpointed by the trial's run in its own directory, which a restarted
trial resumes from). ASHA stops weak trials at its rungs (times are validation rounds).
A driver killed mid-sweep is resumed by running the same command: the experiment directory
is restored with ``Tuner.restore`` and finished trials are kept (docs/sweeps.md).
"""

from __future__ import annotations

import itertools
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import ray
from ray import tune
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

from sfray.config.loader import config_from_yaml_text, to_yaml
from sfray.config.schema import RayConfig
from sfray.config.sweep import Dim, SweepJobConfig
from sfray.distributed.runtime import ray_session
from sfray.errors import SfrayError
from sfray.sweep.results import TrialRecord, write_results
from sfray.sweep.trial import ROUND, SEED_KEY, preflight, run_trial

TRIALS_DIR = "trials"
STATE_FILE = "state.json"
GRID_KEY = "grid"


def _dim(dim: Dim) -> Any:
    if dim.kind == "choice":
        return tune.choice(list(dim.values))
    if dim.kind == "uniform":
        return tune.uniform(dim.low, dim.high)
    return tune.loguniform(dim.low, dim.high)


def grid_points(sweep: SweepJobConfig) -> list[dict[str, Any]]:
    """The grid's points in config order: seeds first, then each ``grid`` dimension; the first varies slowest."""
    dims = [(SEED_KEY, list(sweep.seeds))] + [(k, list(d.values)) for k, d in sweep.space.items() if d.kind == "grid"]
    return [dict(zip([k for k, _ in dims], combo)) for combo in itertools.product(*[v for _, v in dims])]


def param_space(sweep: SweepJobConfig) -> dict[str, Any]:
    """One Tune grid over :func:`grid_points` (so trials start in that order), plus the sampled dimensions."""
    space: dict[str, Any] = {GRID_KEY: tune.grid_search(grid_points(sweep))}
    space.update({key: _dim(dim) for key, dim in sweep.space.items() if dim.kind != "grid"})
    return space


def trial_params(config: dict[str, Any]) -> dict[str, Any]:
    """A trial's Tune config as flat search values (the grid point unpacked)."""
    flat = {k: v for k, v in config.items() if k != GRID_KEY}
    return {**config.get(GRID_KEY, {}), **flat}


def concurrent_trials(sweep: SweepJobConfig) -> int:
    """``ray.max_concurrent_trials``, or what the cluster's CPUs (GPUs) fit at once."""
    if sweep.ray.max_concurrent_trials:
        return sweep.ray.max_concurrent_trials
    res = ray.cluster_resources()
    n = int(res.get("CPU", 1) // sweep.ray.cpus_per_trial)
    if sweep.ray.gpus_per_trial > 0:
        n = min(n, int(res.get("GPU", 0) // sweep.ray.gpus_per_trial))
    return max(1, n)


def _trainable(config: dict[str, Any], sweep_yaml: str, cwd: str) -> None:
    os.chdir(cwd)  # Tune starts trials in their own directory; the sweep's relative paths are the driver's
    sweep = config_from_yaml_text(SweepJobConfig, sweep_yaml)
    trial_id = tune.get_context().get_trial_id()
    out = Path(sweep.output_dir).resolve() / TRIALS_DIR / trial_id
    done = 0
    ckpt = tune.get_checkpoint()
    if ckpt is not None:
        with ckpt.as_directory() as d:
            done = int(json.loads((Path(d) / STATE_FILE).read_text())[ROUND])

    def report(metrics: dict[str, Any]) -> None:
        if metrics[ROUND] <= done:  # a resumed run repeats nothing Tune has seen
            return
        with tempfile.TemporaryDirectory() as d:
            (Path(d) / STATE_FILE).write_text(json.dumps({ROUND: metrics[ROUND], "trial_dir": str(out)}))
            tune.report({**metrics, "trial_dir": str(out)}, checkpoint=tune.Checkpoint.from_directory(d))

    run_trial(sweep, trial_params(config), out, report)


def _tuner(sweep: SweepJobConfig) -> tune.Tuner:
    trainable = tune.with_parameters(_trainable, sweep_yaml=to_yaml(sweep), cwd=os.getcwd())
    res = {"cpu": sweep.ray.cpus_per_trial, "gpu": sweep.ray.gpus_per_trial}
    trainable = tune.with_resources(trainable, res)
    storage = str(Path(sweep.output_dir).resolve())
    path = os.path.join(storage, sweep.name)
    if tune.Tuner.can_restore(path):
        return tune.Tuner.restore(path, trainable, resume_unfinished=True, resume_errored=True)
    mode = sweep.resolved_mode()
    scheduler = (ASHAScheduler(time_attr=ROUND, max_t=sweep.asha.max_t, grace_period=sweep.asha.grace_period,
                               reduction_factor=sweep.asha.reduction_factor)
                 if sweep.asha.enabled else FIFOScheduler())
    return tune.Tuner(
        trainable,
        param_space=param_space(sweep),
        tune_config=tune.TuneConfig(metric=sweep.metric, mode=mode, scheduler=scheduler,
                                    num_samples=sweep.num_samples,
                                    max_concurrent_trials=concurrent_trials(sweep)),
        run_config=tune.RunConfig(name=sweep.name, storage_path=storage, verbose=1,
                                  failure_config=tune.FailureConfig(max_failures=sweep.ray.max_failures),
                                  checkpoint_config=tune.CheckpointConfig(num_to_keep=2)),
    )


def _error_line(error: BaseException | None) -> str:
    """The exception's own last line (Ray prefixes the actor's details)."""
    if error is None:
        return ""
    lines = [ln.strip() for ln in str(error).splitlines() if ln.strip()]
    return lines[-1] if lines else type(error).__name__


def _trial_id(result: tune.Result, history: list[dict[str, Any]]) -> str:
    if history and history[-1].get("trial_id"):
        return str(history[-1]["trial_id"])
    match = re.search(r"_([0-9a-f]{5}_\d{5})", Path(result.path).name)
    return match.group(1) if match else Path(result.path).name


def _records(grid: tune.ResultGrid) -> list[TrialRecord]:
    rows = []
    for result in grid:
        df = result.metrics_dataframe
        history = [] if df is None else df.to_dict("records")
        trial_dir = next((h.get("trial_dir") for h in history if h.get("trial_dir")), None)
        rows.append(TrialRecord(trial_id=_trial_id(result, history), config=trial_params(dict(result.config or {})),
                                history=history, trial_dir=trial_dir, error=_error_line(result.error)))
    return rows


def run_sweep(sweep: SweepJobConfig) -> dict[str, Any]:
    """Run (or resume) the sweep; write sweep.csv, report.md, the plot and best.yaml; return a summary."""
    preflight(sweep)
    ray_cfg = RayConfig(address=sweep.ray.address, num_cpus=sweep.ray.num_cpus)
    with ray_session(ray_cfg, os.cpu_count() or 1):
        grid = _tuner(sweep).fit()
        records = _records(grid)
    summary = write_results(sweep, records)
    if records and all(r.error for r in records):
        raise SfrayError(f"sweep {sweep.name}: every trial failed; the first: {records[0].error} "
                         f"(details: {Path(sweep.output_dir) / 'sweep.csv'} and the trial logs under {sweep.name}/)")
    return summary
