"""Probe ``sfray`` with hostile inputs and classify what a user sees (docs/reliability.md).

    python -m tests.hardening.probe_hostile [--only SUBSTRING] [--no-ray] [--out outputs/probe]

Every case runs the real CLI (``python -m sfray.cli``) in a subprocess, in a sandbox directory, and
is classified as:

* **clear**: exit code 2 and exactly one ``sfray: error:`` line that names the file or key (no
  traceback, no error-level log line), or the correct result where there is one (a rerun that
  regenerates damaged shards, a verify that reports the damaged row, a dump that stays inside
  its folder, exit 143/130 with "sfray: interrupted" for a signal);
* **unsafe**: data lost (committed rows or a user's files changed), a path escaped (anything
  written or read outside where it belongs), success reported over missing data, or code from a
  file executed (the hostile pickles' payload creates a marker file);
* **unclear**: anything else (a traceback, several lines, a message that names neither the file
  nor the key, a wrong exit code, a hang).

The run prints one row per case and the counts, and writes ``report.md`` (the table of
docs/reliability.md: fault tried | what the user sees | what is kept) and ``report.json``.
Mounting tmpfs (a full or read-only disk) needs root; those cases are skipped otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.hardening.probe_cases_data import dataset_cases  # noqa: E402
from tests.hardening.probe_cases_inputs import input_cases  # noqa: E402
from tests.hardening.probe_support import (  # noqa: E402
    ENV,
    ERROR_LINE,
    HOLDERS,
    MARKER,
    SNAP,
    STARTED,
    Case,
    Outcome,
    base_dataset,
    stat_tree,
    tree,
    umount_all,
    verified,
)


def cases() -> list[Case]:
    return input_cases() + dataset_cases()


# -- running and classifying ----------------------------------------------------------------------------

def run_case(case: Case, d: Path) -> tuple[subprocess.CompletedProcess, float]:
    start = time.monotonic()
    argv = case.argv(d)
    if case.signal_after_receipt is None:
        proc = subprocess.run(argv, env=ENV, cwd=d, capture_output=True, text=True, timeout=case.timeout)
        return proc, time.monotonic() - start
    popen = subprocess.Popen(argv, env=ENV, cwd=d, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    receipts = d / "ds" / "receipts"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not list(receipts.glob("*.json")) and popen.poll() is None:
        time.sleep(0.2)
    popen.send_signal(case.signal_after_receipt)
    out, err = popen.communicate(timeout=120)
    return subprocess.CompletedProcess(argv, popen.returncode, out, err), time.monotonic() - start


def classify(case: Case, d: Path, proc: subprocess.CompletedProcess) -> tuple[str, str, str]:
    """(verdict, what the user sees, why)."""
    err_lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    errors = [ln for ln in err_lines if ln.startswith("sfray: error:")]
    noisy = [ln for ln in err_lines if ERROR_LINE.search(ln)]
    sees = errors[0] if errors else (proc.stdout.strip().splitlines() or err_lines or [""])[-1]
    if not errors and case.expect == "ok":
        said = [ln for ln in err_lines if "missing or corrupt" in ln or "moved to" in ln]
        said += [ln for ln in proc.stdout.splitlines() if ln.startswith(("dataset:", "ok:"))]
        sees = " / ".join(said) or sees
    # unsafe first
    if (d / MARKER).exists():
        return "unsafe", sees, "code from the file was executed"
    if case.check is not None:
        reason = case.check(d, proc)
        if reason:
            return "unsafe", sees, reason
    for name, before in SNAP.items():
        if name.startswith(str(d)) and name.endswith("outside") and stat_tree(Path(name)) != before:
            return "unsafe", sees, "something outside changed"
    if tree(d.parent / "_sentinel") != SNAP["sentinel"]:
        return "unsafe", sees, "a file outside the case's folder changed"
    if proc.returncode == 0 and (d / "ds" / "manifest.parquet").is_file() and "generate" in proc.args \
            and not verified(d / "ds"):
        return "unsafe", sees, "success reported over missing or damaged data"
    # clear or unclear
    if case.expect == "signal":
        ok = proc.returncode in (130, 143) and err_lines[-1:] == ["sfray: interrupted"] and not noisy \
            and verified(d / "ds")
        return ("clear" if ok else "unclear"), (err_lines[-1] if err_lines else ""), "" if ok else proc.stderr[-500:]
    if case.expect in ("ok", "report"):
        want = 0 if case.expect == "ok" else 1
        good = proc.returncode == want and (case.correct is None or case.correct(d, proc)) and not noisy
        return ("clear" if good else "unclear"), sees, "" if good else f"rc={proc.returncode} {proc.stderr[-500:]}"
    names = case.names(d)
    if proc.returncode != 2:
        return "unclear", sees, f"exit code {proc.returncode}"
    if len(errors) != 1 or noisy:
        return "unclear", sees, f"{len(errors)} error lines, {len(noisy)} noisy lines"
    if names and not any(n in errors[0] for n in names):
        return "unclear", sees, f"does not name any of {names}"
    return "clear", sees, ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=None, help="run the cases whose fault contains this text")
    parser.add_argument("--no-ray", action="store_true", help="skip the cases that start Ray")
    parser.add_argument("--out", default=str(ROOT / "outputs" / "probe"), help="work and report folder")
    args = parser.parse_args(argv)
    out = Path(args.out)
    work = out / "work"
    umount_all(out)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    (work / "_sentinel").mkdir()
    (work / "_sentinel" / "keep.txt").write_text("must never change")
    SNAP["sentinel"] = tree(work / "_sentinel")
    base_dataset(work)
    root = os.geteuid() == 0
    outcomes: list[Outcome] = []
    selected = [c for c in cases() if (args.only is None or args.only in c.fault) and not (args.no_ray and c.ray)]
    try:
        for i, case in enumerate(selected):
            d = work / f"case{i:03d}"
            d.mkdir()
            if case.root_only and not root:
                outcomes.append(Outcome(case.fault, "skipped", "needs root (tmpfs)", case.kept, 0.0))
                continue
            try:
                if case.setup is not None:
                    case.setup(d)
                for sub in ("home", "mine"):
                    if (d / sub).exists():
                        SNAP[str(d / sub)] = tree(d / sub)
                if (d / "outside").exists():  # by stat only: reading would change the atime checked
                    SNAP[str(d / "outside")] = stat_tree(d / "outside")
                STARTED["t"] = time.time()
                proc, seconds = run_case(case, d)
                verdict, sees, why = classify(case, d, proc)
            except Exception as exc:  # noqa: BLE001 - a probe bug, or a hang
                verdict, sees, why, seconds = "unclear", f"probe: {type(exc).__name__}: {exc}", "", 0.0
            finally:
                for holder in HOLDERS:
                    holder.kill()
                    holder.wait()
                HOLDERS.clear()
            outcomes.append(Outcome(case.fault, verdict, sees[:300], case.kept, round(seconds, 1), why[:500]))
            print(f"[{i + 1:3d}/{len(selected)}] {verdict:7s} {seconds:5.1f}s  {case.fault}", flush=True)
            if verdict != "clear":
                print(f"          sees: {sees[:200]}\n          why: {why[:300]}", flush=True)
    finally:
        umount_all(out)
    counts = {v: sum(o.verdict == v for o in outcomes) for v in ("clear", "unclear", "unsafe", "skipped")}
    print(f"\n{len(outcomes)} cases: " + ", ".join(f"{n} {v}" for v, n in counts.items()))
    (out / "report.json").write_text(json.dumps({"counts": counts, "cases": [o.__dict__ for o in outcomes]},
                                                indent=1))
    esc = lambda s: s.replace("|", "\\|").replace("\n", " ")  # noqa: E731
    lines = ["| fault tried | what the user sees | what is kept | verdict |", "| --- | --- | --- | --- |"]
    for o in outcomes:
        seen = re.sub(r"/\S*/outputs/probe/work/case\d+", "…", o.sees)
        lines.append(f"| {esc(o.fault)} | {esc(seen)} | {esc(o.kept)} | {o.verdict} |")
    (out / "report.md").write_text("\n".join(lines) + "\n")
    return 1 if counts["unsafe"] else 0


if __name__ == "__main__":
    sys.exit(main())
