"""DeepLog's window value model (section 3.2): same seed, same model."""

from __future__ import annotations

import numpy as np
import polars as pl
import torch

from logsieve.detectors.deeplog_params import WindowValueModel


def _windows(n: int, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    keys, values, elapsed = [], [], []
    for _ in range(n):
        keys.append(["E1", "E2", "E2", "E3"])
        size = str(int(rng.normal(1000, 50)))
        values.append([[size], [size], [str(int(rng.integers(1, 9)))], []])
        elapsed.append([0.0, *rng.exponential(0.5, 3).round(3).tolist()])
    return pl.DataFrame(
        {
            "window_id": [f"w{i}" for i in range(n)],
            "event_ids": keys,
            "values": values,
            "elapsed": elapsed,
            "label": [0] * n,
        },
        schema_overrides={"label": pl.Int8},
    )


def test_same_seed_gives_the_same_weights_whatever_the_global_rng():
    train, valid = _windows(60, 0), _windows(30, 1)
    states = []
    for global_seed in (1, 2):
        torch.manual_seed(global_seed)  # the global RNG must not reach the initial weights
        model = WindowValueModel(epochs=2, hidden_size=8, random_state=0).fit(train, valid)
        states.append(model.get_state())
    (s1, a1), (s2, a2) = states
    assert a1.keys() == a2.keys() and a1
    assert all(np.array_equal(a1[k], a2[k]) for k in a1)
    assert s1["z_"] == s2["z_"] and s1["models_"] == s2["models_"]
