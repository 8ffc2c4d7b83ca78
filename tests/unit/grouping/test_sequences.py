"""Importing pre-parsed sequence files into windows tables."""

from __future__ import annotations

import gzip

import polars as pl
import pytest

from logsieve.errors import InputError, LogsieveError
from logsieve.grouping.sequences import concat_windows, infer_label, read_sequences, read_templates
from logsieve.schema import WINDOW_SCHEMA


def _write(path, text: str):
    path.write_text(text, encoding="utf-8")
    return path


def test_deeplog_format_hand_made(tmp_path):
    p = _write(tmp_path / "toy_train", "5 5 22 \n\n1 007  3\n")
    w = read_sequences(p)
    assert w.schema == pl.Schema(WINDOW_SCHEMA)
    assert w["window_id"].to_list() == [
        "toy_train:1",
        "toy_train:3",
    ]  # blank line 2 skipped, numbering kept
    assert w["event_ids"].to_list() == [["E5", "E5", "E22"], ["E1", "E7", "E3"]]
    assert w["line_ids"].to_list() == [[], []]
    assert w["start"].null_count() == 2 and w["end"].null_count() == 2
    assert w["label"].to_list() == [0, 0]  # *_train -> normal


def test_id_keys_format_hand_made(tmp_path):
    p = _write(tmp_path / "sys_test_abnormal_disk_full", "blk_1,1 2 3\r\nblk_-2,E4 4\nblk_3,\n")
    w = read_sequences(p)
    assert w["window_id"].to_list() == ["blk_1", "blk_-2", "blk_3"]
    assert w["event_ids"].to_list() == [["E1", "E2", "E3"], ["E4", "E4"], []]
    assert w["label"].to_list() == [1, 1, 1]


def test_keys_label_format(tmp_path):
    p = _write(tmp_path / "robust_train.csv", "Sequence,label\n5 5 22,0\n5 9,1\n")
    w = read_sequences(p)
    assert w["window_id"].to_list() == ["robust_train:2", "robust_train:3"]
    assert w["label"].to_list() == [0, 1]  # per-row labels win over the file name
    assert read_sequences(p, label=1)["label"].to_list() == [1, 1]


def test_label_argument_and_unknown_name(tmp_path):
    p = _write(tmp_path / "mystery.txt", "1 2\n")
    assert read_sequences(p)["label"].to_list() == [None]
    assert read_sequences(p, label=1)["label"].to_list() == [1]
    assert read_sequences(p)["window_id"].to_list() == ["mystery:1"]
    with pytest.raises(LogsieveError):
        read_sequences(p, label=2)


def test_forced_format_and_gzip(tmp_path):
    p = tmp_path / "x_test_normal.gz"
    with gzip.open(p, "wt") as fh:
        fh.write("a,1 2\n")
    w = read_sequences(p, fmt="id_keys")
    assert w["window_id"].to_list() == ["a"] and w["label"].to_list() == [0]
    with pytest.raises(InputError, match="bad log key"):
        read_sequences(p, fmt="deeplog")  # 'a,1' is not a key
    with pytest.raises(LogsieveError, match="unknown sequence format"):
        read_sequences(p, fmt="csv")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "fmt", "line", "match"),
    [
        ("1 2\n3 x 4\n", "deeplog", 2, "bad log key 'x'"),
        ("a,1\nb 2\n", "id_keys", 2, "no comma"),
        ("Sequence,label\n1 2,0\n3,yes\n", "keys_label", 3, "label must be 0 or 1"),
    ],
)
def test_bad_input_names_file_and_line(tmp_path, text, fmt, line, match):
    p = _write(tmp_path / "bad", text)
    with pytest.raises(InputError, match=match) as err:
        read_sequences(p, fmt=fmt)
    assert err.value.line == line and err.value.path == str(p)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="cannot read"):
        read_sequences(tmp_path / "nope")


def test_infer_label():
    assert infer_label("hdfs_train") == 0
    assert infer_label("dir/hdfs_test_normal.txt") == 0
    assert infer_label("hadoop_test_abnormal") == 1
    assert infer_label("hadoop_test_abnormal_machine_down") == 1
    assert infer_label("robust_log_valid.csv") is None
    assert infer_label("trainer") is None


