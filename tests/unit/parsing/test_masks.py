"""Masks: each default mask, order, parsing/validation, and Polars == Python."""

from __future__ import annotations

import time

import polars as pl
import pytest

from logsieve.errors import LogsieveError
from logsieve.parsing.masks import (
    DEFAULT_MASKS,
    PY_MAX_CHARS,
    Mask,
    mask_expr,
    mask_text,
    masks_from_dicts,
    masks_to_dicts,
    python_safe,
    validate_masks,
)
from logsieve.parsing.presets import PRESETS

W = "<*>"
BY_NAME = {m.name: m for m in DEFAULT_MASKS}

# name -> (texts the mask must replace entirely, texts it must leave untouched)
CASES: dict[str, tuple[list[str], list[str]]] = {
    "url": (
        ["http://example.com/a?b=1", "hdfs://nn1:9000/user/root", "jdbc:mysql://db:3306/x"],
        ["http:/x", "plain words", "://nothing"],
    ),
    "uuid": (
        ["38101a0b-2096-447d-96ea-a692162415ae", "A692162F-2096-447D-96EA-A692162415AE"],
        ["38101a0b-2096-447d-96ea", "x38101a0b-2096-447d-96ea-a692162415ae"],
    ),
    "ip": (
        ["10.250.19.102", "10.250.19.102:50010", "192.168.1.1:8"],
        ["10.250.19", "1234.5.6.7", "a10.1.1.1"],
    ),
    "mac": (["00:1a:2B:3c:4d:5e", "00:11:22:33:44:55:66:77"], ["00:1a:2b", "0g:1a:2b:3c:4d:5e"]),
    "path": (
        ["/etc/httpd/conf/workers2.properties", "/a/b/", r"C:\Windows\winsxs\x.dll", "/v2/x-y/z"],
        ["I/O", "/tmp", "and/or", "no path here"],
    ),
    "date": (["2016-09-28", "2016/9/27"], ["16-09-28", "2016-09", "20160928"]),
    "time": (["04:30:30", "20:30:31.455", "1:02:03", "18:01:48,963"], ["04:30", "4:3:3"]),
    "hex": (["0x1F", "0XdeadBEEF", "0x0"], ["0x", "x1F", "0xZZ", "a0x1F"]),
    "hexid": (
        ["54fadb412c4e40cdbaed9335e4c35a9e", "ffffffffffff", "123456789012"],
        ["deadbeef", "54fadb412c4e40cdbaed9335e4c35a9g", "abcdef"],
    ),
    "duration_size": (
        ["35ms", "3.5s", "512KB", "2GB", "10us", "7min"],
        ["35 apples", "ms", "12monkeys"],
    ),
    "number": (["42", "3.14", "0"], ["abc123", "blk_123", "v6", "x", "123abc"]),
}


def test_every_default_mask_has_cases() -> None:
    assert set(CASES) == set(BY_NAME)


@pytest.mark.parametrize("name", sorted(CASES))
def test_default_mask_matches_whole_examples(name: str) -> None:
    mask = BY_NAME[name]
    hits, misses = CASES[name]
    for text in hits:
        assert mask_text(text, [mask]) == W, (name, text)
    for text in misses:
        assert mask_text(text, [mask]) == text, (name, text)


def test_default_masks_inside_messages() -> None:
    assert mask_text("uid=0 euid=-1 HWID=1973", [BY_NAME["number"]]) == "uid=<*> euid=-<*> HWID=<*>"
    msg = "Receiving block blk_-42 src: /10.250.19.102:54106 dest: /10.250.19.102:50010"
    assert mask_text(msg, DEFAULT_MASKS) == "Receiving block blk_-<*> src: /<*> dest: /<*>"
    assert (
        mask_text("Served /api/v1/users in 35ms at 2016-09-28 04:30:30", DEFAULT_MASKS)
        == "Served <*> in <*> at <*> <*>"
    )


def test_mask_order_matters() -> None:
    ip, number = BY_NAME["ip"], BY_NAME["number"]
    assert mask_text("from 10.0.0.1 ok", [ip, number]) == "from <*> ok"
    assert mask_text("from 10.0.0.1 ok", [number, ip]) == "from <*>.<*> ok"
    # a preset's own masks come first: the HDFS block mask sees the whole id
    hdfs = PRESETS["hdfs"].all_masks()
    assert hdfs[0].name == "blk"
    assert mask_text("block blk_-1608999687919862906 x", hdfs) == "block <*> x"


def test_parse_ok() -> None:
    m = Mask.parse(r"req=req-\d+")
    assert m == Mask("req", r"req-\d+", W)
    assert Mask.parse("a=x=y").pattern == "x=y"


@pytest.mark.parametrize(
    "spec, words",
    [
        ("noequals", "NAME=REGEX"),
        ("=abc", "name"),
        ("1bad=abc", "name"),
        ("ok=", "empty regex"),
        ("paren=(abc", "invalid regex"),
        ("look=(?<=a)b", "look-around"),
        ("ahead=a(?=b)", "invalid regex"),
        (r"backref=(a)\1", "invalid regex"),
        ("empty=x*", "empty string"),
        (r"bound=\b", "empty string"),
    ],
)
def test_parse_errors(spec: str, words: str) -> None:
    with pytest.raises(LogsieveError) as err:
        Mask.parse(spec)
    assert words in str(err.value)
    assert "\n" not in str(err.value)


