"""Dataset generation without Ray: planning work units and producing annotated records.

``sfray.distributed`` wraps these in Ray actors and a datasink; a plain loop can call them too
(the benchmark's baseline does), so the math and the record bytes are the same either way.
"""
