"""Public log datasets (Loghub) fetched into the local cache.

>>> from logsieve.datasets import list_datasets, fetch
>>> [d.name for d in list_datasets()][:3]
['hdfs', 'hdfs_v2', 'hdfs_v3']

``fetch("hdfs")`` downloads ``HDFS_v1.zip`` from Zenodo into
``$LOGSIEVE_HOME/datasets/hdfs/`` (default ``~/.cache/logsieve``), verifies it and unpacks
it. See :mod:`logsieve.datasets.registry` for which checksums are known and how far they
are checked.
"""

from __future__ import annotations

from logsieve.datasets.fetch import (
    HOME_ENV,
    URL_ENV,
    CacheStatus,
    DatasetFiles,
    ProgressCallback,
    cache_status,
    dataset_dir,
    dataset_files,
    default_base_url,
    extract_dataset,
    fetch,
    logsieve_home,
)
from logsieve.datasets.registry import (
    ALIASES,
    DEFAULT_BASE_URL,
    LOGHUB,
    RECORD_ID,
    REGISTRY,
    DatasetInfo,
    get_dataset,
    list_datasets,
)

__all__ = [
    "ALIASES",
    "DEFAULT_BASE_URL",
    "HOME_ENV",
    "LOGHUB",
    "RECORD_ID",
    "REGISTRY",
    "URL_ENV",
    "CacheStatus",
    "DatasetFiles",
    "DatasetInfo",
    "ProgressCallback",
    "cache_status",
    "dataset_dir",
    "dataset_files",
    "default_base_url",
    "extract_dataset",
    "fetch",
    "get_dataset",
    "list_datasets",
    "logsieve_home",
]
