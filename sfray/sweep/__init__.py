"""Sweeps of Stage I runs (plain Python; the Ray Tune glue is ``sfray.distributed.tune``).

Modules: ``trial`` (one trial's config, data and run), ``data`` (the shared held-out set and one
training set per strategy and seed), ``cache`` (datasets built once, keyed by content hash),
``guidance`` (per-sample loss bookkeeping, resampling and proposals), ``guided`` (the guide files
of the task-guided strategies), ``results`` (sweep.csv, report.md, metric.png, best.yaml).
See docs/sweeps.md.
"""
