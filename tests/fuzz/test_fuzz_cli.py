"""Hypothesis property tests over the CLI (issue 16, must-show 1): the reader (random bytes,
line endings, gzip damage), format strings and masks, grouping options, ``--set`` values and
damaged model directories. ``check_case`` asserts the promise for every generated case."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

pytest.importorskip("hypothesis", reason="hypothesis (the dev extra, constraints.txt) is not installed")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from fuzz.conftest import check_case  # noqa: E402

FAST = settings(
    max_examples=int(os.environ.get("LOGSIEVE_FUZZ_EXAMPLES", "40")),
    deadline=None,  # the hard bound is check_case's per-case timeout
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
    derandomize=True,  # the same cases on every run: CI stays reproducible
)
HDFS_LINE = b"081109 203518 143 INFO dfs.DataNode$DataXceiver: Receiving block blk_-16 src: /10.0.0.1:1 dest: /10.0.0.2:2"


def fresh(root: Path) -> Path:
    d = root / uuid.uuid4().hex[:10]
    d.mkdir()
    return d


# ----------------------------------------------------------------------------- the reader
line_bytes = st.one_of(st.just(HDFS_LINE), st.binary(max_size=200), st.text(max_size=80).map(str.encode))
endings = st.sampled_from([b"\n", b"\r\n", b"\r", b"", b"\n\n", b"\x00"])


@FAST
@given(lines=st.lists(st.tuples(line_bytes, endings), max_size=30), fmt=st.sampled_from(["hdfs", "<Content>"]))
def test_reader_random_bytes_and_line_endings(tmp_path_factory, lines, fmt) -> None:
    d = fresh(tmp_path_factory.getbasetemp())
    log = d / "in.log"
    log.write_bytes(b"".join(a + b for a, b in lines))
    out = d / "ev.parquet"
    check_case("reader", ["parse", log, "--format", fmt, "-o", out, "-q"], [out])


@FAST
@given(
    n=st.integers(1, 400),
    cut=st.floats(0.0, 1.0),
    flips=st.lists(st.tuples(st.floats(0.0, 1.0), st.integers(1, 255)), max_size=3),
)
def test_reader_gzip_damage(tmp_path_factory, n, cut, flips) -> None:
    d = fresh(tmp_path_factory.getbasetemp())
    data = bytearray(gzip.compress(b"".join(HDFS_LINE + b" %d\n" % i for i in range(n))))
    for where, xor in flips:
        data[int(where * (len(data) - 1))] ^= xor
    log = d / "in.log.gz"
    log.write_bytes(bytes(data[: max(1, int(cut * len(data)))]))
    out = d / "ev.parquet"
    check_case("gzip", ["parse", log, "--format", "hdfs", "-o", out, "-q"], [out])


# ----------------------------------------------------------------------------- formats, masks
pieces = st.sampled_from(
    ["<Content>", "<Date>", "<Level>", "<line_id>", "<a b>", "<>", "<<", ">", " ", "  ", "[", "]",
     "(", ")", "(?=", "(?P<x>", "\\1", "\\", "*", "+", "?", "{2,1}", "{99999999}", "|", "^", "$",
     ".", "\\d", "\\w+", ":", "-", "x"]
)  # fmt: skip
patterns = st.one_of(st.lists(pieces, max_size=8).map("".join), st.text(max_size=12))


@FAST
@given(fmt=patterns, mask=st.one_of(st.none(), patterns))
def test_formats_and_masks(fuzz_data, tmp_path_factory, fmt, mask) -> None:
    d = fresh(tmp_path_factory.getbasetemp())
    log = d / "in.log"
    log.write_bytes(b"\n".join([HDFS_LINE] * 5) + b"\n2024-01-01 INFO x: y\n")
    out = d / "ev.parquet"
    args = ["parse", log, "--format", fmt, "-o", out, "-q"]
    if mask is not None:
        args += ["--mask", f"m={mask}"]
    check_case("format", args, [out])


# ----------------------------------------------------------------------------- grouping
numbers = st.one_of(st.integers(-5, 50).map(str), st.sampled_from(["0", "99999999999999999999", "1e3", "x", ""]))
durations = st.one_of(
    st.tuples(st.integers(-1, 10**12), st.sampled_from(["ms", "s", "m", "h", "d", "", "y"])).map(
        lambda t: f"{t[0]}{t[1]}"
    ),
    st.text(max_size=6),
)
grouping = st.one_of(
    st.tuples(st.just("--window"), st.one_of(numbers, st.tuples(numbers, numbers).map(",".join))),
    st.tuples(st.just("--time"), st.one_of(durations, st.tuples(durations, durations).map(",".join))),
    st.tuples(st.just("--session"), patterns),
    st.tuples(st.just("--session-field"), st.sampled_from(["Level", "Component", "Pid", "nope", ""])),
)


@FAST
@given(spec=grouping, idle=st.one_of(st.none(), durations))
def test_grouping_options(fuzz_data, tmp_path_factory, spec, idle) -> None:
    d = fresh(tmp_path_factory.getbasetemp())
    out = d / "win.parquet"
    args = ["group", fuzz_data["events"], *spec, "-o", out, "-q"]
    if idle is not None:
        args += ["--idle", idle]
    check_case("grouping", args, [out])


# ----------------------------------------------------------------------------- --set values
json_values = st.one_of(
    st.sampled_from(["-1", "0", "1", "2", "0.5", "1e12", "1e308", "NaN", "-Infinity", "null",
                     "true", "false", '"x"', '"auto"', "[1]", "{}", "[]", "", "{", "x"]),
    st.text(max_size=6),
)  # fmt: skip
PCA_KEYS = ["alpha", "contamination", "n_components", "threshold", "tfidf", "valid_fraction", "random_state", "nope"]
DEEPLOG_KEYS = ["history_size", "hidden_size", "num_candidates", "threshold", "lr", "batch_size",
                "valid_fraction", "random_state", "session_bounds"]  # fmt: skip


@FAST
@given(
    model=st.sampled_from(["pca", "deeplog"]),
    sets=st.lists(st.tuples(st.integers(0, 100), json_values), min_size=1, max_size=3),
)
def test_set_values(fuzz_data, tmp_path_factory, model, sets) -> None:
    d = fresh(tmp_path_factory.getbasetemp())
    keys = PCA_KEYS if model == "pca" else DEEPLOG_KEYS
    args = ["train", fuzz_data["windows"], "-m", model, "-o", d / "m", "-q"]
    if model == "deeplog":
        args += ["--set", "epochs=1", "--set", "num_layers=1"]
    for k, v in sets:
        args += ["--set", f"{keys[k % len(keys)]}={v}"]
    check_case("set", args, [d / "m"], timeout=60)


# ----------------------------------------------------------------------------- model directories
damage = st.sampled_from(["truncate", "flip", "swap", "symlink", "delete", "empty", "dir"])
model_files = st.sampled_from(["model.json", "weights.safetensors", "pipeline.json", "parser_state.json"])


@FAST
@given(how=damage, file=model_files, where=st.floats(0.0, 1.0), other=model_files)
def test_damaged_model_directories(fuzz_data, tmp_path_factory, how, file, where, other) -> None:
    d = fresh(tmp_path_factory.getbasetemp())
    model = d / "m"
    shutil.copytree(fuzz_data["model"], model)
    path = model / file
    data = path.read_bytes()
    if how == "truncate":
        path.write_bytes(data[: int(where * len(data))])
    elif how == "flip":
        b = bytearray(data)
        b[int(where * (len(b) - 1))] ^= 0xFF
        path.write_bytes(bytes(b))
    elif how == "swap":
        other = other if other != file else "train_summary.json"
        tmp = model / "x.tmpswap"
        path.rename(tmp)
        (model / other).rename(path)
        tmp.rename(model / other)
    elif how == "symlink":
        path.unlink()
        target = {0: "/dev/zero", 1: str(model / other), 2: str(d / "missing")}[int(where * 2.99)]
        path.symlink_to(target)
    elif how == "delete":
        path.unlink()
    elif how == "empty":
        path.write_bytes(b"")
    else:
        path.unlink()
        path.mkdir()
    out = d / "s.parquet"
    check_case("model_dir", ["detect", fuzz_data["windows"], "-m", model, "-o", out, "-q"], [out])


# ----------------------------------------------------------------------------- real entry point
def test_real_entry_point_prints_no_traceback(fuzz_data, tmp_path) -> None:
    """A few damaged inputs through ``python -m logsieve`` as a user runs it."""
    gz = tmp_path / "t.gz"
    gz.write_bytes(gzip.compress(HDFS_LINE * 200)[:-30])
    model = tmp_path / "m"
    shutil.copytree(fuzz_data["model"], model)
    doc = json.loads((model / "model.json").read_text())
    doc["state"] = [1]
    (model / "model.json").write_text(json.dumps(doc))
    cases = [
        ["parse", gz, "--format", "hdfs", "-o", tmp_path / "a.parquet"],
        ["detect", fuzz_data["windows"], "-m", model, "-o", tmp_path / "b.parquet"],
        ["group", fuzz_data["log"], "-o", tmp_path / "c.parquet"],
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for args in cases:
        proc = subprocess.run(
            [sys.executable, "-m", "logsieve", *map(str, args)],
            capture_output=True, text=True, timeout=120, env=env,
        )  # fmt: skip
        assert proc.returncode == 2, proc.stderr
        assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
