"""``sfray evaluate``: the direct mapping and a finetuned Stage II model scored on a benchmark.

Also the checks Stage II shares with it (``open_stage2_benchmark``, ``load_frozen_stage1``): each
fails with one line naming the key, before anything is written. Outputs in ``output_dir``:
``report.json`` / ``report.md`` (paper-format tables, both methods), ``qualitative.png`` and
``predictions/{direct,finetuned}/`` in ``sfray score``'s format. A rerun with the same resolved
config returns the existing report (docs/evaluation.md, Stage II reports).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from sfray.benchmarks.base import BenchmarkReader
from sfray.benchmarks.catalog import BENCHMARKS, benchmark_names, open_benchmark
from sfray.config.finetune import BenchmarkSection, EvaluateJobConfig, FinetuneJobConfig
from sfray.config.loader import config_from_yaml_text, to_yaml
from sfray.devices import resolve_device
from sfray.errors import AssetError, ConfigError, SfrayError
from sfray.evaluate.methods import (
    DIRECT_METHOD,
    before_after_figure,
    direct_predictor,
    evaluate_methods,
    finetuned_method,
    finetuned_predictor,
)
from sfray.evaluate.report import REPORT_JSON, write_report
from sfray.models.io import find_model_dir, load_model, read_model_meta
from sfray.models.labelnet import LABELNET_JSON, LabelFinetuneModel, load_labelnet, read_labelnet_meta
from sfray.models.multitask import MODEL_SIZES, MultiTaskModel


def completed_report(out_dir: str | Path, config_yaml: str) -> dict[str, Any] | None:
    """The report of a finished run of exactly this resolved config in ``out_dir``, else None."""
    path = Path(out_dir) / REPORT_JSON
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except ValueError:
        return None
    return data if data.get("extra", {}).get("config") == config_yaml else None


def open_stage2_benchmark(section: BenchmarkSection, *, need_train: bool, progress: bool = False
                          ) -> tuple[BenchmarkReader, tuple[str, ...], tuple[str, ...]]:
    """(reader, tasks, eval splits) of ``section``, refusing a root without usable images."""
    benchmark_names()
    BENCHMARKS.check(section.name, "benchmark.name")
    kwargs: dict[str, Any] = {"check": section.check, "progress": progress}
    if section.lapa_root:
        if section.name != "lapa-d":
            raise ConfigError("bad value for config key 'benchmark.lapa_root': applies to benchmark.name=lapa-d only")
        kwargs["lapa_root"] = section.lapa_root
    reader = open_benchmark(section.name, section.root, **kwargs)
    scan = reader.scan()
    tasks = tuple(section.tasks) or tuple(reader.tasks)
    missing = [t for t in tasks if t not in reader.tasks]
    if missing:
        raise ConfigError(f"bad value for config key 'benchmark.tasks': {section.name} has no "
                          f"{', '.join(missing)} ground truth (it has: {', '.join(reader.tasks)})")
    splits = tuple(section.eval_splits) or tuple(reader.eval_splits)
    wanted = ([section.train_split] if need_train else []) + list(splits)
    for s in wanted:
        if s not in scan.splits:
            raise ConfigError(f"bad value for config key 'benchmark' splits: {section.name} has no split '{s}' "
                              f"(valid: {' | '.join(scan.splits)})")
        if not any(t in e.usable for e in reader.entries(s) for t in tasks):
            raise AssetError(f"benchmark.root={section.root}: no usable {section.name} image with {'/'.join(tasks)} "
                             f"ground truth in split '{s}' ({len(scan.problems)} problem(s) found); is it a "
                             f"{section.name} root? Check with `sfray benchmark inspect {section.name} {section.root}`")
    return reader, tasks, splits


def load_frozen_stage1(path: str | Path, expected_size: str | None, input_size: int,
                       device: torch.device | str = "cpu") -> MultiTaskModel:
    """A Stage I model, eval mode, no gradients; its size checked against ``model.stage1_size``."""
    d = find_model_dir(path)
    if d is None:
        raise AssetError(f"model.stage1={path}: no Stage I model here (expected model.json + model.safetensors in "
                         "it or in its model/; a finished `sfray train` output_dir or a checkpoints/step_N/)")
    meta = read_model_meta(d)
    if expected_size is not None:
        MODEL_SIZES.check(expected_size, "model.stage1_size")
        if meta.get("size") != expected_size:
            raise AssetError(f"model.stage1={path}: holds a Stage I model of size '{meta.get('size')}', but "
                             f"model.stage1_size={expected_size}; set model.stage1_size={meta.get('size')} or "
                             f"point model.stage1 at a '{expected_size}' model")
    model = load_model(d, device=device)
    multiple = model.spec.min_input_multiple
    if input_size % multiple:
        raise ConfigError(f"bad value for config key 'crop.input_size': the Stage I model (size '{model.spec.name}') "
                          f"needs a multiple of {multiple}, got {input_size}")
    model.requires_grad_(False)
    return model.eval()


def check_labelnet_fits(net: LabelFinetuneModel, reader: BenchmarkReader, where: str) -> None:
    """A finetuned model trained for another benchmark layout is refused in one line."""
    spec = net.spec
    if spec.num_classes and reader.schema is not None and spec.num_classes != reader.schema.num_classes:
        raise AssetError(f"{where}: finetuned for {spec.num_classes} classes, {reader.name} has "
                         f"{reader.schema.num_classes}")
    if spec.num_landmarks and spec.num_landmarks != (reader.num_landmarks or 0):
        raise AssetError(f"{where}: finetuned for {spec.num_landmarks} landmarks, {reader.name} has "
                         f"{reader.num_landmarks}")


def run_evaluation(cfg: EvaluateJobConfig, *, progress: bool = True) -> dict[str, Any]:
    """Score the direct mapping (and ``model.finetuned``) on the benchmark; returns report.json's content."""
    out = Path(cfg.output_dir)
    config_yaml = to_yaml(cfg)
    done = completed_report(out, config_yaml)
    if done is not None:
        return done
    device = resolve_device(cfg.evaluate.device)
    labelnet, ft_cfg = None, None
    if cfg.model.finetuned:
        d = find_model_dir(cfg.model.finetuned, LABELNET_JSON)
        if d is None:
            raise AssetError(f"model.finetuned={cfg.model.finetuned}: no Stage II model here (expected "
                             f"{LABELNET_JSON} in it or in its model/); make one with `sfray finetune`")
        meta = read_labelnet_meta(d)
        labelnet = load_labelnet(d, device)
        if meta.get("config"):
            ft_cfg = config_from_yaml_text(FinetuneJobConfig, meta["config"])
    stage1_path = cfg.model.stage1 or (ft_cfg.model.stage1 if ft_cfg else None)
    if not stage1_path:
        raise ConfigError("config key 'model.stage1' is required: the finetuned model does not say which Stage I "
                          "model it was trained on")
    size = cfg.input_size or (ft_cfg.crop.input_size if ft_cfg else 256)
    stage1 = load_frozen_stage1(stage1_path, cfg.model.stage1_size, size, device)
    reader, tasks, splits = open_stage2_benchmark(cfg.benchmark, need_train=False, progress=progress)
    methods = [(*DIRECT_METHOD, direct_predictor(stage1, reader, device))]
    if labelnet is not None:
        check_labelnet_fits(labelnet, reader, f"model.finetuned={cfg.model.finetuned}")
        methods.append((*finetuned_method(labelnet.spec.use_features),
                        finetuned_predictor(stage1, labelnet, device)))
    out.mkdir(parents=True, exist_ok=True)
    return write_stage2_report(out, reader, tasks, splits, methods, size=size, eval_cfg=cfg.evaluate,
                               title=f"{reader.name}: Stage I direct mapping vs Stage II finetuning",
                               extra={"config": config_yaml, "stage1": str(stage1_path),
                                      "finetuned": cfg.model.finetuned}, progress=progress)