def test_validate_names_the_bad_mask() -> None:
    validate_masks(DEFAULT_MASKS)
    with pytest.raises(LogsieveError, match="'second'"):
        validate_masks([Mask("first", r"\d+"), Mask("second", "[")])
    with pytest.raises(LogsieveError, match="not a mask"):
        validate_masks(["abc"])  # type: ignore[list-item]


def test_dict_round_trip() -> None:
    masks = (*DEFAULT_MASKS, Mask("x", "a+", "<X>"))
    assert masks_from_dicts(masks_to_dicts(masks)) == masks
    assert Mask.from_dict({"name": "n", "pattern": "p"}) == Mask("n", "p", W)
    with pytest.raises(LogsieveError):
        Mask.from_dict({"name": "n"})
    with pytest.raises(LogsieveError):
        Mask.from_dict({"name": "n", "pattern": 3})


def test_replacement_is_literal_in_both_paths() -> None:
    m = Mask("d", r"\d+", r"$1 \1 $$")
    text = "a 12 b"
    expected = r"a $1 \1 $$ b"
    assert mask_text(text, [m]) == expected
    got = pl.select(mask_expr(pl.lit(text), [m])).item()
    assert got == expected


def test_rust_only_syntax_falls_back_to_polars() -> None:
    # Python would read [[:digit:]] as a different set, \x{41} not at all.
    digit = Mask("digit", "[[:digit:]]")
    a = Mask("a", r"\x{41}")
    validate_masks([digit, a])
    for text in ("a1b [x] :", "BAB", "no match"):
        both = [digit, a]
        assert mask_text(text, both) == pl.select(mask_expr(pl.lit(text), both)).item()
    assert mask_text("a1b [x] :", [digit]) == "a<*>b [x] :"


def test_nulls_stay_null_in_expr() -> None:
    s = pl.Series("c", ["x 1", None])
    out = pl.DataFrame({"c": s}).select(mask_expr(pl.col("c"), DEFAULT_MASKS))["c"].to_list()
    assert out == ["x <*>", None]


def test_expr_equals_text_on_real_lines(shared_data) -> None:
    root = shared_data / "loghub_2k"
    contents = []
    for csv in sorted(root.glob("*/*_2k.log_structured.csv")):
        df = pl.read_csv(csv, infer_schema=False, encoding="utf8-lossy", n_rows=25)
        contents.extend(df["Content"].to_list())
    assert len(contents) >= 300
    mask_sets = [DEFAULT_MASKS, *(p.all_masks() for p in PRESETS.values())]
    frame = pl.DataFrame({"c": contents})
    for masks in mask_sets:
        vec = frame.select(mask_expr(pl.col("c"), masks))["c"].to_list()
        one = [mask_text(c, masks) for c in contents]
        assert vec == one


# --- no exponential backtracking in mask_text -------------------------------------------------


@pytest.mark.parametrize("pattern", [r"(a+)+$", r"(a|aa)+$", r"(a*)*b$", r"(\w+\s?)+$"])
def test_mask_text_is_fast_on_catastrophic_patterns(pattern: str) -> None:
    mask = Mask("evil", pattern)
    validate_masks([mask])
    text = "a" * 40 + "!"
    start = time.perf_counter()
    out = mask_text(text, [mask])
    assert time.perf_counter() - start < 2.0
    assert out == pl.select(mask_expr(pl.lit(text), [mask])).item()


def test_python_safe_classifies_patterns() -> None:
    for bad in [r"(a+)+$", r"(a|aa)+", r"(x?x?)+", r"(a{1,3})+", r"(/(a+)+)+", r"(?i)(/[a-z]+)+",
                r"([a-z]+.)+", r"(a)\1"]:
        assert not python_safe(bad), bad
    for good in [r"(/[\w-]+)+", r"(?::\d+)+", r"(?:\.\d{1,3}){3}", r"[ab]*c", r"(?:ab)+"]:
        assert python_safe(good), good


def test_builtin_masks_keep_the_python_fast_path() -> None:
    patterns = {m.pattern for p in PRESETS.values() for m in p.all_masks()} | {
        m.pattern for m in DEFAULT_MASKS
    }
    assert [p for p in patterns if not python_safe(p)] == []


def test_long_text_is_masked_through_polars_with_the_same_result() -> None:
    words = [f"user{i} from 10.0.{i % 256}.1 took {i}ms" for i in range(200)]
    text = " ".join(words)
    assert len(text) > PY_MAX_CHARS
    slow = Mask("slow", r"\w+\w+\w+\w+X")  # polynomial in Python on long texts
    masks = [slow, *DEFAULT_MASKS]
    start = time.perf_counter()
    out = mask_text(text, masks)
    assert time.perf_counter() - start < 2.0
    assert out == pl.select(mask_expr(pl.lit(text), masks)).item()
