"""The end-to-end pipeline: generate -> Stage I -> LaPa-like set -> Stage II -> evaluate -> report.

Modules: ``layout`` (file names under the output root), ``marker`` (done-markers and config
hashes), ``stages`` (the stage table and how each stage is loaded and run), ``run`` (skip, resume
or redo each stage), ``report`` (report.md). Plain Python: stages that run on Ray get their runner
from ``sfray.distributed.pipeline``. docs/quickstart.md describes the stages and their outputs.
"""

from sfray.pipeline.run import run_pipeline

__all__ = ["run_pipeline"]
