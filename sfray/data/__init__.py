"""Records, LMDB shards, the Parquet manifest, datasets, exporters and importers."""
