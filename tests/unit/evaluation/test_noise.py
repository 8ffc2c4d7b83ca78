"""Parsing noise (merge / split / token perturbation) and label noise: exact counts, seeded."""

from __future__ import annotations

from collections import Counter

import polars as pl
import pytest
from detector_fixtures import make_windows

from logsieve.errors import LogsieveError
from logsieve.evaluation.noise import (
    SPLIT_SUFFIX,
    ParsingNoise,
    flip_labels,
    label_noise_available,
    merge_events,
    noisy_templates,
    perturb_lines,
    reparse_with_token_noise,
    split_events,
)


@pytest.fixture(scope="module")
def windows() -> pl.DataFrame:
    w = make_windows(n_normal=200, n_anomalous=20, seed=4)
    # a few more distinct ids so that rates give several types
    extra = pl.DataFrame(
        {"window_id": ["x1", "x2"], "event_ids": [["E20", "E21", "E22"], ["E23", "E24", "E20"]]},
    )
    return pl.concat([w, extra], how="diagonal_relaxed")


def _types(w: pl.DataFrame) -> set[str]:
    return set(w["event_ids"].explode().to_list())


@pytest.mark.parametrize(
    ("text", "kind", "rate"),
    [("none", "none", 0.0), ("merge:0.1", "merge", 0.1), (" split : 0.25 ", "split", 0.25), ("tokens:0.02", "tokens", 0.02), ("merge:0", "none", 0.0)],
)
def test_parse_spec(text: str, kind: str, rate: float) -> None:
    spec = ParsingNoise.parse(text)
    assert (spec.kind, spec.rate) == (kind, rate)
    assert ParsingNoise.parse(str(spec)) == spec


@pytest.mark.parametrize("text", ["merge", "blur:0.1", "split:1.5", "tokens:-1", "none:0.3", ""])
def test_parse_spec_errors(text: str) -> None:
    with pytest.raises(LogsieveError, match="parsing noise"):
        ParsingNoise.parse(text)


def test_merge_exact_counts(windows: pl.DataFrame) -> None:
    types = _types(windows)
    t = len(types)
    out, mapping = merge_events(windows, 0.3, seed=1)
    assert len(mapping) == round(0.3 * t)
    assert _types(out) == types - set(mapping)  # merged ids vanish, nothing new appears
    assert len(_types(out)) == t - round(0.3 * t)
    assert not set(mapping) & set(mapping.values())  # no chains
    # lengths and every other column untouched
    assert out["event_ids"].list.len().to_list() == windows["event_ids"].list.len().to_list()
    assert out.drop("event_ids").equals(windows.drop("event_ids"))
    before = windows["event_ids"].explode().to_list()
    after = out["event_ids"].explode().to_list()
    assert [mapping.get(a, a) for a in before] == after


def test_split_exact_counts(windows: pl.DataFrame) -> None:
    types = _types(windows)
    out, chosen = split_events(windows, 0.25, seed=2)
    assert len(chosen) == round(0.25 * len(types))
    before = windows["event_ids"].explode().to_list()
    after = out["event_ids"].explode().to_list()
    counts = Counter(before)
    changed = [b for b, a in zip(before, after, strict=True) if a != b]
    assert all(a == b + SPLIT_SUFFIX for b, a in zip(before, after, strict=True) if a != b)
    assert set(changed) <= set(chosen)
    assert len(changed) == sum(counts[c] // 2 for c in chosen)
    assert Counter(changed) == {c: counts[c] // 2 for c in chosen if counts[c] // 2}
    assert out["event_ids"].list.len().to_list() == windows["event_ids"].list.len().to_list()


def test_noise_is_seeded(windows: pl.DataFrame) -> None:
    assert merge_events(windows, 0.3, 7)[0].equals(merge_events(windows, 0.3, 7)[0])
    assert split_events(windows, 0.3, 7)[0].equals(split_events(windows, 0.3, 7)[0])
    assert merge_events(windows, 0.3, 7)[1] != merge_events(windows, 0.3, 8)[1]
    out, info = ParsingNoise.parse("none").apply_to_windows(windows, 0)
    assert out is windows and info == {}


def test_noisy_templates() -> None:
    t = {"E1": "a <*>", "E2": "b", "E3": "c"}
    assert noisy_templates(t, {"merged": {"E2": "E1"}}) == {"E1": "a <*>", "E3": "c"}
    assert noisy_templates(t, {"split": ["E3"]})["E3" + SPLIT_SUFFIX] == "c"


def test_perturb_lines_exact_and_protected() -> None:
    events = pl.DataFrame(
        {
            "line_id": list(range(1, 101)),
            "content": [f"Receiving block blk_{i} from host{i % 3} size {i}" for i in range(100)] ,
        }
    ).with_columns(pl.col("line_id").cast(pl.Int64))
    plan = perturb_lines(events, 0.2, seed=0, protect=r"blk_-?\d+")
    assert plan.height == 20
    for old, new in zip(plan["content"].to_list(), plan["new_content"].to_list(), strict=True):
        a, b = old.split(), new.split()
        assert len(a) == len(b)
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        assert len(diff) == 1
        assert not a[diff[0]].startswith("blk_")
        assert b[diff[0]].isalpha()
    assert perturb_lines(events, 0.2, seed=0).equals(perturb_lines(events, 0.2, seed=0))
    assert perturb_lines(events, 0.0).height == 0


def test_reparse_with_token_noise(tmp_path) -> None:
    from logsieve.parsing.parser import LogParser
    from logsieve.synth import generate

    log = tmp_path / "s.log"
    generate(log, lines=1500, seed=1)
    events, _ = LogParser("hdfs").parse_files(log)
    noisy, info = reparse_with_token_noise([log], events, lambda: LogParser("hdfs"), 0.1, seed=3, protect=r"blk_-?\d+")
    assert info["lines_perturbed"] == info["lines_planned"] == round(0.1 * events.height)
    assert noisy["line_id"].to_list() == events["line_id"].to_list()
    changed = int((noisy["content"] != events["content"]).sum())
    assert changed == info["lines_perturbed"]
    # the session key was never touched: every line keeps its block ids
    keys = lambda df: df["content"].str.extract_all(r"blk_-?\d+").to_list()  # noqa: E731
    assert keys(noisy) == keys(events)
    assert noisy["event_id"].n_unique() >= events["event_id"].n_unique()


def test_flip_labels_delegates_with_exact_count(windows: pl.DataFrame) -> None:
    assert label_noise_available()
    w = windows.with_columns(pl.when(pl.col("window_id") == "x1").then(None).otherwise(pl.col("label")).alias("label"))
    labelled = int(w["label"].is_not_null().sum())
    out, changed = flip_labels(w, 0.1, seed=0)
    assert changed == round(0.1 * labelled)
    assert out["label"].null_count() == w["label"].null_count()
    assert flip_labels(w, 0.0, seed=0) == (w, 0)
