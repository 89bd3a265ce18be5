"""What a benchmark scan finds wrong, by file: problem kinds, problems and the scan report.

A reader never stops at the first bad file: a real download has a few broken or missing files and
the rest is still worth using. Every problem names the file (relative to the benchmark root), its
kind and a short detail; the report counts them by kind and says, per split and task, how many
images are usable. ``sfray benchmark inspect`` prints this report.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Final


class ProblemKind:
    """The kinds of problems a reader reports (one place, used in messages and JSON)."""

    MISSING_IMAGE = "missing_image"  # an annotation file without its image
    MISSING_LABELS = "missing_labels"  # an image without its label map / masks
    MISSING_LANDMARKS = "missing_landmarks"  # an image without its landmark file
    MISSING_DEPTH = "missing_depth"  # a listed image without its depth map
    MISSING_FILE = "missing_file"  # a listed or required file (split list, mapping, image) is absent
    TRUNCATED_IMAGE = "truncated_image"  # an image or label PNG whose data ends early
    UNREADABLE = "unreadable"  # not a decodable image / not text
    LABEL_OUT_OF_RANGE = "label_out_of_range"  # label ids outside the schema
    WRONG_POINT_COUNT = "wrong_point_count"  # a landmark file with the wrong number of points
    MALFORMED = "malformed"  # a text file that does not follow the documented format
    SIZE_MISMATCH = "size_mismatch"  # a label or depth map whose size differs from its image's
    DUPLICATE = "duplicate"  # two images with the same stem (e.g. x.jpg and x.png)
    NO_SPLIT = "no_split"  # an image whose split cannot be decided


PROBLEM_KINDS: Final = tuple(v for k, v in vars(ProblemKind).items() if k.isupper())


@dataclass(frozen=True, order=True)
class Problem:
    """One problem with one file (``path`` relative to the benchmark root, posix separators)."""

    path: str
    kind: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.kind}: {self.path}" + (f" ({self.detail})" if self.detail else "")

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "kind": self.kind, "detail": self.detail}


@dataclass
class SplitCounts:
    """Images of one split, and how many of them have usable ground truth for each task."""

    images: int = 0
    usable: dict[str, int] = field(default_factory=dict)


@dataclass
class ScanReport:
    """The result of scanning a benchmark root: per-split counts and every problem found."""

    benchmark: str
    root: str
    splits: dict[str, SplitCounts]
    problems: list[Problem]
    schema: dict[str, Any] | None = None
    landmarks: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def counts_by_kind(self) -> dict[str, int]:
        return dict(sorted(Counter(p.kind for p in self.problems).items()))

    def as_dict(self) -> dict[str, Any]:
        return {
            "benchmark": self.benchmark,
            "root": self.root,
            "splits": {name: {"images": c.images, "usable": dict(c.usable)} for name, c in self.splits.items()},
            "label_schema": self.schema,
            "landmarks": self.landmarks,
            "problem_counts": self.counts_by_kind(),
            "problems": [p.as_dict() for p in sorted(self.problems)],
            "notes": list(self.notes),
        }

    def format_text(self, max_problems: int | None = None) -> str:
        """A human-readable summary: splits, schema, problems by kind, then each problem."""
        lines = [f"{self.benchmark} at {self.root}"]
        tasks = sorted({t for c in self.splits.values() for t in c.usable})
        lines.append("  split        images  " + "  ".join(f"{t:>9}" for t in tasks))
        for name, c in self.splits.items():
            lines.append(f"  {name:<12} {c.images:>6}  " + "  ".join(f"{c.usable.get(t, 0):>9}" for t in tasks))
        if self.schema:
            ids = ", ".join(f"{i} {n}" for i, n in enumerate(self.schema["classes"]))
            ignore = f"; {self.schema['ignore_id']} ignored" if self.schema.get("ignore_id") is not None else ""
            lines.append(f"  label schema '{self.schema['name']}': {ids}{ignore}")
        if self.landmarks:
            lines.append(f"  landmarks: {self.landmarks['count']} points ({self.landmarks['frame']})")
        for note in self.notes:
            lines.append(f"  note: {note}")
        if not self.problems:
            lines.append("  no problems found")
            return "\n".join(lines)
        counts = ", ".join(f"{k} {v}" for k, v in self.counts_by_kind().items())
        lines.append(f"  {len(self.problems)} problem(s): {counts}")
        shown = sorted(self.problems) if max_problems is None else sorted(self.problems)[:max_problems]
        lines.extend(f"    {p}" for p in shown)
        if len(shown) < len(self.problems):
            lines.append(f"    ... and {len(self.problems) - len(shown)} more (--max-problems, --json)")
        return "\n".join(lines)
