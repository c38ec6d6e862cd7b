"""The S3 lake of every store's events: Parquet, one row per event, exactly once per
`event_id` after compaction. Written by lake workers, read back by the other cloud jobs."""
