"""Cost of the quality figures and of per-sample refinement, beside plain generation, same run.

Each variant makes the same batches with the same procedural generator and annotator:

* ``base``: generate + annotate (what the producer does without the quality and refinement extras);
* ``quality``: + :class:`~sfray.annotate.quality.QualityGate` figures (no detector);
* ``refine``: + :class:`~sfray.align.refine.Refiner` (default ``annotate.refine``: rigid, 4
  steps at 64²) before annotating, + the quality figures.

Reported as milliseconds per sample (median over repeats, after one warm-up batch), plus the
overhead of each variant over ``base``. Prints one JSON line; ``--append`` adds a table row to
``docs/benchmarks.md``.

    python bench/align.py --res 256 --batch 8 --batches 3
    python bench/align.py --device cuda --res 512 --batch 16 --append docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def build(args: argparse.Namespace):
    from sfray.align.refine import Refiner
    from sfray.annotate.annotator import Annotator
    from sfray.annotate.quality import QualityGate
    from sfray.config import GenerateJobConfig, load_config
    from sfray.generators.factory import build_generator
    from sfray.head import build_head

    cfg = load_config(GenerateJobConfig, None, [f"generate.resolution={args.res}",
                                                f"generate.batch_size={args.batch}",
                                                "annotate.refine.enabled=true"])
    device = torch.device(args.device)
    head = build_head(cfg.head).to(device)
    gen = build_generator(cfg, head, device)
    return (cfg, head, gen, Annotator(head, args.res, cfg.annotate), QualityGate(cfg.quality, args.res),
            Refiner(cfg.annotate.refine, head.faces))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--res", type=int, default=256)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--batches", type=int, default=3, help="timed batches per variant (after a warm-up)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--append", type=Path, default=None, help="append a row to this markdown file")
    args = ap.parse_args()

    from sfray.sampling import make_specs

    cfg, head, gen, annotator, gate, refiner = build(args)
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)

    def specs(i: int):
        ids = np.arange(i * args.batch, (i + 1) * args.batch)
        return make_specs(ids, 0, cfg.sampling, cfg.camera, n_shape=head.n_shape,
                          n_expression=head.n_expression, latent_dim=gen.latent_dim)

    def base(s):
        out = gen.generate(s)
        return out, annotator.annotate(out)

    def quality(s):
        out, ann = base(s)
        return gate.evaluate(out, ann)

    def refine(s):
        out = gen.generate(s)
        rr = refiner.refine(out)
        ann = annotator.annotate(rr.output)
        return gate.evaluate(rr.output, ann, extra=rr.figures)

    variants = {"base": base, "quality": quality, "refine": refine}
    times: dict[str, list[float]] = {k: [] for k in variants}
    with torch.no_grad():
        for fn in variants.values():
            fn(specs(0))  # warm-up
        for i in range(1, args.batches + 1):  # interleaved, so load changes hit every variant alike
            s = specs(i)
            for name, fn in variants.items():
                sync()
                t = time.perf_counter()
                fn(s)
                sync()
                times[name].append((time.perf_counter() - t) / args.batch * 1000.0)
    ms = {k: statistics.median(v) for k, v in times.items()}
    result = {
        "bench": "align", "device": args.device, "res": args.res, "batch": args.batch,
        "batches": args.batches,
        "ms_per_sample": {k: round(v, 1) for k, v in ms.items()},
        "overhead_ms_per_sample": {"quality": round(ms["quality"] - ms["base"], 1),
                                   "refine_and_quality": round(ms["refine"] - ms["base"], 1)},
        "machine": f"{platform.machine()} {torch.get_num_threads()} threads, torch {torch.__version__}",
    }
    print(json.dumps(result))
    if args.append:
        from bench.common import append_rows, command

        over = result["overhead_ms_per_sample"]
        row = (f"| quality figures / refinement, {args.res}², batch {args.batch} | {result['machine']}, "
               f"{args.device} | {datetime.date.today()} | `{command('bench/align.py', sys.argv[1:])}` | quality "
               f"+{over['quality']} ms/sample, refine+quality +{over['refine_and_quality']} ms/sample | "
               f"generate+annotate {result['ms_per_sample']['base']} ms/sample (same run) |")
        append_rows(Path(args.append), "## Alignment: quality figures and per-sample refinement (bench/align.py)",
                    [row])

if __name__ == "__main__":
    main()
