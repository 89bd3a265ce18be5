"""Stage I training throughput, with the data path measured alone in the same run (no Ray).

Three rates, images/s, same dataset, same batches, same process:
- ``loader``: the DataLoader alone (LMDB read + record decode + collate, ``--workers`` processes)
  followed by the crop/augmentation on the device: everything a step needs before the network;
- ``train``: full steps fed by that loader (data, augmentation, forward, backward, AdamW);
- ``compute``: full steps on one batch already in memory (the network's own ceiling).
``train`` close to ``compute`` and ``loader`` well above both means the data path is not the
bottleneck.

    python bench/train.py --model tiny --size 128 --batch 16                      # CPU
    python bench/train.py --model paper --size 256 --batch 64 --device cuda --amp bf16 --workers 8
    [--dataset outputs/quickstart] [--steps 20] [--append docs/benchmarks.md]

Without ``--dataset`` it generates a small procedural dataset at ``--res`` first (not timed).
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sfray.config.loader import load_config  # noqa: E402
from sfray.config.train import TrainJobConfig  # noqa: E402
from sfray.train.augment import TRAIN_FIELDS  # noqa: E402
from sfray.train.data import LoaderData, open_dataset  # noqa: E402
from sfray.train.optim import build_optimizer  # noqa: E402
from sfray.train.stage1_task import Stage1Task  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _make_dataset(root: Path, num: int, res: int) -> Path:
    from sfray.config import GenerateJobConfig
    from sfray.data.manifest import Manifest
    from sfray.data.shard import write_shard
    from sfray.generation.producer import SampleProducer

    cfg = load_config(GenerateJobConfig, ROOT / "configs" / "generate" / "quickstart.yaml",
                      [f"output_dir={root}", f"generate.num_samples={num}", f"generate.resolution={res}"])
    producer = SampleProducer(cfg, device="cpu")
    receipts = []
    for start in range(0, num, 64):
        made = producer.produce(np.arange(start, min(start + 64, num)))
        receipts.append(write_shard(root, [(p.sample_id, p.record) for p in made if p.record is not None]))
    Manifest.commit(root, receipts)
    return root


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="tiny")
    ap.add_argument("--size", type=int, default=128, help="model input side")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=20, help="timed steps per measurement")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--workers", type=int, default=1, help="DataLoader processes")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--amp", default="off", choices=("off", "bf16", "fp16"))
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    ap.add_argument("--dataset", help="an sfray dataset (default: generate --num samples at --res)")
    ap.add_argument("--num", type=int, default=128)
    ap.add_argument("--res", type=int, default=256)
    ap.add_argument("--append", help="append a row to this markdown table (docs/benchmarks.md)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.dataset) if args.dataset else _make_dataset(Path(tmp) / "ds", args.num, args.res)
        cfg = load_config(TrainJobConfig, None, [f"data.dataset_dir={root}", f"model.size={args.model}",
                                                 f"crop.input_size={args.size}", f"train.batch_size={args.batch}"])
        ds = open_dataset(root, TRAIN_FIELDS)
        data = LoaderData(ds, np.arange(len(ds)), args.batch, num_workers=args.workers)
        if data.batches_per_epoch < 1:
            raise SystemExit(f"need at least {args.batch} samples, the dataset has {len(ds)}")
        task = Stage1Task(cfg)
        torch.manual_seed(0)
        model = task.build_model().to(device).train()
        opt = build_optimizer(task.param_groups(model), cfg.optim)
        gen = torch.Generator()
        dtype = {"off": None, "bf16": torch.bfloat16, "fp16": torch.float16}[args.amp]
        scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)

        def batches():
            epoch = 0
            while True:
                yield from data.epoch(epoch)
                epoch += 1

        def step(prepared) -> None:
            ctx = torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()
            with ctx:
                loss = task.training_step(model, prepared, gen)["loss"]
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            opt.zero_grad(set_to_none=True)

        def timed(fn, n: int) -> float:
            for _ in range(args.warmup):
                fn()
            _sync(device)
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            _sync(device)
            return n * args.batch / (time.perf_counter() - t0)

        it = batches()
        first = task.prepare(next(it), train=True, device=device, generator=gen)
        model.set_depth_normalisation(2.5, 0.1)
        rates = {
            "loader": timed(lambda: task.prepare(next(it), train=True, device=device, generator=gen), 2 * args.steps),
            "train": timed(lambda: step(task.prepare(next(it), train=True, device=device, generator=gen)), args.steps),
            "compute": timed(lambda: step(first), args.steps),
        }
    result = {
        "benchmark": "train", "model": args.model, "input": args.size, "batch": args.batch, "device": args.device,
        "amp": args.amp, "loader_workers": args.workers, "threads": torch.get_num_threads(),
        "images_per_s": {k: round(v, 1) for k, v in rates.items()},
        "train_vs_compute": round(rates["train"] / rates["compute"], 3),
        "loader_vs_train": round(rates["loader"] / rates["train"], 2),
        "machine": f"{platform.machine()} {os.cpu_count()} cpu, torch {torch.__version__}"
                   + (f", {torch.cuda.get_device_name()}" if device.type == "cuda" else ""),
        "date": datetime.date.today().isoformat(),
    }
    print(json.dumps(result, indent=2))
    if args.append:
        from bench.common import append_rows, command

        r = result["images_per_s"]
        row = (f"| train Stage I ({args.model}, {args.size}², batch {args.batch}, {args.device}) | {result['machine']} "
               f"| {result['date']} | `{command('bench/train.py', sys.argv[1:])}` | {r['train']} img/s end to end "
               f"({result['train_vs_compute']:.0%} of compute alone); loader + augmentation alone {r['loader']} img/s "
               f"| compute on a cached batch {r['compute']} img/s (same run) |")
        append_rows(Path(args.append), "## Stage I training (bench/train.py)", [row])
    return 0


if __name__ == "__main__":
    sys.exit(main())
