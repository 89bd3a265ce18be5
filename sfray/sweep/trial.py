"""One sweep trial without Ray: its Stage I config, its data, its run, its per-round reports.

A trial is a point of the search space (``params``: dotted train-config keys plus ``strategy``)
and a seed. :func:`trial_config` turns it into a complete :class:`TrainJobConfig` (runner=local,
``asha.max_t`` validation rounds, checkpoints at every validation so a restarted trial resumes
where its last report was); :func:`run_trial` makes the data and trains, calling ``report`` with
the metrics of each validation round. The Ray Tune glue (``sfray.distributed.tune``) only wraps it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from sfray.config.loader import load_config
from sfray.config.sweep import STRATEGY_KEY, SweepJobConfig
from sfray.config.train import TrainJobConfig
from sfray.sweep.data import training_set, validation_set
from sfray.train.checkpoint import CONFIG_FILE
from sfray.train.data import open_dataset

#: Reported with every validation: the 1-based validation round (ASHA's time axis).
ROUND = "round"
#: The seed of a trial (a search dimension made from the config's ``seeds``).
SEED_KEY = "seed"


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def overrides_of(params: dict[str, Any]) -> list[str]:
    """Dotlist overrides of a trial's values: ``key=value``, or one per entry of a dict value (coupled keys)."""
    out = []
    for key, value in params.items():
        if key in (STRATEGY_KEY, SEED_KEY):
            continue
        if isinstance(value, dict):
            out += [f"{k}={_value(v)}" for k, v in value.items()]
        else:
            out.append(f"{key}={_value(value)}")
    return out


def trial_config(sweep: SweepJobConfig, params: dict[str, Any], output_dir: str | Path, *,
                 dataset_dir: str | Path, val_dataset_dir: str | Path) -> TrainJobConfig:
    """The full Stage I config of one trial (see the module docstring)."""
    base = load_config(TrainJobConfig, sweep.train.config, sweep.train.overrides)
    n_train = len(open_dataset(dataset_dir, ()))
    steps_per_epoch = max(1, (n_train // base.train.batch_size) // base.train.accumulate)
    every = base.train.validate_every
    extra = overrides_of(params)
    extra += [f"output_dir={output_dir}", "runner=local", f"seed={params.get(SEED_KEY, 0)}",
              f"data.dataset_dir={dataset_dir}", f"data.val_dataset_dir={val_dataset_dir}",
              f"train.epochs={sweep.asha.max_t * every}", "train.max_steps=-1", "train.resume=auto",
              f"train.checkpoint_every={steps_per_epoch * every}", "data.num_workers=0",
              f"train.threads={max(1, int(sweep.ray.cpus_per_trial))}"]
    return load_config(TrainJobConfig, sweep.train.config, [*sweep.train.overrides, *extra])


def run_trial(sweep: SweepJobConfig, params: dict[str, Any], output_dir: str | Path,
              report: Callable[[dict[str, Any]], None], *, progress: bool = False) -> dict[str, Any]:
    """Make (or reuse) the trial's data, train it, ``report`` each validation round; returns report.json's content."""
    from sfray.train.stage1 import train_stage1

    if replay_finished(output_dir, report):
        return {}
    strategy = str(params.get(STRATEGY_KEY, "gaussian"))
    seed = int(params.get(SEED_KEY, 0))
    val = validation_set(sweep)
    data = training_set(sweep, strategy, seed)
    cfg = trial_config(sweep, params, output_dir, dataset_dir=data, val_dataset_dir=val)
    every = cfg.train.validate_every

    def on_validation(metrics: dict[str, Any]) -> None:
        report({**metrics, ROUND: (int(metrics["epoch"]) + 1) // every})

    return train_stage1(cfg, progress=progress, on_validation=on_validation)


def epoch_metrics(entry: dict[str, Any], validate_every: int) -> dict[str, Any]:
    """What a validation epoch reports (the keys of ``fit``'s epoch report), with its round."""
    val = {f"val_{k}": v for k, v in entry.get("val", {}).items() if isinstance(v, (int, float))}
    return {"epoch": entry["epoch"], "step": entry["step"], "train_loss": entry["train_loss"], **val,
            ROUND: (int(entry["epoch"]) + 1) // validate_every}


def replay_finished(output_dir: str | Path, report: Callable[[dict[str, Any]], None]) -> bool:
    """A trial whose run had finished (``report.json``): report its validation rounds again, train nothing.

    For a sweep restored after a driver crash that happened between a trial's end and the moment
    the scheduler recorded it; returns False when the run had not finished.
    """
    import json

    from sfray.train.report import REPORT_JSON

    path = Path(output_dir) / REPORT_JSON
    if not path.is_file():
        return False
    done = json.loads(path.read_text())
    every = int(OmegaConf.load(Path(output_dir) / CONFIG_FILE).train.validate_every)
    for entry in done.get("history", []):
        if "val" in entry:
            report(epoch_metrics(entry, every))
    return True


def preflight(sweep: SweepJobConfig) -> None:
    """Fail before any trial starts if a search key or value does not fit the train config."""
    from sfray.config.schema import GenerateJobConfig

    load_config(GenerateJobConfig, sweep.data.generate_config, sweep.data.overrides)
    for key, dim in sweep.space.items():
        if key == STRATEGY_KEY:
            continue
        for value in (dim.values if dim.kind in ("choice", "grid") else [dim.low, dim.high]):
            load_config(TrainJobConfig, sweep.train.config, [*sweep.train.overrides, *overrides_of({key: value})])
