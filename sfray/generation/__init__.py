"""Dataset generation as a library: one run (``run.run_generation``) with the executor passed in.

Modules: ``plan`` (units and batches), ``producer`` (ids -> records), ``quality_stage``
(refinement + gate around the annotator), ``storage`` (shard + receipt per unit, manifest commit),
``compat`` (may this config resume that directory), ``preflight`` (user inputs, output location
and free space checked before workers start), ``repair`` (committed shards found damaged go back
to the plan), ``failures`` (a worker's error as one line plus a log file), ``preview`` (preview
sheets), ``executor`` (the protocol and the in-process executor), ``faults`` (testing only).
``sfray.distributed`` supplies the Ray executor. docs/reliability.md explains the guarantees.
"""
