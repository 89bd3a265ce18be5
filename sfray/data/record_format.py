"""The declared format of a dataset's records, and the check of one record against it.

A checksum proves that a record is the one that was committed, not that it belongs in the
dataset: records of another resolution or image codec committed beside the others have valid
checksums. So ``dataset.yaml`` declares the format every record has (``record_format``: per field
its codec, dtype and shape; a dimension that legitimately varies, as in an imported folder of
mixed image sizes, is ``null``), and ``sfray dataset verify`` checks every record header against
it, and against the resolution and image codec of the config that made the dataset. A dataset
without a declaration is checked for consistency with its first record. Only headers are read:
no blob is decoded (docs/dataset.md, docs/reliability.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sfray.conventions import Field

FORMAT_KEY = "record_format"
FIELDS = "fields"
CODEC, DTYPE, SHAPE, OPTIONAL = "codec", "dtype", "shape", "optional"
#: Fields records gained after datasets had been written (the generator's own depth): optional in
#: every declaration, so a dataset whose first records predate them still verifies once a resumed
#: run appends records that carry them, and its old records still verify against a new declaration.
LATER_FIELDS = frozenset((Field.GENERATOR_DEPTH, Field.GENERATOR_MASK))


def record_format(header: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """{field: {codec, dtype, shape}} of one record header (``sfray.data.record.read_header``)."""
    return {str(name): {CODEC: str(codec), DTYPE: str(dtype), SHAPE: [int(d) for d in shape]}
            for name, codec, dtype, shape, _offset, _length in header["blobs"]}


def merge_formats(a: Mapping[str, Any] | None, b: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The declaration covering both: dims that differ become None, fields missing from one are
    optional. Codecs or dtypes that differ keep the first (the check will report the others)."""
    if a is None:
        return {k: dict(v) for k, v in b.items()}
    out: dict[str, dict[str, Any]] = {}
    for name in sorted(set(a) | set(b)):
        x, y = a.get(name), b.get(name)
        if x is None or y is None:
            out[name] = {**dict(x or y), OPTIONAL: True}  # type: ignore[arg-type]
            continue
        sx, sy = list(x[SHAPE]), list(y[SHAPE])
        shape = [d if d == e else None for d, e in zip(sx, sy)] if len(sx) == len(sy) else sx
        out[name] = {**dict(x), SHAPE: shape}
        if x.get(OPTIONAL) or y.get(OPTIONAL):
            out[name][OPTIONAL] = True
    return out


def config_expectation(config: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """What the generation config promises about the image: ``(3, R, R)`` uint8 in its codec."""
    gen = (config or {}).get("generate") or {}
    if not isinstance(gen, Mapping) or "resolution" not in gen or "image_format" not in gen:
        return {}
    r = int(gen["resolution"])
    return {Field.IMAGE: {CODEC: str(gen["image_format"]), DTYPE: "|u1", SHAPE: [3, r, r]}}


def _describe(f: Mapping[str, Any]) -> str:
    shape = "x".join("*" if d is None else str(d) for d in f[SHAPE])
    return f"{f[CODEC]} {f[DTYPE]} {shape or 'scalar'}"


def format_problems(found: Mapping[str, Any], declared: Mapping[str, Any], *, partial: bool = False) -> list[str]:
    """How a record's format (:func:`record_format`) differs from a declaration ([] when it fits).
    ``partial``: the declaration covers some fields only (a config's expectation); others may exist."""
    problems: list[str] = []
    for name, want in sorted(declared.items()):
        have = found.get(name)
        if have is None:
            if not want.get(OPTIONAL) and name not in LATER_FIELDS:
                problems.append(f"field '{name}' is missing (declared {_describe(want)})")
            continue
        same_shape = len(have[SHAPE]) == len(want[SHAPE]) and all(
            w is None or h == w for h, w in zip(have[SHAPE], want[SHAPE]))
        if have[CODEC] != want[CODEC] or have[DTYPE] != want[DTYPE] or not same_shape:
            problems.append(f"field '{name}' is {_describe(have)}, declared {_describe(want)}")
    extra = sorted(set(found) - set(declared) - LATER_FIELDS)
    if extra and not partial:
        problems.append(f"undeclared field(s) {extra}")
    return problems


def blob_bounds_problem(header: Mapping[str, Any], base: int, total: int) -> str | None:
    """A blob table entry pointing outside the record (a corrupt header), or None."""
    try:
        for name, _codec, _dtype, _shape, offset, length in header["blobs"]:
            if int(offset) < 0 or int(length) < 0 or base + int(offset) + int(length) > total:
                return f"blob '{name}' lies outside the record ({offset}+{length} > {total - base})"
    except (KeyError, TypeError, ValueError) as exc:
        return f"malformed blob table ({exc})"
    return None


def declared_fields(dataset_yaml: Mapping[str, Any]) -> dict[str, dict[str, Any]] | None:
    """The ``record_format.fields`` declaration of a dataset.yaml content (None when absent)."""
    section = dataset_yaml.get(FORMAT_KEY)
    if not isinstance(section, Mapping) or not isinstance(section.get(FIELDS), Mapping):
        return None
    return {str(k): dict(v) for k, v in section[FIELDS].items() if isinstance(v, Mapping)}
