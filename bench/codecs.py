"""Record codecs: bytes per record, encode and decode speed, on real quickstart samples.

Generates ``--samples`` samples with the quickstart config (procedural head + renderer, the
annotator, the quality figures) at ``--res`` once, then encodes and decodes their image,
segmentation and depth with each lossless candidate (PNG at several zlib levels, lossless WebP,
raw + zstd at several levels; depth: today's float16 + zlib vs float16 + zstd), one core, and whole
records with each ``generate.image_format`` x ``generate.array_codec`` pair. The baseline of every
row is today's default (``png`` + ``zlib``), measured in the same run. Prints JSON lines.

    python bench/codecs.py --samples 16 --res 512
    python bench/codecs.py --samples 16 --res 512 --append docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
import zlib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def make_fields(samples: int, res: int) -> list[dict]:
    from sfray.config import GenerateJobConfig, load_config
    from sfray.generation.producer import SampleProducer

    cfg = load_config(GenerateJobConfig, ROOT / "configs/generate/quickstart.yaml", [
        "output_dir=/tmp/sfray-bench-codecs", f"generate.resolution={res}", "generate.batch_size=8",
        "generator.device=cpu"])
    raw = SampleProducer(cfg).generate(np.arange(samples, dtype=np.int64), keep_dropped=True)
    return [r.fields for r in raw]


def _png(level: int):
    from PIL import Image

    def enc(a: np.ndarray) -> bytes:
        buf = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(a.transpose(1, 2, 0) if a.ndim == 3 else a)).save(
            buf, format="PNG", compress_level=level)
        return buf.getvalue()

    def dec(b: bytes, a: np.ndarray) -> np.ndarray:
        return np.array(Image.open(io.BytesIO(b)))
    return enc, dec


def _webp(method: int):
    from PIL import Image

    def enc(a: np.ndarray) -> bytes:
        img = Image.fromarray(np.ascontiguousarray(a.transpose(1, 2, 0) if a.ndim == 3 else a))
        buf = io.BytesIO()
        img.save(buf, format="WEBP", lossless=True, quality=95, method=method)
        return buf.getvalue()

    def dec(b: bytes, a: np.ndarray) -> np.ndarray:
        return np.array(Image.open(io.BytesIO(b)))
    return enc, dec


def _zstd(level: int):
    import zstandard

    c, d = zstandard.ZstdCompressor(level=level), zstandard.ZstdDecompressor()

    def enc(a: np.ndarray) -> bytes:
        return c.compress(np.ascontiguousarray(a).tobytes())

    def dec(b: bytes, a: np.ndarray) -> np.ndarray:
        return np.frombuffer(d.decompress(b), dtype=a.dtype).reshape(a.shape)
    return enc, dec


def _zlib(level: int):
    def enc(a: np.ndarray) -> bytes:
        return zlib.compress(np.ascontiguousarray(a).tobytes(), level)

    def dec(b: bytes, a: np.ndarray) -> np.ndarray:
        return np.frombuffer(zlib.decompress(b), dtype=a.dtype).reshape(a.shape)
    return enc, dec


def candidates() -> dict[str, dict[str, tuple]]:
    """{field: {candidate: (encode, decode)}}; the first candidate of each field is today's."""
    from sfray.conventions import Field
    from sfray.data.record import PNG_COMPRESS_LEVEL, ZLIB_LEVEL

    png = {f"png level {lv}": _png(lv) for lv in (PNG_COMPRESS_LEVEL, 1, 6, 9)}
    zstd = {f"raw + zstd level {lv}": _zstd(lv) for lv in (1, 3, 9)}
    webp = {f"webp lossless method {m}": _webp(m) for m in (0, 4)}
    return {
        Field.IMAGE: {**png, **webp, **zstd},
        Field.SEGMENTATION: {**png, **zstd},
        Field.DEPTH: {f"f16 + zlib level {ZLIB_LEVEL}": _zlib(ZLIB_LEVEL), **zstd},
    }


def _timed(fn, items, repeat: int) -> tuple[list, float]:
    best = float("inf")
    out: list = []
    for _ in range(repeat):
        start = time.perf_counter()
        out = [fn(x) for x in items]
        best = min(best, time.perf_counter() - start)
    return out, best / len(items)


def measure_fields(fields: list[dict], repeat: int) -> list[dict]:
    from sfray.conventions import Field

    rows = []
    for name, cands in candidates().items():
        arrays = [np.asarray(f[name]) for f in fields]
        if name == Field.DEPTH:
            arrays = [a.astype("<f2") for a in arrays]
        for label, (enc, dec) in cands.items():
            blobs, enc_s = _timed(enc, arrays, repeat)
            pairs = list(zip(blobs, arrays))
            back, dec_s = _timed(lambda p: dec(*p), pairs, repeat)
            lossless = all(np.array_equal(b if b.shape == a.shape else np.asarray(b).transpose(2, 0, 1), a)
                           for b, a in zip(back, arrays))
            rows.append({"bench": "codecs", "field": name, "codec": label, "lossless": lossless,
                         "kib": round(float(np.mean([len(b) for b in blobs])) / 1024, 1),
                         "encode_ms": round(enc_s * 1e3, 2), "decode_ms": round(dec_s * 1e3, 2)})
    return rows


def measure_records(fields: list[dict], repeat: int) -> list[dict]:
    from sfray.data.record import decode_record, encode_record

    rows = []
    for image_format in ("png", "webp_lossless", "zstd"):
        for array_codec in ("zlib", "zstd"):
            recs, enc_s = _timed(lambda f: encode_record(f, image_format=image_format, array_codec=array_codec),
                                 fields, repeat)
            _, dec_s = _timed(decode_record, recs, repeat)
            rows.append({"bench": "codecs", "field": "record", "codec": f"{image_format} + {array_codec}",
                         "kib": round(float(np.mean([len(r) for r in recs])) / 1024, 1),
                         "encode_ms": round(enc_s * 1e3, 2), "decode_ms": round(dec_s * 1e3, 2)})
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--samples", type=int, default=16)
    p.add_argument("--res", type=int, default=512)
    p.add_argument("--repeat", type=int, default=2, help="best of this many passes")
    p.add_argument("--append", type=Path, default=None, help="append the rows to this markdown file")
    argv = sys.argv[1:]
    args = p.parse_args(argv)
    fields = make_fields(args.samples, args.res)
    rows = measure_fields(fields, args.repeat) + measure_records(fields, args.repeat)
    for r in rows:
        print(json.dumps(r))
    if args.append:
        append(args.append, argv, rows, args)


def append(path: Path, argv: list[str], rows: list[dict], args: argparse.Namespace) -> None:
    from bench.common import append_rows, command, machine, today

    dev, cmd = machine("cpu"), command("bench/codecs.py", argv)
    base = {}
    for r in rows:
        base.setdefault(r["field"], r)  # the first row of a field is today's default
    lines = []
    for r in rows:
        b = base[r["field"]]
        what = f"codec, {r['field']}, {args.res}², {args.samples} quickstart samples: {r['codec']}"
        lines.append(f"| {what} | {dev} | {today()} | `{cmd}` | {r['kib']} KiB, encode {r['encode_ms']} ms, "
                     f"decode {r['decode_ms']} ms | {b['codec']}: {b['kib']} KiB, {b['encode_ms']} / "
                     f"{b['decode_ms']} ms (same run) |")
    append_rows(path, "## Record codecs (bench/codecs.py)", lines)


if __name__ == "__main__":
    main()
