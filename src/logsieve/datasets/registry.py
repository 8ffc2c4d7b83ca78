"""The Loghub datasets that ``logsieve datasets fetch`` knows, as data.

Every entry is one archive of the Zenodo record 8196385, "Loghub: A Large Collection of
System Log Datasets for AI-driven Log Analytics" (LOGPAI, CC-BY-4.0; cite Zhu et al.,
ISSRE 2023 and refer to https://github.com/logpai/loghub when you use the data). The
record holds 19 archives; all 19 are listed here.

Where the numbers come from, and how far they are checked
----------------------------------------------------------
No network access was available when this table was written, so **none of the values
below was computed by logsieve from the real files**. They were collected from public
sources and cross-checked:

* ``size`` and ``md5``: the byte count and MD5 that Zenodo's file listing publishes for
  each archive, all 19 copied from one project that quotes Zenodo's API listing. The MD5
  is confirmed by at least one other independent project for HDFS_v1, BGL, Hadoop,
  Thunderbird, OpenStack, Spark, Linux, Apache, Mac, HealthApp, Proxifier, OpenSSH
  (SSH.tar.gz) and Zookeeper, and the size for HDFS_v1, BGL, Hadoop, Thunderbird and
  Spark. Windows, HPC, Android_v1, Android_v2, HDFS_v2 and HDFS_v3_TraceBench rest on
  that single source.
* ``sha256``: Zenodo does not publish SHA-256. The values kept here were computed by
  third parties over downloads that matched Zenodo's size and MD5, and each is quoted
  identically by at least two independent projects (BGL, HDFS_v1, Hadoop, Thunderbird,
  OpenStack, Spark, Linux). Every other entry has ``sha256=None``.

:func:`logsieve.datasets.fetch` checks *every* value it has: the size, the SHA-256 when
known and the MD5 when known, so a wrong third-party SHA-256 would show up as a mismatch
rather than pass silently. After a verified download it writes the SHA-256 it computed
to ``<archive>.sha256`` beside the archive (``sha256sum`` format), so later runs and
other tools can pin the exact bytes.

``log_files`` and ``label_file`` describe the archive's content as documented by Loghub
and by projects that unpacked it; they are relative paths or glob patterns inside the
dataset directory (:func:`logsieve.datasets.dataset_files` also looks one folder down).
``lines`` is the line count Loghub publishes; ``raw_bytes`` the approximate unpacked size.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote

from logsieve.errors import LogsieveError

RECORD_ID = "8196385"
DEFAULT_BASE_URL = f"https://zenodo.org/records/{RECORD_ID}/files"
"""Where archives are downloaded from: ``<base>/<file>?download=1``."""

LabelKind = Literal["none", "inline", "file", "split"]
"""How a dataset is labelled: not at all, per line (first field), by a separate label
file, or by splitting normal and abnormal data into separate files."""

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_HEX = {"md5": re.compile(r"^[0-9a-f]{32}$"), "sha256": re.compile(r"^[0-9a-f]{64}$")}
_ARCHIVE_SUFFIXES = (".zip", ".tar.gz", ".tgz", ".tar")

_MIB = 1024**2
_GIB = 1024**3


@dataclass(frozen=True)
class DatasetInfo:
    """One downloadable dataset archive.

    Parameters
    ----------
    name : str
        Registry key, lowercase (``"hdfs"``, ``"bgl"``); also the cache folder name.
    file : str
        Archive file name on the server (``"HDFS_v1.zip"``).
    size : int or None
        Archive size in bytes; checked after download when known.
    format : str or None
        The logsieve format (``logsieve.formats``) that reads its log lines; None when
        the content is not log lines logsieve can read yet.
    log_files : tuple of str
        Log files inside the dataset directory (paths or glob patterns).
    label_kind : {"none", "inline", "file", "split"}
        How the data is labelled.
    label_file : str or None
        The label file inside the dataset directory, when ``label_kind == "file"``.
    md5, sha256 : str or None
        Expected digests of the archive (lowercase hex); see the module docstring for
        where each comes from.
    system : str
        Display name as Loghub spells it (``"HDFS_v1"``).
    description : str
        One line on what the data is.
    lines : int or None
        Line count published by Loghub.
    raw_bytes : int or None
        Approximate unpacked size.
    """

    name: str
    file: str
    size: int | None
    format: str | None
    log_files: tuple[str, ...]
    label_kind: LabelKind = "none"
    label_file: str | None = None
    md5: str | None = None
    sha256: str | None = None
    system: str = ""
    description: str = ""
    lines: int | None = None
    raw_bytes: int | None = None

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(f"dataset name {self.name!r} must be lowercase [a-z0-9_]")
        if not self.file or "/" in self.file or "\\" in self.file or self.file in {".", ".."}:
            raise ValueError(f"dataset {self.name}: file {self.file!r} must be a plain file name")
        for algo in ("md5", "sha256"):
            value = getattr(self, algo)
            if value is not None and not _HEX[algo].match(value):
                raise ValueError(f"dataset {self.name}: {algo} {value!r} is not lowercase hex")
        if self.size is not None and self.size < 0:
            raise ValueError(f"dataset {self.name}: negative size")
        if self.label_kind not in ("none", "inline", "file", "split"):
            raise ValueError(f"dataset {self.name}: unknown label_kind {self.label_kind!r}")

    @property
    def archive_kind(self) -> Literal["zip", "tar", "file"]:
        """``"zip"``, ``"tar"`` (plain or gzip) or ``"file"`` (not an archive)."""
        lower = self.file.lower()
        if lower.endswith(".zip"):
            return "zip"
        if lower.endswith(_ARCHIVE_SUFFIXES[1:]):
            return "tar"
        return "file"

    @property
    def labels(self) -> str:
        """Short human description of the labels, for listings."""
        if self.label_kind == "inline":
            return "inline (first field)"
        if self.label_kind == "file":
            return f"file: {self.label_file}"
        if self.label_kind == "split":
            return "split (normal/abnormal files)"
        return "none"

    def url(self, base_url: str) -> str:
        """Download URL of the archive under ``base_url``."""
        return f"{base_url.rstrip('/')}/{quote(self.file)}?download=1"


LOGHUB: tuple[DatasetInfo, ...] = (
    # --- distributed systems -------------------------------------------------------
    DatasetInfo(
        "hdfs", "HDFS_v1.zip", 186_645_559, "hdfs", ("HDFS.log",),
        label_kind="file", label_file="preprocessed/anomaly_label.csv",
        md5="76a24b4d9a6164d543fb275f89773260",
        sha256="04f919f2185821f23f045dca611a7586429bdabc601bd7b43f30005f8e289b01",
        system="HDFS_v1", lines=11_175_629, raw_bytes=int(1.47 * _GIB),
        description="Hadoop file system, 203-node benchmark (Xu et al. SOSP'09); block labels",
    ),
    DatasetInfo(
        "hdfs_v2", "HDFS_v2.zip", 823_700_713, None, ("**/*.log",),
        md5="fee2e2a1353abc5f9e30a4ab810d5b31",
        system="HDFS_v2", lines=71_118_073, raw_bytes=int(16.06 * _GIB),
        description="HDFS daemon logs, 1 name node + 32 data nodes (CUHK), per node, unlabelled",
    ),
    DatasetInfo(
        "hdfs_v3", "HDFS_v3_TraceBench.zip", 567_419_398, None,
        ("normal_trace.csv", "failure_trace.csv"),
        label_kind="split",
        md5="c69999ff28933d2b163170d26c2faf64",
        system="HDFS_v3_TraceBench", lines=14_778_079, raw_bytes=int(2.96 * _GIB),
        description="TraceBench: instrumented HDFS traces as CSV (not log lines), 17 faults",
    ),
    DatasetInfo(
        "hadoop", "Hadoop.zip", 3_416_419, "hadoop", ("application_*/container_*.log",),
        label_kind="file", label_file="abnormal_label.txt",
        md5="34e28a9943704fd54933e2b455829fcc",
        sha256="79e63c6521e90ae164754a29d13e04e0c6c5e782490a7fe1e2b124f4f5737ced",
        system="Hadoop", lines=394_308, raw_bytes=int(48.61 * _MIB),
        description="Hadoop MapReduce jobs, injected machine/disk/network faults; job labels",
    ),
    DatasetInfo(
        "spark", "Spark.tar.gz", 183_474_743, "spark", ("application_*/container_*.log",),
        md5="31ddaff179f6c1ae5203770138156b17",
        sha256="f11e5df5a98ce25d0f80adb7631b022ae6f1193f510079387447ef4e0fdccef7",
        system="Spark", lines=33_236_604, raw_bytes=int(2.75 * _GIB),
        description="Spark job logs, one file per container, unlabelled",
    ),
    DatasetInfo(
        "zookeeper", "Zookeeper.tar.gz", 459_911, "zookeeper", ("Zookeeper.log",),
        md5="11458b4f9fa0911c238f5c1189d4f2d4",
        system="Zookeeper", lines=74_380, raw_bytes=int(9.95 * _MIB),
        description="ZooKeeper service log, unlabelled",
    ),
    DatasetInfo(
        "openstack", "OpenStack.tar.gz", 5_394_691, "openstack",
        ("openstack_normal1.log", "openstack_normal2.log", "openstack_abnormal.log"),
        label_kind="file", label_file="anomaly_labels.txt",
        md5="66bd42c07837a094d9b0ea2d036b5713",
        sha256="87c98c5ed03262e05cdb7a6f3717033df76d88fda0f7d2db23bd9fa4200f1879",
        system="OpenStack", lines=207_820, raw_bytes=int(58.61 * _MIB),
        description="OpenStack Nova logs (DeepLog, CCS'17); anomalous VM instance ids",
    ),
    # --- supercomputers --------------------------------------------------------------
    DatasetInfo(
        "bgl", "BGL.zip", 57_489_019, "bgl", ("BGL.log",),
        label_kind="inline",
        md5="4452953c470f2d95fcb32d5f6e733f7a",
        sha256="d67fd82a711aea0157a9b83175892c6ee60e384a2ddf5bc51f39118453816da8",
        system="BGL", lines=4_747_963, raw_bytes=int(708.76 * _MIB),
        description="Blue Gene/L supercomputer RAS log; '-' or an alert tag on every line",
    ),
    DatasetInfo(
        "hpc", "HPC.zip", 2_975_898, "hpc", ("HPC.log",),
        md5="15b3bcf44cf5c98e35451efa22a0de77",
        system="HPC", lines=433_489, raw_bytes=int(32.00 * _MIB),
        description="High-performance cluster log (LANL), unlabelled",
    ),
    DatasetInfo(
        "thunderbird", "Thunderbird.tar.gz", 2_016_100_298, "thunderbird", ("Thunderbird.log",),
        label_kind="inline",
        md5="0891b048df2919dc78c99c4428686b44",
        sha256="228f8589b7cd569b727c5da654c647aa538dd3dd95541e675a40523c5fff37cf",
        system="Thunderbird", lines=211_212_192, raw_bytes=int(29.60 * _GIB),
        description="Thunderbird supercomputer syslog; alert tag per line (about 30 GB unpacked)",
    ),
    # --- operating systems -----------------------------------------------------------
    DatasetInfo(
        "windows", "Windows.tar.gz", 1_670_098_945, "windows", ("Windows.log",),
        md5="8b994d947d30617d51e2a565152ae90f",
        system="Windows", lines=114_608_388, raw_bytes=int(26.09 * _GIB),
        description="Windows CBS event log, unlabelled (about 26 GB unpacked)",
    ),
    DatasetInfo(
        "linux", "Linux.tar.gz", 232_039, "linux", ("Linux.log",),
        md5="6d1802d7778126f21c001c6aa7b6b106",
        sha256="7e1f820d8d45ae086032e515d9ce8d079a102a9b37dcff5b41a8e60b1f857820",
        system="Linux", lines=25_567, raw_bytes=int(2.25 * _MIB),
        description="Linux /var/log/messages of one server, unlabelled",
    ),
    DatasetInfo(
        "mac", "Mac.tar.gz", 1_489_372, "mac", ("Mac.log",),
        md5="e5d0558b6ec661c739e77c7ff1b71498",
        system="Mac", lines=117_283, raw_bytes=int(16.09 * _MIB),
        description="macOS system log, unlabelled",
    ),
    # --- mobile systems --------------------------------------------------------------
    DatasetInfo(
        "android", "Android_v1.zip", 24_858_007, "android", ("Android.log",),
        md5="3b35b3cc00d577a510cf9f416d59b3b3",
        system="Android_v1", lines=1_555_005, raw_bytes=int(183.37 * _MIB),
        description="Android framework log of an instrumented phone, unlabelled",
    ),
    DatasetInfo(
        "android_v2", "Android_v2.zip", 444_986_139, "android", ("**/*.log",),
        md5="3195bb72252e98b031c5b9b62320e993",
        system="Android_v2", lines=30_348_042, raw_bytes=int(3.38 * _GIB),
        description="Android framework logs, one logcat capture per issue folder, unlabelled",
    ),
    DatasetInfo(
        "healthapp", "HealthApp.tar.gz", 2_296_618, "healthapp", ("HealthApp.log",),
        md5="cec2cca71da9c4f8e33eaa9b215f1b90",
        system="HealthApp", lines=253_395, raw_bytes=int(22.44 * _MIB),
        description="Health app on Android, unlabelled",
    ),
    # --- server applications ---------------------------------------------------------
    DatasetInfo(
        "apache", "Apache.tar.gz", 262_905, "apache", ("Apache.log",),
        md5="de9a42d12f9b60612631c67a5a9f8628",
        system="Apache", lines=56_481, raw_bytes=int(4.90 * _MIB),
        description="Apache HTTP server error log, unlabelled",
    ),
    DatasetInfo(
        "openssh", "SSH.tar.gz", 4_596_666, "openssh", ("SSH.log",),
        md5="a44e40b4348697dabf2bba56885e0a38",
        system="OpenSSH", lines=655_146, raw_bytes=int(70.02 * _MIB),
        description="OpenSSH server log of an internet-facing lab machine, unlabelled",
    ),
    # --- standalone software ---------------------------------------------------------
    DatasetInfo(
        "proxifier", "Proxifier.tar.gz", 172_346, "proxifier", ("Proxifier.log",),
        md5="2612fce12cc3d16599ddb3db8e9c477a",
        system="Proxifier", lines=21_329, raw_bytes=int(2.42 * _MIB),
        description="Proxifier proxy client log, unlabelled",
    ),
)

REGISTRY: Mapping[str, DatasetInfo] = {info.name: info for info in LOGHUB}
"""The built-in datasets by name."""

ALIASES: Mapping[str, str] = {
    "hdfs_v1": "hdfs",
    "hdfs_v3_tracebench": "hdfs_v3",
    "tracebench": "hdfs_v3",
    "android_v1": "android",
    "ssh": "openssh",
}
"""Other spellings accepted for a built-in name (Loghub's system and file names)."""


def _as_registry(registry: Mapping[str, DatasetInfo] | Iterable[DatasetInfo] | None
                 ) -> Mapping[str, DatasetInfo]:
    if registry is None:
        return REGISTRY
    if isinstance(registry, Mapping):
        return registry
    return {info.name: info for info in registry}


def list_datasets(
    registry: Mapping[str, DatasetInfo] | Iterable[DatasetInfo] | None = None,
) -> list[DatasetInfo]:
    """All known datasets, in registry order (the built-in Loghub ones by default)."""
    return list(_as_registry(registry).values())


def get_dataset(
    name: str | DatasetInfo,
    registry: Mapping[str, DatasetInfo] | Iterable[DatasetInfo] | None = None,
) -> DatasetInfo:
    """Look a dataset up by name (case-insensitive; Loghub spellings such as ``HDFS_v1``
    or ``SSH`` work too). A :class:`DatasetInfo` is returned as it is.

    Raises
    ------
    LogsieveError
        The name is unknown; the message lists the known names.
    """
    if isinstance(name, DatasetInfo):
        return name
    table = _as_registry(registry)
    key = name.strip().lower()
    for suffix in (".zip", ".tar.gz"):
        if key.endswith(suffix):  # accept the archive name as well
            key = key[: -len(suffix)]
    if key in table:
        return table[key]
    alias = ALIASES.get(key)
    if alias is not None and alias in table:
        return table[alias]
    known = ", ".join(table) or "(none)"
    raise LogsieveError(f"unknown dataset {name!r}; known datasets: {known}")
