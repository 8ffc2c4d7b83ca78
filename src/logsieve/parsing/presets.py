"""Per-system parser settings (masks, Drain depth and similarity threshold).

Mask order: a preset's own masks run FIRST, then
:data:`~logsieve.parsing.masks.DEFAULT_MASKS` (when ``use_default_masks``).
System-specific masks are the more specific ones (a block id ``blk_-42``, a byte count
with its optional ``(1.2 KB)``) and must see the text before the general number mask
rewrites part of it.

The starting point for each system is the setting of the Drain benchmark in
logpai/logparser (``benchmark/Drain_benchmark.py``: its regexes, ``st`` and ``depth``),
rewritten for Rust-regex syntax and then adjusted on the public Loghub-2k files so that
they work together with the default masks and Drain's ``match_masked`` rule (the
default). ``benchmarks/loghub_ga.py`` measures them. Those grids ran on the very files
the benchmark scores, so per-system numbers are in-sample; :data:`DEFAULT_PRESET` (one
setting for every system) is the fairer guide to logs without a preset.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from logsieve.errors import LogsieveError
from logsieve.parsing.masks import DEFAULT_MASKS, Mask

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_PRESET", "PRESETS", "ParserPreset", "get_preset"]


@dataclass(frozen=True)
class ParserPreset:
    """Masks and Drain parameters for one kind of log.

    Attributes
    ----------
    masks : tuple of Mask
        System-specific masks, applied before the default masks.
    depth : int
        Drain tree depth.
    sim_th : float
        Drain similarity threshold.
    use_default_masks : bool
        Append :data:`DEFAULT_MASKS` after ``masks``.
    max_children : int
        Drain ``max_children``.
    """

    masks: tuple[Mask, ...]
    depth: int
    sim_th: float
    use_default_masks: bool = True
    max_children: int = 100

    def all_masks(self) -> tuple[Mask, ...]:
        """The masks to apply, in order: own masks, then the defaults if enabled."""
        return self.masks + (DEFAULT_MASKS if self.use_default_masks else ())

    def drain_params(self) -> dict[str, Any]:
        """Keyword arguments for :class:`~logsieve.parsing.drain.Drain`."""
        return {"depth": self.depth, "sim_th": self.sim_th, "max_children": self.max_children}

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form (own masks only; the defaults are implied by the flag)."""
        return {
            "masks": [m.to_dict() for m in self.masks],
            "depth": self.depth,
            "sim_th": self.sim_th,
            "use_default_masks": self.use_default_masks,
            "max_children": self.max_children,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ParserPreset:
        """Inverse of :meth:`to_dict`."""
        try:
            return cls(
                masks=tuple(Mask.from_dict(m) for m in d.get("masks", ())),
                depth=int(d["depth"]),
                sim_th=float(d["sim_th"]),
                use_default_masks=bool(d.get("use_default_masks", True)),
                max_children=int(d.get("max_children", 100)),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise LogsieveError(f"bad parser preset {d!r}: {exc}") from None


def _m(name: str, pattern: str, replace_with: str = "<*>") -> Mask:
    return Mask(name, pattern, replace_with)


# The general default for logs without a preset: the default masks only, and the single
# (depth, sim_th) that does best on average over the 16 Loghub-2k systems.
DEFAULT_PRESET = ParserPreset(masks=(), depth=5, sim_th=0.7)

# Per system: logparser's Drain-benchmark masks where the defaults do not already cover
# them (IPs, plain numbers, core.N, =N and hex are covered), and (depth, sim_th) taken from
# the middle of the best plateau of a grid over the Loghub-2k files (in-sample, as the
# logparser settings were).
PRESETS: dict[str, ParserPreset] = {
    "hdfs": ParserPreset((_m("blk", r"blk_-?\d+"),), 4, 0.5),
    "hadoop": ParserPreset((), 8, 0.4),
    "spark": ParserPreset((), 8, 0.4),
    "zookeeper": ParserPreset((), 4, 0.75),
    "bgl": ParserPreset((), 8, 0.4),
    "hpc": ParserPreset((), 5, 0.7),
    "thunderbird": ParserPreset((), 6, 0.5),
    "windows": ParserPreset((), 5, 0.7),
    "linux": ParserPreset((), 6, 0.5),
    "android": ParserPreset(
        (
            _m("path", r"(/[\w-]+)+"),
            _m("dotted", r"([\w-]+\.){2,}[\w-]+"),
            _m("num", r"\b(-?\+?\d+)\b|\b0[Xx][a-fA-F\d]+\b|\b[a-fA-F\d]{4,}\b"),
        ),
        7,
        0.6,
    ),
    "healthapp": ParserPreset((), 6, 0.5),
    "apache": ParserPreset((), 4, 0.5),
    "proxifier": ParserPreset(
        (
            # "N bytes" with its optional "(X.Y KB)" as one field
            _m("bytes", r"\d+ bytes(?: \([\d.]+ [KGTM]B\))?"),
            _m("sec", r"<\d+\ssec"),
            _m("hostport", r"[\w.\-]+(?::\d+)+"),
            _m("host", r"([\w-]+\.)+[\w-]+"),
        ),
        3,
        0.9,
    ),
    "openssh": ParserPreset((_m("host", r"([\w-]+\.){2,}[\w-]+"),), 5, 0.7),
    "openstack": ParserPreset((), 7, 0.5),
    "mac": ParserPreset((_m("dotted", r"([\w-]+\.){2,}[\w-]+"),), 8, 0.8),
}
PRESETS["spirit"] = PRESETS["thunderbird"]

# HTTP request lines ("GET /path?q=v HTTP/1.1"): the route is the event, so no path or
# number masks from the defaults; only values (query values, numeric or hex id segments,
# uuids, the protocol version) become wildcards, and the high threshold keeps routes apart.
_H = "[0-9a-fA-F]"
PRESETS["http"] = ParserPreset(
    (
        _m("http_version", r"\bHTTP/\d+(?:\.\d+)?\b", "HTTP/<*>"),
        _m("uuid", rf"\b{_H}{{8}}-{_H}{{4}}-{_H}{{4}}-{_H}{{4}}-{_H}{{12}}\b"),
        _m("query_value", r"=[^&\s\"]*", "=<*>"),
        _m("id_segment", rf"/(?:\d+|{_H}{{12,}})\b", "/<*>"),
        _m("ip", r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?\b"),
    ),
    4,
    0.9,
    use_default_masks=False,
)


def get_preset(name: str | None) -> ParserPreset:
    """Preset for a system name (case-insensitive); unknown or None gives the default."""
    if name is None:
        return DEFAULT_PRESET
    preset = PRESETS.get(name.strip().lower())
    if preset is None:
        log.debug("no parser preset for %r; using the default preset", name)
        return DEFAULT_PRESET
    return preset
