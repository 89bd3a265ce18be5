"""``align_report.md``: the human-readable side of ``align_report.json``."""

from __future__ import annotations

from typing import Any


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    return str(v)


def render_markdown(report: dict[str, Any]) -> str:
    """Tables of the before/after figures, the fitted map and the fit's progress."""
    b, a = report["before"], report["after"]
    lines = [
        "# Alignment report",
        "",
        f"Generator `{report['generator']}`, model `{report['model']}`, fitted on "
        f"{report['fit_samples']} samples at {report['fit_resolution']}², measured on {report['samples']} "
        f"held-out samples at {report['resolution']}² (landmarks against "
        f"{report.get('landmark_reference') or 'nothing'}; fit landmarks: {report['fit_landmarks']}). "
        f"{report['iterations']} iterations, {report['seconds']} s.",
        "",
        "| figure | before | after |",
        "|---|---|---|",
        f"| landmark error (px at {report['resolution']}²) | {_fmt(b['landmark_px'])} "
        f"| {_fmt(a['landmark_px'])} |",
        f"| mean abs depth difference (world units) | {_fmt(b['depth_abs'])} | {_fmt(a['depth_abs'])} |",
        f"| mask IoU | {_fmt(b['mask_iou'])} | {_fmt(a['mask_iou'])} |",
        "",
        f"Convention: {report['convention']}.",
        "",
        "Fitted map A:",
        "",
        "```",
        *("  ".join(f"{x: .6f}" for x in row) for row in report["map"]),
        "```",
        "",
        "Summary: " + ", ".join(f"{k} {_fmt(v)}" for k, v in report["map_summary"].items()),
    ]
    if "knob" in report:
        lines += ["", f"Misalignment knob S = {report['knob']}; A·S⁻¹: "
                  + ", ".join(f"{k} {_fmt(v)}" for k, v in report["map_times_knob_inverse"].items())]
    lines += ["", "| iteration | cost | accepted | change |", "|---|---|---|---|"]
    for h in report["history"]:
        lines.append(f"| {h['iteration']} | {h['cost']:.5g} | {h['accepted']} | {h['change']:.2e} |")
    return "\n".join(lines) + "\n"