def write_stage2_report(out: Path, reader: BenchmarkReader, tasks: tuple[str, ...], splits: tuple[str, ...],
                        methods: list, *, size: int, eval_cfg: Any, title: str, extra: dict[str, Any],
                        notes: tuple[str, ...] = (), progress: bool = False) -> dict[str, Any]:
    """Score ``methods`` on ``splits``, write predictions, figure and report; return report.json's content."""
    import shutil

    results, dirs = evaluate_methods(reader, splits, methods, out, size=size, tasks=tasks,
                                     batch_size=eval_cfg.batch_size, norm=eval_cfg.norm,
                                     threshold=eval_cfg.threshold, progress=progress)
    figure = None
    if eval_cfg.figure_images:
        figure = before_after_figure(reader, splits[0], [(m[0], dirs[m[1]]) for m in methods],
                                     eval_cfg.figure_images)
    files = {f"predictions_{k}": str(v) for k, v in dirs.items()} if eval_cfg.predictions else {}
    if not eval_cfg.predictions:
        for d in dirs.values():
            shutil.rmtree(d, ignore_errors=True)
    try:
        write_report(out, results, title=title, figure=figure, extra={**extra, "files": files}, notes=notes)
    except OSError as exc:
        raise SfrayError(f"{out}: could not write the report ({exc})") from exc
    return json.loads((out / REPORT_JSON).read_text())
