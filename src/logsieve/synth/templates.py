"""The HDFS message shapes the synthetic generator writes.

Each template is one message shape seen in the real HDFS_v1 logs (Xu et al., SOSP'09, as
shipped by Loghub), with ``{field}`` placeholders the generator fills in:

``blk``   block id (``blk_-1608999687919862906``)
``ip1``   first datanode address (``10.250.19.102``), ``ip2`` a second one
``aux``   a small integer: source port, PacketResponder index or data sub-directory
``size``  block size in bytes
``path``  the HDFS file the block belongs to (allocateBlock only)

Templates flagged ``anomalous`` never occur in a normal synthetic block; they are the
error events injected into ``extra_error`` sessions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_FIELD = re.compile(r"\{(\w+)\}")
FIELDS = ("blk", "ip1", "ip2", "aux", "size", "path")


@dataclass(frozen=True)
class SynthTemplate:
    """One message shape: header level and component, and the content text with fields."""

    key: str
    level: str
    component: str
    text: str
    anomalous: bool = False

    @property
    def event_template(self) -> str:
        """Content with every field replaced by the ``<*>`` wildcard (Loghub style)."""
        return _FIELD.sub("<*>", self.text)

    def pieces(self) -> list[str | tuple[str]]:
        """Literal strings and ``(field,)`` markers for a whole line after ``<Date> <Time>``.

        The leading ``("ts",)`` and ``("pid",)`` markers stand for the timestamp and pid.
        """
        out: list[str | tuple[str]] = [("ts",), " ", ("pid",), f" {self.level} {self.component}: "]
        pos = 0
        for m in _FIELD.finditer(self.text):
            if m.start() > pos:
                out.append(self.text[pos : m.start()])
            out.append((m.group(1),))
            pos = m.end()
        out.append(self.text[pos:] + "\n")
        merged: list[str | tuple[str]] = []
        for p in out:
            if isinstance(p, str) and merged and isinstance(merged[-1], str):
                merged[-1] = merged[-1] + p
            else:
                merged.append(p)
        return merged


_XC = "dfs.DataNode$DataXceiver"
_PR = "dfs.DataNode$PacketResponder"
_NS = "dfs.FSNamesystem"
_BR = "dfs.DataNode$BlockReceiver"

_FS = "dfs.FSDataset"
_DATA = "/mnt/hadoop/dfs/data/current"

TEMPLATES: tuple[SynthTemplate, ...] = (
    # --- the normal block lifecycle ----------------------------------------------------
    SynthTemplate("allocate", "INFO", _NS, "BLOCK* NameSystem.allocateBlock: {path}. {blk}"),
    SynthTemplate(
        "receiving", "INFO", _XC, "Receiving block {blk} src: /{ip1}:{aux} dest: /{ip1}:50010"
    ),
    SynthTemplate(
        "responder_terminating", "INFO", _PR, "PacketResponder {aux} for block {blk} terminating"
    ),
    SynthTemplate("received", "INFO", _PR, "Received block {blk} of size {size} from /{ip1}"),
    SynthTemplate(
        "add_stored", "INFO", _NS,
        "BLOCK* NameSystem.addStoredBlock: blockMap updated: {ip1}:50010 is added to {blk} "
        "size {size}",
    ),
    SynthTemplate(
        "ask_replicate", "INFO", _NS,
        "BLOCK* ask {ip1}:50010 to replicate {blk} to datanode(s) {ip2}:50010",
    ),
    SynthTemplate(
        "start_transfer", "INFO", "dfs.DataNode",
        "{ip1}:50010 Starting thread to transfer block {blk} to {ip2}:50010",
    ),
    SynthTemplate(
        "received_src", "INFO", _XC,
        "Received block {blk} src: /{ip1}:{aux} dest: /{ip1}:50010 of size {size}",
    ),
    SynthTemplate(
        "transmitted", "INFO", "dfs.DataNode$DataTransfer",
        "{ip1}:50010:Transmitted block {blk} to /{ip2}:50010",
    ),
    SynthTemplate("served", "INFO", _XC, "{ip1}:50010 Served block {blk} to /{ip2}"),
    SynthTemplate(
        "serve_exception", "WARN", _XC, "{ip1}:50010:Got exception while serving {blk} to /{ip2}:"
    ),
    SynthTemplate("verified", "INFO", "dfs.DataBlockScanner", "Verification succeeded for {blk}"),
    SynthTemplate(
        "invalidate", "INFO", _NS,
        "BLOCK* NameSystem.delete: {blk} is added to invalidSet of {ip1}:50010",
    ),
    SynthTemplate(
        "deleting", "INFO", _FS, "Deleting block {blk} file " + _DATA + "/subdir{aux}/{blk}"
    ),
    SynthTemplate("deleting_top", "INFO", _FS, "Deleting block {blk} file " + _DATA + "/{blk}"),
    # --- error events: only in extra_error sessions -------------------------------------
    SynthTemplate(
        "writeblock_exception", "INFO", _XC,
        "writeBlock {blk} received exception java.io.IOException: Could not read from stream",
        anomalous=True,
    ),
    SynthTemplate(
        "receiveblock_exception", "INFO", _BR,
        "Exception in receiveBlock for block {blk} java.io.IOException: Connection reset by peer",
        anomalous=True,
    ),
    SynthTemplate(
        "responder_exception", "INFO", _PR,
        "PacketResponder {blk} {aux} Exception java.io.EOFException", anomalous=True,
    ),
    SynthTemplate(
        "responder_interrupted", "INFO", _PR, "PacketResponder {aux} for block {blk} Interrupted.",
        anomalous=True,
    ),
    SynthTemplate(
        "empty_packet", "INFO", _BR, "Receiving empty packet for block {blk}", anomalous=True
    ),
    SynthTemplate(
        "redundant_add", "WARN", _NS,
        "BLOCK* NameSystem.addStoredBlock: Redundant addStoredBlock request received for {blk} "
        "on {ip1}:50010 size {size}",
        anomalous=True,
    ),
    SynthTemplate(
        "orphan_add", "INFO", _NS,
        "BLOCK* NameSystem.addStoredBlock: addStoredBlock request received for {blk} on "
        "{ip1}:50010 size {size} But it does not belong to any file.",
        anomalous=True,
    ),
    SynthTemplate(
        "delete_error", "WARN", _FS,
        "Unexpected error trying to delete block {blk}. BlockInfo not found in volumeMap.",
        anomalous=True,
    ),
)

TEMPLATE_INDEX: dict[str, int] = {t.key: i for i, t in enumerate(TEMPLATES)}
"""Template key -> position in :data:`TEMPLATES` (the integer stored per event)."""
