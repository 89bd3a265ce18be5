"""Dataset generation as a library: one run (``run.run_generation``) with the executor passed in.

Modules: ``plan`` (units and batches), ``producer`` (ids -> records), ``quality_stage``
(refinement + gate around the annotator), ``storage`` (shard + receipt per unit, manifest commit),
``compat`` (may this config resume that directory), ``preflight`` (user inputs checked before
workers start), ``preview`` (preview sheets), ``executor`` (the protocol and the in-process
executor), ``faults`` (testing only). ``sfray.distributed`` supplies the Ray executor.
"""
