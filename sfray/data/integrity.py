"""Check committed manifest rows against their records: the one check behind ``sfray dataset
verify`` and the resume check of a rerun (which regenerates what it finds).

For each row with a shard: the shard name is an sfray name (never a path elsewhere), the file
exists, opens and is not truncated, the key exists, the record header parses, its blob table stays
inside the record, its ``sample_id`` agrees, its format fits the declaration (``record_format``)
and, at the ``records`` level, the sha256 of its bytes equals the manifest checksum. The
``shards`` level reads only each record's header (and the shard's own checksum list), which is
cheap enough for very large datasets; ``records`` re-reads every byte (docs/reliability.md).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sfray.config.registries import RESUME_CHECKS
from sfray.conventions import Column, Field
from sfray.data import layout
from sfray.data.record import read_header, record_checksum
from sfray.data.record_format import blob_bounds_problem, format_problems, record_format
from sfray.data.shard import ShardReader
from sfray.errors import AssetError

#: How much a check reads: every record's bytes, or only headers and shard metadata.
CHECK_LEVELS = RESUME_CHECKS.names()


@dataclass(frozen=True)
class RowProblem:
    """What is wrong with one committed row. ``whole_shard``: the shard file itself is missing,
    unreadable or truncated, so every row of it has the problem."""

    sample_id: int
    shard: str
    problem: str
    whole_shard: bool = False

    def __str__(self) -> str:
        if self.whole_shard:
            name = self.shard if layout.is_shard_name(self.shard) else repr(self.shard)
            return f"sample {self.sample_id}: shard {name}: {self.problem}"
        return f"sample {self.sample_id}: {self.problem}"


@dataclass
class CheckResult:
    problems: list[RowProblem]
    checked: int  # rows whose record was looked at
    shards: int  # shard files opened


def _group(rows: Iterable[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    by_shard: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for row in rows:
        if row.get(Column.SHARD):
            by_shard[str(row[Column.SHARD])].append(row)
    return by_shard


def check_rows(dataset_dir: str | Path, rows: Iterable[Mapping[str, Any]], *, level: str = "records",
               declared: Mapping[str, Any] | None = None, partial: bool = False) -> CheckResult:
    """Problems of ``rows`` (manifest rows; those without a shard, i.e. dropped, are skipped).

    ``declared``: {field: {codec, dtype, shape}} every record must match (None: not checked);
    ``partial``: it names some fields only, others may exist.
    Raises nothing for damaged data: everything found is returned as a :class:`RowProblem`.
    """
    if level not in CHECK_LEVELS:
        raise ValueError(f"level must be one of {CHECK_LEVELS}")
    root = Path(dataset_dir)
    result = CheckResult([], 0, 0)
    for shard, shard_rows in sorted(_group(rows).items()):
        try:
            path = layout.shard_path(root, shard)
        except AssetError:
            result.problems += [RowProblem(int(r[Column.SAMPLE_ID]), shard, "not an sfray shard name (a "
                                           "path outside shards/?); not read", True) for r in shard_rows]
            continue
        if not path.is_file():
            result.problems += [RowProblem(int(r[Column.SAMPLE_ID]), shard, f"file {path} is missing", True)
                                for r in shard_rows]
            continue
        try:
            with ShardReader(path) as reader:
                meta = reader.meta()
                result.shards += 1
                listed = dict(zip(meta.get("keys") or [], meta.get("checksums") or []))
                for row in shard_rows:
                    result.checked += 1
                    problem = _check_row(reader, row, listed, level, declared, partial)
                    if problem:
                        result.problems.append(RowProblem(int(row[Column.SAMPLE_ID]), shard, problem))
        except AssetError as exc:
            result.problems += [RowProblem(int(r[Column.SAMPLE_ID]), shard, str(exc), True) for r in shard_rows]
    return result


def _check_row(reader: ShardReader, row: Mapping[str, Any], listed: Mapping[str, str], level: str,
               declared: Mapping[str, Any] | None, partial: bool) -> str | None:
    sid, key, shard = int(row[Column.SAMPLE_ID]), str(row[Column.KEY]), row[Column.SHARD]
    try:
        if level == "records":
            data = reader.get(key)
            if record_checksum(data) != row[Column.CHECKSUM]:
                return f"checksum mismatch in shard {shard} (record corrupted)"
            header, base = read_header(data)
            total = len(data)
        else:
            if listed.get(key) != row[Column.CHECKSUM]:
                return f"shard {shard} does not list this record's checksum (shard replaced?)"
            header, base, total = reader.header(key)
    except KeyError:
        return f"key '{key}' not found in shard {shard}"
    except AssetError as exc:
        return f"record does not decode ({exc})"
    bounds = blob_bounds_problem(header, base, total)
    if bounds:
        return f"record is corrupt: {bounds}"
    if header["meta"].get(Field.SAMPLE_ID) != sid:
        return f"record says sample_id {header['meta'].get(Field.SAMPLE_ID)}"
    if declared:
        problems = format_problems(record_format(header), declared, partial=partial)
        if problems:
            return "; ".join(problems)
    return None