def test_read_templates_both_layouts(tmp_path):
    plain = _write(tmp_path / "T_templates.csv", "a <*>, b\nc <*>\n")
    t = read_templates(plain)
    assert t.rows() == [("E1", "a <*>, b"), ("E2", "c <*>")]
    loghub = _write(tmp_path / "L.csv", 'EventId,EventTemplate,Occurrences\nE3,"x, <*>",4\n7,y,1\n')
    assert read_templates(loghub).rows() == [("E3", "x, <*>"), ("E7", "y")]


def test_concat_windows(tmp_path):
    a = read_sequences(_write(tmp_path / "a_train", "1\n2\n"))
    b = read_sequences(_write(tmp_path / "a_test_abnormal", "3\n"))
    both = concat_windows(a, b)
    assert both.schema == pl.Schema(WINDOW_SCHEMA)
    assert both["window_id"].to_list() == ["a_train:1", "a_train:2", "a_test_abnormal:1"]
    assert both["label"].to_list() == [0, 0, 1]
    assert concat_windows([a, b]).equals(both)
    assert concat_windows().height == 0
    with pytest.raises(LogsieveError, match="lacks column"):
        concat_windows(a.drop("label"))


# --- real files -------------------------------------------------------------------------


def test_deeplog_hdfs_real(shared_data):
    train = read_sequences(shared_data / "hdfs_deeplog" / "hdfs_train")
    abnormal = read_sequences(shared_data / "hdfs_deeplog" / "hdfs_test_abnormal")
    assert train.height == 4855 and abnormal.height == 16838
    assert train["label"].unique().to_list() == [0]
    assert abnormal["label"].unique().to_list() == [1]
    assert train["window_id"][0] == "hdfs_train:1" and train["window_id"][-1] == "hdfs_train:4855"
    keys = set(pl.concat([train, abnormal])["event_ids"].explode().unique().to_list())
    assert keys <= {f"E{i}" for i in range(1, 29)}
    assert train["event_ids"][0].to_list()[:4] == ["E5", "E5", "E5", "E22"]


def test_ait_hadoop_real(shared_data):
    d = shared_data / "ait_sequences" / "hadoop_loghub"
    sizes = {
        name: read_sequences(d / name)
        for name in ["hadoop_train", "hadoop_test_normal", "hadoop_test_abnormal"]
    }
    assert {k: v.height for k, v in sizes.items()} == {
        "hadoop_train": 17,
        "hadoop_test_normal": 150,
        "hadoop_test_abnormal": 811,
    }
    assert sizes["hadoop_test_abnormal"]["label"].unique().to_list() == [1]
    assert sizes["hadoop_test_normal"]["label"].unique().to_list() == [0]
    assert sizes["hadoop_train"]["window_id"][0].startswith("application_")
    parts = [
        read_sequences(d / f"hadoop_test_abnormal_{t}")
        for t in ["disk_full", "machine_down", "network_disconnection"]
    ]
    assert [p.height for p in parts] == [152, 523, 136]
    assert sorted(concat_windows(parts)["window_id"]) == sorted(
        sizes["hadoop_test_abnormal"]["window_id"]
    )
    templates = read_templates(shared_data / "ait_sequences" / "templates" / "Hadoop_templates.csv")
    used = sizes["hadoop_test_abnormal"]["event_ids"].explode().unique()
    assert used.is_in(templates["event_id"].implode()).all()


def test_ait_hdfs_real_ids_match_labels(shared_data):
    train = read_sequences(shared_data / "ait_sequences" / "hdfs_loghub" / "hdfs_train")
    assert train.height == 5583 and train["window_id"].str.starts_with("blk_").all()
    anomalous = (shared_data / "hdfs_labels" / "anomalous_block_ids.txt").read_text().split()
    abnormal = read_sequences(shared_data / "ait_sequences" / "hdfs_loghub" / "hdfs_test_abnormal")
    assert set(abnormal["window_id"]) == set(anomalous)
