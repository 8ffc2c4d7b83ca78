"""Model directories: byte-reproducible files (same data and seed give the same bytes)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from detector_fixtures import TEMPLATES, make_windows
from safetensors.numpy import load

from logsieve.detectors.persistence import safetensors_bytes
from logsieve.detectors.registry import create_detector, get_detector_class


def test_safetensors_bytes_are_deterministic_sorted_and_readable():
    arrays = {"b": np.arange(3.0), "a": np.ones(2, np.float32), "c.x": np.arange(3)}
    # safetensors' own writer emits __metadata__ in a random key order (a Rust hash map)
    blobs = {
        safetensors_bytes(arrays, {"name": "pca", "format": "logsieve-model"}) for _ in range(20)
    }
    assert len(blobs) == 1
    blob = blobs.pop()
    size = int.from_bytes(blob[:8], "little")
    assert (8 + size) % 8 == 0
    header = json.loads(blob[8 : 8 + size])
    assert list(header) == sorted(header)
    assert list(header["__metadata__"]) == ["format", "name"]
    again = load(blob)
    assert set(again) == set(arrays)
    for key, value in arrays.items():
        np.testing.assert_array_equal(again[key], value)
        assert again[key].dtype == value.dtype


@pytest.mark.parametrize("name", ["pca", "deeplog"])
def test_same_seed_gives_byte_identical_model_files(name, tmp_path):
    train = make_windows(seed=0)
    params = {**get_detector_class(name)._test_params(), "random_state": 3}
    files = []
    for run in range(2):
        det = create_detector(name, **params).fit(train, templates=TEMPLATES)
        for copy in range(2):  # each save wrote the safetensors metadata in a random order
            out = det.save(tmp_path / f"{run}-{copy}")
            files.append({f.name: f.read_bytes() for f in sorted(out.iterdir())})
    assert set(files[0]) == {"model.json", "weights.safetensors"}
    for other in files[1:]:
        assert other == files[0]
