"""The training table kept current from where the data lives: delta reads, Parquet parts, snapshots."""
