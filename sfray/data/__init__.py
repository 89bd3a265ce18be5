"""Records, LMDB shards, the Parquet manifest, the record reader, datasets, exporters and importers.

Writing (plain numpy/dicts in, small picklable receipts out)::

    blob = record.encode_record(sample_dict, image_format="png", image_quality=95)
    receipt = shard.write_shard(dataset_dir, [(sample_id, blob), ...])
    manifest.Manifest.commit(dataset_dir, receipts + dropped_rows)
    dataset_yaml.update_dataset_yaml(dataset_dir, config=..., generator=...)

(a generation run does this through ``sfray.generation.storage``). Reading:
``reader.RecordReader`` / ``reader.committed_rows`` (what every reader uses),
``torch_dataset.SfrayDataset``; checking: ``verify.verify_dataset`` (on ``integrity.check_rows``
and the declared ``record_format``); the write-ahead log: ``receipts``; converting: ``export`` and
``importers``. File names, the writer lock: ``layout``.
"""
