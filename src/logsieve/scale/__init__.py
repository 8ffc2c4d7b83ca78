"""Scale-out engines: Dask distributed for parse, group and batch scoring, torch.distributed for
training. Each runs the same :class:`logsieve.pipeline.Pipeline` as the local path and must give
the same results."""
