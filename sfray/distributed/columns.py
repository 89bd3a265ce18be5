"""Column names of the rows of the generation pipeline (actors -> encode stage -> datasink).

One row is one work unit (one future shard); heavy payloads are lists with one entry per sample.
"""

COL_UNIT = "unit"  # the unit's name (input rows)
COL_IDS = "sample_ids"  # the unit's sample ids
COL_ROWS = "rows_json"  # JSON list of manifest rows (small)
COL_RAW = "raw_fields"  # list of pickled record-field dicts, b"" for a dropped sample (two-stage)
COL_RECORDS = "records"  # list of record bytes, b"" for a dropped sample
COL_BUSY = "generator_busy_s"  # seconds the generator actor spent on this unit
COL_ENCODE = "encode_s"  # seconds spent encoding this unit (in the encode stage, or in the actor)
