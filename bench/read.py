"""Reader throughput: sfray records decoded per second on one core, with the baseline in the same run.

Builds a temporary dataset of random-but-smooth samples (every Field filled), then times, in this
single process:
- ``lmdb_raw``: record bytes fetched from the shards (no decoding);
- ``decode_all``: ``SfrayDataset[i]`` with every field decoded (image, seg, depth, mask, landmarks, ...);
- ``decode_image``: only the image decoded;
- ``baseline_authors_layout``: the same samples read from the authors' folder layout (PNG image,
  colour-seg PNG decoded back to ids, 8-bit depth PNG, JSON annotation), as their loader would.

    python bench/read.py --num 256 --size 256 [--format png] [--append docs/benchmarks.md]

Prints one JSON object. Rates are samples/s for one process (one core), best of ``--repeat``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sfray.conventions import NUM_LANDMARKS, NUM_SEG_CLASSES, Field  # noqa: E402
from sfray.data.colors import rgb_to_ids  # noqa: E402
from sfray.data.export import export_authors_layout  # noqa: E402
from sfray.data.manifest import Manifest  # noqa: E402
from sfray.data.record import encode_record  # noqa: E402
from sfray.data.shard import write_shard  # noqa: E402
from sfray.data.torch_dataset import SfrayDataset  # noqa: E402


def _sample(i: int, size: int) -> dict:
    rng = np.random.default_rng(i)
    yy, xx = np.mgrid[0:size, 0:size] / size
    image = np.stack([200 * xx + 20, 180 * yy + 30, 120 * xx * yy + 60]) + rng.normal(0, 4, (3, size, size))
    seg = (np.floor(xx * 5) + 5 * np.floor(yy * 4)).astype(np.uint8) % NUM_SEG_CLASSES
    mask = (xx - 0.5) ** 2 + (yy - 0.5) ** 2 < 0.16
    return {Field.SAMPLE_ID: i, Field.SEED: i, Field.GENERATOR: "bench", Field.QUALITY: {"q": 1.0},
            Field.IMAGE: np.clip(image, 0, 255).astype(np.uint8), Field.SEGMENTATION: seg,
            Field.DEPTH: ((2.5 + 0.2 * xx) * mask).astype(np.float32), Field.MASK: mask,
            Field.LANDMARKS_2D: (rng.random((NUM_LANDMARKS, 2)) * size).astype(np.float32),
            Field.LANDMARKS_3D: rng.random((NUM_LANDMARKS, 3)).astype(np.float32),
            Field.LANDMARKS_VISIBLE: rng.random(NUM_LANDMARKS) > 0.1,
            Field.CAMERA: rng.random(25).astype(np.float32), Field.SHAPE: rng.random(100).astype(np.float32),
            Field.EXPRESSION: rng.random(50).astype(np.float32), Field.POSE: np.zeros(15, np.float32),
            Field.LATENT: rng.random(512).astype(np.float32)}


def _best_rate(fn, n: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return n / best


def _authors_reader(root: Path, n: int):
    from PIL import Image

    def run():
        for i in range(n):
            name = f"{i:05d}"
            np.asarray(Image.open(root / "images" / f"{name}.png").convert("RGB"))
            rgb_to_ids(np.asarray(Image.open(root / "seg" / f"{name}.png").convert("RGB")))
            np.asarray(Image.open(root / "depth" / f"{name}.png"))
            json.loads((root / "annotations" / f"{name}.json").read_text())
    return run


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--num", type=int, default=256)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--format", default="png", choices=("png", "jpeg", "webp"))
    ap.add_argument("--per-shard", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--append", help="append a row to this markdown table (docs/benchmarks.md)")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ds"
        receipts = []
        for start in range(0, args.num, args.per_shard):
            ids = range(start, min(start + args.per_shard, args.num))
            recs = [(i, encode_record(_sample(i, args.size), image_format=args.format)) for i in ids]
            receipts.append(write_shard(root, recs))
        Manifest.commit(root, receipts)
        ds = SfrayDataset(root)
        ds_img = SfrayDataset(root, fields=(Field.IMAGE,))
        export_authors_layout(root, Path(tmp) / "authors")
        rates = {
            "lmdb_raw": _best_rate(lambda: [ds.raw(i) for i in range(len(ds))], args.num, args.repeat),
            "decode_all": _best_rate(lambda: [ds[i] for i in range(len(ds))], args.num, args.repeat),
            "decode_image": _best_rate(lambda: [ds_img[i] for i in range(len(ds))], args.num, args.repeat),
            "baseline_authors_layout": _best_rate(_authors_reader(Path(tmp) / "authors", args.num), args.num,
                                                  args.repeat),
        }
        result = {
            "benchmark": "read", "num": args.num, "size": args.size, "image_format": args.format,
            "record_bytes_mean": int(sum(r.nbytes for r in receipts) / args.num),
            "samples_per_s_one_core": {k: round(v, 1) for k, v in rates.items()},
            "speedup_vs_authors_layout": round(rates["decode_all"] / rates["baseline_authors_layout"], 2),
            "machine": f"{platform.machine()} {os.cpu_count()} cpu, {platform.python_implementation()} "
                       f"{platform.python_version()}",
            "date": datetime.date.today().isoformat(),
        }
    print(json.dumps(result, indent=2))
    if args.append:
        from bench.common import append_rows, command

        r = result["samples_per_s_one_core"]
        row = (f"| read (records decoded/s, 1 core) | {result['machine']} | {result['date']} | "
               f"`{command('bench/read.py', sys.argv[1:])}` | decode_all {r['decode_all']}/s, image only "
               f"{r['decode_image']}/s, raw LMDB {r['lmdb_raw']}/s ({result['record_bytes_mean']} B/record) | "
               f"authors' folder layout {r['baseline_authors_layout']}/s |")
        append_rows(Path(args.append), "## Record reader (bench/read.py)", [row])
    return 0


if __name__ == "__main__":
    sys.exit(main())
