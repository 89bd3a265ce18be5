"""Annotation fidelity on quickstart samples (docs/annotation.md keeps the before/after numbers).

Measured as a vision scientist would check a dataset, with rules of their own (not sfray's code):

* **jaw kink**: for every visible jaw triplet (k-1, k, k+1) whose chord |p(k+1) - p(k-1)| exceeds
  3 px, the distance of p(k) from the chord's midpoint over the chord; p99 over all triplets;
* **visibility vs the rendered surface**: a landmark inside the image counts as seen when some
  foreground pixel of the 3x3 block round it holds, in the *stored* depth map, a depth within
  8 mm of head-model space (0.02 world units) of the landmark's camera z; the share of in-image
  landmarks whose flag disagrees;
* **jaw visibility**: the mean of the 17 jaw flags (and of the surface rule) in views with
  |yaw| < 20 degrees, per elevation band and overall;
* **quality gate**: the share of samples a rule drops, on aligned samples without and with hair
  caps and on samples rendered through a known misalignment (``faults.misalign``): the README's
  ``min_mask_iou=0.95`` and, where this sfray has it, ``quality.preset=strict``.

It runs on any sfray checkout with the same record format (so the "before" numbers come from the
code before the fixes, the "after" from the code after), writes ``results.json``, ``results.md``
and ``samples.npz`` (the quickstart set's images and landmarks) into ``--out``; ``--sheet`` turns
two ``samples.npz`` into a before/after contact sheet of the worst cases.

    python bench/annotation_fidelity.py --label after --out outputs/fidelity_after
    python bench/annotation_fidelity.py --sheet BEFORE/samples.npz AFTER/samples.npz \\
        --png docs/images/annotation_fidelity.png
"""

from __future__ import annotations

import argparse
import io
import json
import math
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
#: 8 mm of head-model space in generator world units (head -> world scales by 2.5).
SURFACE_TOLERANCE = 0.02
MIN_CHORD_PX = 3.0
NEAR_FRONTAL_YAW = 20.0
ELEVATION_BANDS = ((-40.0, -10.0), (-10.0, 10.0), (10.0, 17.0), (17.0, 40.0))
MISALIGNMENTS = {
    "rotate 3 deg about x": [3, 0, 0, 0, 0, 0, 1], "rotate 3 deg about y": [0, 3, 0, 0, 0, 0, 1],
    "rotate 3 deg about z": [0, 0, 3, 0, 0, 0, 1], "shift 0.02 along x": [0, 0, 0, 0.02, 0, 0, 1],
    "shift 0.02 along y": [0, 0, 0, 0, 0.02, 0, 1], "shift 0.02 along z": [0, 0, 0, 0, 0, 0.02, 1],
    "scale 1.04": [0, 0, 0, 0, 0, 0, 1.04], "scale 0.96": [0, 0, 0, 0, 0, 0, 0.96],
}


# ------------------------------------------------------------------------------------------------
# the measures (independent of sfray's implementation)
# ------------------------------------------------------------------------------------------------


def kink_ratios(lm: np.ndarray, vis: np.ndarray) -> list[float]:
    out = []
    for k in range(1, 16):
        if vis[k - 1] and vis[k] and vis[k + 1]:
            chord = float(np.linalg.norm(lm[k + 1] - lm[k - 1]))
            if chord > MIN_CHORD_PX:
                out.append(float(np.linalg.norm(lm[k] - 0.5 * (lm[k - 1] + lm[k + 1]))) / chord)
    return out


