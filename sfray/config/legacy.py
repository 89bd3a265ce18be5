"""Config keys that were renamed, and the migration of configs written with the old names.

The generator used to be one flat section and the test knobs sat among the production keys;
they now live in per-kind sections and in ``faults`` (docs/architecture.md). A user's YAML or
override that still uses an old name is refused with the new name in the message; a config that
sfray itself saved next to a dataset (``DATASET/config.yaml``) is migrated when read, so a
dataset made before the rename can still be resumed.
"""

from __future__ import annotations

from typing import Any

#: old dotted key -> new dotted key
RENAMED: dict[str, str] = {
    "generator.checkpoint": "generator.next3d.checkpoint",
    "generator.precision": "generator.next3d.precision",
    "generator.neural_rendering_resolution": "generator.next3d.neural_rendering_resolution",
    "generator.noise_mode": "generator.next3d.noise_mode",
    "generator.hair_cap_prob": "generator.procedural.hair_cap_prob",
    "generator.background": "generator.procedural.background",
    "generator.misalign": "faults.misalign",
    "ray.fail_actor_after_batches": "faults.fail_actor_after_batches",
    "ray.fail_driver_after_shards": "faults.fail_driver_after_shards",
}

#: Keys added later whose new default differs from what older sfray did: a saved config that lacks
#: them was made with the old behaviour (Next3D's texture raster used exact barycentrics before the
#: pytorch3d-compatible mode became the default, docs/next3d.md §9). Applied to Next3D datasets only:
#: the key means nothing to the procedural renderer, whose old datasets must keep resuming.
OLD_BEHAVIOUR: dict[str, Any] = {"generator.next3d.raster_compat": "exact"}


def _get(tree: dict[str, Any], dotted: str) -> tuple[bool, Any]:
    node: Any = tree
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def old_keys(tree: dict[str, Any]) -> list[str]:
    """The renamed keys present in a plain config tree (nested dicts)."""
    return [old for old in RENAMED if _get(tree, old)[0]]


def migrate(tree: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``tree`` with every old key moved to its new place (new keys win if both exist)."""
    out: dict[str, Any] = _copy(tree)
    for old, new in RENAMED.items():
        found, value = _get(out, old)
        if not found:
            continue
        *parents, leaf = old.split(".")
        holder = out
        for part in parents:
            holder = holder[part]
        del holder[leaf]
        *new_parents, new_leaf = new.split(".")
        target = out
        for part in new_parents:
            target = target.setdefault(part, {})
        target.setdefault(new_leaf, value)
    for key, value in OLD_BEHAVIOUR.items() if _get(out, "generator.kind")[1] == "next3d" else ():
        *parents, leaf = key.split(".")
        holder = out
        for part in parents:
            holder = holder.setdefault(part, {})
        holder.setdefault(leaf, value)
    return out


def _copy(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _copy(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_copy(v) for v in node]
    return node
