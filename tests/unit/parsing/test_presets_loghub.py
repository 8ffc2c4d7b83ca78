"""Presets, and the acceptance bar on Loghub-2k: average GA >= 0.865, HDFS >= 0.99."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from logsieve.errors import LogsieveError
from logsieve.parsing.drain import Drain
from logsieve.parsing.masks import DEFAULT_MASKS, mask_text, validate_masks
from logsieve.parsing.presets import DEFAULT_PRESET, PRESETS, ParserPreset, get_preset

REPO = Path(__file__).resolve().parents[3]
SYSTEMS = [
    "hdfs", "hadoop", "spark", "zookeeper", "bgl", "hpc", "thunderbird", "windows", "linux",
    "android", "healthapp", "apache", "proxifier", "openssh", "openstack", "mac",
]  # fmt: skip
DRAIN_PUBLISHED_AVG_GA = 0.865


def _bench():
    """benchmarks/loghub_ga.py as a module (it is a script, not part of the package)."""
    name = "logsieve_bench_loghub_ga"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / "loghub_ga.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def test_every_system_has_a_preset() -> None:
    assert set(SYSTEMS) <= set(PRESETS)
    assert PRESETS["spirit"] is PRESETS["thunderbird"]
    assert get_preset("HDFS") is PRESETS["hdfs"]
    assert get_preset(" Mac ") is PRESETS["mac"]
    assert get_preset(None) is DEFAULT_PRESET
    assert get_preset("no-such-system") is DEFAULT_PRESET


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_is_valid(name: str) -> None:
    preset = PRESETS[name]
    validate_masks(preset.all_masks())
    if preset.use_default_masks:
        assert preset.all_masks() == preset.masks + DEFAULT_MASKS  # own masks first
    else:
        assert preset.all_masks() == preset.masks
    drain = Drain(**preset.drain_params())
    drain.add("a quick check 1")
    assert ParserPreset.from_dict(preset.to_dict()) == preset


def test_http_preset_keeps_routes_apart() -> None:
    preset = get_preset("http")
    lines = [
        "GET /login.php HTTP/1.1",
        "GET /home.php HTTP/1.1",
        "GET /details.php?id=17 HTTP/1.1",
        "GET /details.php?id=4 HTTP/1.0",
        "GET /api/items/123/edit HTTP/1.1",
        "GET /api/items/9/edit HTTP/1.1",
        "POST /login.php HTTP/1.1",
    ]
    drain = Drain(**preset.drain_params())
    ids = drain.add_many([mask_text(x, preset.all_masks()) for x in lines]).tolist()
    assert ids == [1, 2, 3, 3, 4, 4, 5]
    assert drain.template(3) == "GET /details.php?id=<*> HTTP/<*>"
    assert drain.template(4) == "GET /api/items/<*>/edit HTTP/<*>"


def test_preset_without_defaults() -> None:
    p = ParserPreset((), 4, 0.5, use_default_masks=False)
    assert p.all_masks() == ()
    with pytest.raises(LogsieveError):
        ParserPreset.from_dict({"depth": 4})


@pytest.fixture(scope="module")
def loghub_table(shared_data):
    root = shared_data / "loghub_2k"
    if not root.is_dir():
        pytest.skip(f"{root} not found")
    return _bench().run_loghub(root, corrected=False)


def test_loghub_average_ga(loghub_table) -> None:
    assert loghub_table.height == 16
    avg = loghub_table["GA"].mean()
    assert avg >= DRAIN_PUBLISHED_AVG_GA, _bench().format_table(loghub_table)


def test_loghub_hdfs_ga(loghub_table) -> None:
    hdfs = loghub_table.filter(system="HDFS").row(0, named=True)
    assert hdfs["GA"] >= 0.99
    assert hdfs["PA"] >= 0.99


def test_loghub_corrected_average_ga(shared_data) -> None:
    root = shared_data / "loghub_2k_corrected"
    if not root.is_dir():
        pytest.skip(f"{root} not found")
    table = _bench().run_loghub(root, corrected=True)
    assert table.height == 16
    assert table["GA"].mean() >= DRAIN_PUBLISHED_AVG_GA