def seen_by_surface(lm: np.ndarray, z: np.ndarray, depth: np.ndarray,
                    mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(inside (68,), seen (68,)): the 3x3 block / 8 mm rule on the stored depth map."""
    h, w = depth.shape
    inside = (lm[:, 0] >= 0) & (lm[:, 0] < w) & (lm[:, 1] >= 0) & (lm[:, 1] < h)
    seen = np.zeros(len(lm), bool)
    for i in np.flatnonzero(inside):
        c, r = int(lm[i, 0]), int(lm[i, 1])
        block = (slice(max(r - 1, 0), r + 2), slice(max(c - 1, 0), c + 2))
        seen[i] = bool(np.any(mask[block] & (np.abs(depth[block] - z[i]) <= SURFACE_TOLERANCE)))
    return inside, seen


def view_angles(camera: np.ndarray) -> tuple[float, float]:
    """(yaw, elevation) degrees of the camera centre round the world origin (the sampler's orbit)."""
    c = np.asarray(camera[:16], dtype=np.float64).reshape(4, 4)[:3, 3]
    return math.degrees(math.atan2(c[0], c[2])), math.degrees(math.atan2(c[1], math.hypot(c[0], c[2])))


# ------------------------------------------------------------------------------------------------
# running sfray
# ------------------------------------------------------------------------------------------------


def produce(args: argparse.Namespace, overrides: list[str], n: int, res: int | None = None) -> list[dict]:
    from sfray.config.loader import load_config
    from sfray.config.schema import GenerateJobConfig
    from sfray.data.record import decode_record
    from sfray.generation.producer import SampleProducer

    cfg = load_config(GenerateJobConfig, ROOT / "configs/generate/quickstart.yaml", [
        f"seed={args.seed}", f"generate.resolution={res or args.res}", f"generate.batch_size={args.batch}",
        "quality.policy=keep", *overrides])
    producer = SampleProducer(cfg, device="cpu")
    records, t0 = [], time.monotonic()
    for start in range(0, n, args.batch):
        ids = np.arange(start, min(start + args.batch, n))
        records += [decode_record(p.record) for p in producer.produce(ids, keep_dropped=True)]
        done = len(records)
        rate = done / max(time.monotonic() - t0, 1e-9)
        print(f"  {done}/{n} samples, {rate:.2f}/s, ETA {(n - done) / max(rate, 1e-9):.0f} s", file=sys.stderr)
    return records


def strict_gate(res: int):
    """``quality.preset=strict``'s failure test, or None when this sfray has no such preset."""
    from sfray.annotate.quality import QualityGate
    from sfray.config.registries import QUALITY_PRESETS
    from sfray.config.schema import QualityConfig

    if "strict" not in QUALITY_PRESETS.names():
        return None
    gate = QualityGate(QualityConfig(preset="strict"), res)
    return lambda fig: bool(gate.failures(fig))


def drop_rates(records: list[dict], strict) -> dict:
    figs = [r.get("quality", {}) for r in records]
    out = {"n": len(records), "mask_iou_0.95": float(np.mean([f.get("mask_iou", 1.0) < 0.95 for f in figs]))}
    out["strict"] = None if strict is None else float(np.mean([strict(f) for f in figs]))
    if figs and "face_depth" in figs[0]:
        v = np.array([f["face_depth"] for f in figs])
        out["face_depth_p50"], out["face_depth_min"], out["face_depth_max"] = (float(np.median(v)), float(v.min()),
                                                                               float(v.max()))
    iou = np.array([f.get("mask_iou", np.nan) for f in figs])
    out["mask_iou_min"], out["mask_iou_p50"] = float(np.nanmin(iou)), float(np.nanmedian(iou))
    return out


def core_measures(records: list[dict]) -> dict:
    kinks, n_in, n_bad, jaw = [], 0, 0, []
    worst = []
    for r in records:
        lm, vis = r["landmarks_2d"].astype(np.float64), r["landmarks_visible"].astype(bool)
        inside, seen = seen_by_surface(lm, r["landmarks_3d"][:, 2], r["depth"], r["mask"].astype(bool))
        n_in += int(inside.sum())
        n_bad += int((inside & (seen != vis)).sum())
        ks = kink_ratios(lm, vis)
        kinks += ks
        yaw, el = view_angles(r["camera"])
        if abs(yaw) < NEAR_FRONTAL_YAW:
            jaw.append((el, float(vis[:17].mean()), float(seen[:17].mean())))
        worst.append((int(r["sample_id"]), yaw, el, max(ks) if ks else 0.0, float(1 - seen[:17].mean())))
    jaw_a = np.array(jaw)
    bands = {}
    for lo, hi in ELEVATION_BANDS:
        sel = (jaw_a[:, 0] >= lo) & (jaw_a[:, 0] < hi)
        if sel.any():
            bands[f"[{lo:g}, {hi:g})"] = {"n": int(sel.sum()), "flags": float(jaw_a[sel, 1].mean()),
                                          "surface": float(jaw_a[sel, 2].mean())}
    k = np.array(kinks)
    return {
        "samples": len(records),
        "kink": {"triplets": int(k.size), "p99": float(np.percentile(k, 99)), "max": float(k.max()),
                 "mean": float(k.mean())},
        "visibility": {"in_image": n_in, "disagree": n_bad, "share": n_bad / max(n_in, 1)},
        "jaw_visibility_near_frontal": {"views": len(jaw), "flags": float(jaw_a[:, 1].mean()),
                                        "surface": float(jaw_a[:, 2].mean()), "by_elevation": bands},
        "per_sample": worst,
    }


def save_samples(records: list[dict], path: Path) -> None:
    from sfray.io.atomic import atomic_path

    arrays = {name: np.stack([r[name] for r in records]) for name in
              ("image", "landmarks_2d", "landmarks_visible", "camera", "sample_id")}
    arrays["sample_id"] = np.array([int(r["sample_id"]) for r in records])
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **arrays)


def markdown(res: dict) -> str:
    c = res["core"]
    j = c["jaw_visibility_near_frontal"]
    lines = [f"# Annotation fidelity ({res['label']})", "",
             f"{res['samples']} quickstart samples at {res['resolution']}², seed {res['seed']}; {res['machine']}; "
             f"{res['date']}; `{res['command']}`", "",
             "| measure | value |", "| --- | --- |",
             f"| jaw kink p99 (max, mean) | {c['kink']['p99']:.3f} ({c['kink']['max']:.3f}, {c['kink']['mean']:.3f}) |",
             f"| visibility disagreeing with the surface | {100 * c['visibility']['share']:.2f} % "
             f"({c['visibility']['disagree']} of {c['visibility']['in_image']}) |",
             f"| jaw visibility, \\|yaw\\| < 20° (flags / surface rule) | {j['flags']:.3f} / {j['surface']:.3f} "
             f"({j['views']} views) |"]
    for band, v in j["by_elevation"].items():
        lines.append(f"| ... elevation {band}° | {v['flags']:.3f} / {v['surface']:.3f} ({v['n']} views) |")
    gate_res = res.get("gate_resolution", res["resolution"])
    lines += ["", f"Quality-gate sets at {gate_res}² (first row: the set above).", "",
              "| quality gate set | drop: mask IoU < 0.95 | drop: strict preset | face_depth min / median / max |",
              "| --- | --- | --- | --- |"]
    for name, g in res["gate"].items():
        strict = "n/a" if g["strict"] is None else f"{100 * g['strict']:.1f} %"
        fd = (f"{g['face_depth_min']:.5f} / {g['face_depth_p50']:.5f} / {g['face_depth_max']:.5f}"
              if "face_depth_p50" in g else "n/a")
        lines.append(f"| {name} ({g['n']}) | {100 * g['mask_iou_0.95']:.1f} % | {strict} | {fd} |")
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> None:
    from sfray.io.atomic import atomic_write_text

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    print(f"quickstart set: {args.samples} samples", file=sys.stderr)
    records = produce(args, [], args.samples)
    save_samples(records, out / "samples.npz")
    strict = strict_gate(args.res)
    res = {"label": args.label, "samples": args.samples, "resolution": args.res, "seed": args.seed,
           "machine": f"{platform.machine()}, {platform.python_version()}, CPU",
           "date": time.strftime("%Y-%m-%d"), "command": " ".join(["python", *sys.argv]),
           "gate_resolution": args.gate_res, "core": core_measures(records),
           "gate": {f"quickstart (hair caps on half, {args.res}²)": drop_rates(records, strict)}}
    sets = {"aligned, no hair caps": ["generator.procedural.hair_cap_prob=0.0"],
            "aligned, all hair caps": ["generator.procedural.hair_cap_prob=1.0"]}
    if not args.quick:
        sets.update({f"misaligned: {k}": [f"faults.misalign=[{','.join(str(x) for x in v)}]"]
                     for k, v in MISALIGNMENTS.items()})
    for name, overrides in sets.items():
        print(f"{name}: {args.gate_samples} samples at {args.gate_res}", file=sys.stderr)
        res["gate"][name] = drop_rates(produce(args, overrides, args.gate_samples, args.gate_res), strict)
    res["seconds"] = time.monotonic() - t0
    atomic_write_text(out / "results.json", json.dumps(res, indent=1) + "\n")
    atomic_write_text(out / "results.md", markdown(res))
    print(markdown(res))


# ------------------------------------------------------------------------------------------------
# the contact sheet
# ------------------------------------------------------------------------------------------------


def _panel(image: np.ndarray, lm: np.ndarray, vis: np.ndarray, box: tuple[float, float, float, float],
           text: str, size: int = 320):
    from PIL import Image, ImageDraw

    x0, y0, x1, y1 = box
    crop = Image.fromarray(image.transpose(1, 2, 0)).crop((int(x0), int(y0), int(x1), int(y1)))
    s = size / max(x1 - x0, y1 - y0)
    crop = crop.resize((size, size), Image.BICUBIC)
    d = ImageDraw.Draw(crop)
    pts = [((x - x0) * s, (y - y0) * s) for x, y in lm]
    d.line(pts[:17], fill=(255, 255, 0), width=2)
    for k, (x, y) in enumerate(pts):
        r = 4 if k < 17 else 2
        d.ellipse([x - r, y - r, x + r, y + r], fill=(40, 220, 40) if vis[k] else (235, 30, 30))
    d.rectangle([0, 0, size, 18], fill=(0, 0, 0))
    d.text((4, 3), text, fill=(255, 255, 255))
    return crop


def sheet(before_path: Path, after_path: Path, png: Path, per_group: int = 3) -> None:
    from PIL import Image, ImageDraw

    from sfray.io.atomic import atomic_path
    from sfray.viz.sheet import contact_sheet

    before, after = np.load(before_path), np.load(after_path)
    rows = []
    for i, sid in enumerate(before["sample_id"]):
        lm, vis = before["landmarks_2d"][i], before["landmarks_visible"][i]
        yaw, el = view_angles(before["camera"][i])
        ks = kink_ratios(lm.astype(np.float64), vis)
        rows.append((int(sid), i, yaw, el, max(ks) if ks else 0.0, float((~vis[:17]).mean())))
    semi = sorted((r for r in rows if 25 <= abs(r[2]) <= 50), key=lambda r: -r[4])[:per_group]
    above = sorted((r for r in rows if abs(r[2]) < NEAR_FRONTAL_YAW and r[3] > 17), key=lambda r: -r[5])[:per_group]
    tiles = []
    for sid, i, yaw, el, kink, hidden in semi + above:
        j = int(np.flatnonzero(after["sample_id"] == sid)[0])
        both = np.concatenate([before["landmarks_2d"][i], after["landmarks_2d"][j]])
        lo, hi = both.min(0), both.max(0)
        c, half = 0.5 * (lo + hi), 0.62 * float((hi - lo).max())
        box = (c[0] - half, c[1] - half, c[0] + half, c[1] + half)
        for tag, data, k in (("before", before, i), ("after", after, j)):
            lm, vis = data["landmarks_2d"][k].astype(np.float64), data["landmarks_visible"][k]
            ks = kink_ratios(lm, vis)
            text = (f"{tag}  id {sid}  yaw {yaw:+.0f} el {el:+.0f}  kink {max(ks) if ks else 0:.2f}  "
                    f"jaw seen {int(vis[:17].sum())}/17")
            tiles.append(_panel(data["image"][k], lm, vis, box, text))
    img = contact_sheet(tiles, 2)
    lines = ["left: before, right: after. Rows 1-3: semi-profile (worst jaw kink before);",
             "rows 4-6: camera above, |yaw| < 20 (most hidden jaw points before).",
             "Green: flagged visible, red: flagged hidden; yellow: the jaw contour."]
    legend = Image.new("RGB", (img.width, 14 * len(lines) + 6), (0, 0, 0))
    for n, line in enumerate(lines):
        ImageDraw.Draw(legend).text((6, 4 + 14 * n), line, fill=(255, 255, 255))
    full = Image.new("RGB", (img.width, img.height + legend.height))
    full.paste(legend, (0, 0))
    full.paste(img, (0, legend.height))
    buf = io.BytesIO()
    full.save(buf, format="PNG")
    with atomic_path(png) as tmp:
        Path(tmp).write_bytes(buf.getvalue())
    print(f"wrote {png} ({len(tiles)} panels)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--label", default="after")
    p.add_argument("--out", default="outputs/annotation_fidelity")
    p.add_argument("--samples", type=int, default=96)
    p.add_argument("--gate-samples", type=int, default=96)
    p.add_argument("--res", type=int, default=256)
    p.add_argument("--gate-res", type=int, default=256, help="resolution of the quality-gate sets")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--quick", action="store_true", help="skip the misaligned sets")
    p.add_argument("--sheet", nargs=2, metavar=("BEFORE_NPZ", "AFTER_NPZ"))
    p.add_argument("--png", default="docs/images/annotation_fidelity.png")
    args = p.parse_args()
    if args.sheet:
        sheet(Path(args.sheet[0]), Path(args.sheet[1]), Path(args.png))
    else:
        run(args)


if __name__ == "__main__":
    main()
