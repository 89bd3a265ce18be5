"""Records, LMDB shards, the Parquet manifest, datasets, exporters and importers.

Writing (what a Ray ``Datasink`` calls; plain numpy/dicts in, small picklable receipts out)::

    blob = record.encode_record(sample_dict, image_format="png", image_quality=95)
    receipt = shard.write_shard(dataset_dir, [(sample_id, blob), ...])      # in write()
    manifest.Manifest.commit(dataset_dir, receipts + dropped_rows)          # in on_write_complete()
    dataset_yaml.update_dataset_yaml(dataset_dir, config=..., generator=...)

Reading: ``torch_dataset.SfrayDataset``, ``shard.ShardReader``, ``manifest.Manifest.load``;
checking: ``verify.verify_dataset``; converting: ``export`` and ``importers``.
"""
