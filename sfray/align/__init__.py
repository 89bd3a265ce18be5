"""Fitting the global alignment map (``sfray align``) and the solver shared with per-sample
refinement: plain torch, no Ray. See docs/alignment.md."""
