"""What a finished sweep writes: ``sweep.csv``, ``report.md`` with ``metric.png``, and ``best.yaml``.

One row per trial: its search-space values, the final and best metric, validation rounds and
optimizer steps reached, whether ASHA stopped it before ``asha.max_t`` and any error. The best
trial is chosen on its *final* metric (the value at its last round, as Tune scores by default);
``best.yaml`` is its complete Stage I config with a fresh ``output_dir``, so
``sfray train best.yaml`` reruns it (docs/sweeps.md).
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from sfray.config.sweep import METRIC_MODES, SweepJobConfig
from sfray.evaluate.report import REPORT_MD
from sfray.io.atomic import atomic_path, atomic_write_text
from sfray.train.checkpoint import CONFIG_FILE
from sfray.viz.chart import line_chart

SWEEP_CSV = "sweep.csv"
PLOT_PNG = "metric.png"
BEST_YAML = "best.yaml"
BEST_RUN_DIR = "best_run"


@dataclass
class TrialRecord:
    trial_id: str
    config: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)  # one dict per reported round
    trial_dir: str | None = None
    error: str = ""


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(float(v))


def _last(history: list[dict[str, Any]], key: str) -> Any:
    values = [h[key] for h in history if _finite(h.get(key))]
    return values[-1] if values else ""


def summarise(sweep: SweepJobConfig, rec: TrialRecord) -> dict[str, Any]:
    """The table row of one trial."""
    values = [h[sweep.metric] for h in rec.history if _finite(h.get(sweep.metric))]
    pick = min if sweep.resolved_mode() == "min" else max
    rounds = max((int(h.get("round", 0)) for h in rec.history), default=0)
    steps = max((int(h.get("step", 0)) for h in rec.history), default=0)
    row: dict[str, Any] = {"trial_id": rec.trial_id}
    row.update({k: rec.config[k] for k in sorted(rec.config)})
    row.update({f"final_{sweep.metric}": values[-1] if values else "", f"best_{sweep.metric}": pick(values)
                if values else "", "rounds": rounds, "steps": steps,
                **{f"final_{k}": _last(rec.history, k) for k in METRIC_MODES if k != sweep.metric},
                "stopped_early": bool(not rec.error and 0 < rounds < sweep.asha.max_t),
                "error": rec.error, "trial_dir": rec.trial_dir or ""})
    return row


def best_row(sweep: SweepJobConfig, rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    key = f"final_{sweep.metric}"
    done = [r for r in rows if _finite(r.get(key)) and not r["error"]]
    if not done:
        return None
    sign = 1.0 if sweep.resolved_mode() == "min" else -1.0
    return min(done, key=lambda r: (not (r["rounds"] >= sweep.asha.max_t), sign * float(r[key])))


def _csv(rows: list[dict[str, Any]]) -> str:
    cols: list[str] = []
    for r in rows:
        cols += [c for c in r if c not in cols]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k.rsplit('.', 1)[-1]}={_fmt(x)}" for k, x in v.items()) + "}"
    return str(v)


def _label(sweep: SweepJobConfig, row: dict[str, Any]) -> str:
    keys = (["seed"] if len(sweep.seeds) > 1 else []) + list(sweep.space)
    return ", ".join(f"{k.rsplit('.', 1)[-1]}={_fmt(row.get(k))}" for k in keys if k in row)


def _best_yaml(sweep: SweepJobConfig, row: dict[str, Any]) -> str | None:
    path = Path(row["trial_dir"]) / CONFIG_FILE if row.get("trial_dir") else None
    if path is None or not path.is_file():
        return None
    cfg = OmegaConf.load(path)
    cfg.output_dir = str(Path(sweep.output_dir).resolve() / BEST_RUN_DIR)
    head = (f"# The best trial ({row['trial_id']}) of sweep {sweep.name}: {sweep.metric} "
            f"{row[f'final_{sweep.metric}']:.6g} after {row['steps']} steps.\n"
            f"#   sfray train {Path(sweep.output_dir) / BEST_YAML}   (reruns it into output_dir below)\n")
    return head + OmegaConf.to_yaml(cfg)


def write_results(sweep: SweepJobConfig, records: list[TrialRecord]) -> dict[str, Any]:
    """Write the sweep's files into ``output_dir``; returns a summary (rows, best, files)."""
    out = Path(sweep.output_dir)
    rows = [summarise(sweep, r) for r in sorted(records, key=lambda r: r.trial_id)]
    atomic_write_text(out / SWEEP_CSV, _csv(rows))
    series = []
    for rec, row in zip(sorted(records, key=lambda r: r.trial_id), rows):
        pts = [(h.get("step", 0), h[sweep.metric]) for h in rec.history if _finite(h.get(sweep.metric))]
        series.append((_label(sweep, row), [p[0] for p in pts], [p[1] for p in pts]))
    img = line_chart(series, title=f"{sweep.name}: held-out {sweep.metric} per trial", xlabel="training steps",
                     ylabel=sweep.metric)
    with atomic_path(out / PLOT_PNG) as tmp:
        img.save(tmp, format="PNG")
    best = best_row(sweep, rows)
    files = {"csv": str(out / SWEEP_CSV), "report": str(out / REPORT_MD), "plot": str(out / PLOT_PNG)}
    text = _best_yaml(sweep, best) if best else None
    if text:
        atomic_write_text(out / BEST_YAML, text)
        files["best"] = str(out / BEST_YAML)
    atomic_write_text(out / REPORT_MD, _report_md(sweep, rows, best))
    return {"rows": rows, "best": best, "files": files}


def _report_md(sweep: SweepJobConfig, rows: list[dict[str, Any]], best: dict[str, Any] | None) -> str:
    m = sweep.metric
    lines = [f"# Sweep `{sweep.name}`", "",
             f"Metric: held-out `{m}` ({sweep.resolved_mode()}), ASHA max_t {sweep.asha.max_t} validation rounds, "
             f"grace {sweep.asha.grace_period}, reduction factor {sweep.asha.reduction_factor}; "
             f"{len(rows)} trials, {sum(r['stopped_early'] for r in rows)} stopped early by ASHA, "
             f"{sum(bool(r['error']) for r in rows)} failed. What the files are: docs/sweeps.md.", "",
             f"![{m} against training steps]({PLOT_PNG})", ""]
    keys = ["seed", *sweep.space]
    lines.append("| trial | " + " | ".join(keys) + f" | final {m} | best {m} | rounds | steps | stopped early |")
    lines.append("|" + "---|" * (len(keys) + 6))
    for r in rows:
        cells = [_fmt(r.get(k, "")) for k in keys]
        fin, bst = r[f"final_{m}"], r[f"best_{m}"]
        lines.append(f"| {r['trial_id']} | " + " | ".join(cells) + f" | {fin if fin == '' else f'{fin:.4f}'} | "
                     f"{bst if bst == '' else f'{bst:.4f}'} | {r['rounds']} | {r['steps']} | "
                     f"{'yes' if r['stopped_early'] else 'no'} |")
    lines.append("")
    if best:
        lines.append(f"Best: trial {best['trial_id']} ({_label(sweep, best)}), final {m} {best[f'final_{m}']:.4f}; "
                     f"its config: `{BEST_YAML}` (`sfray train {BEST_YAML}`).")
    else:
        lines.append("No trial finished with a finite metric; see the error column of sweep.csv.")
    return "\n".join(lines) + "\n"
