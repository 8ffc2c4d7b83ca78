"""``load_config``: read an experiment TOML file and validate it into an ExperimentConfig.

Unknown keys, wrong types, unknown datasets or models, bad parameter names and missing
files raise one-line errors; each dataset gets its ``data_id`` (a hash of its input
files' bytes and of the settings that shape its data).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from logsieve.errors import LogsieveError
from logsieve.evaluation.experiment.hashing import _file_sha256, _hash_json
from logsieve.evaluation.experiment.readers import (
    _bool,
    _grouping_str,
    _int,
    _keys,
    _list,
    _num,
    _path,
    _paths,
    _regex,
    _str,
    _type_name,
    _Where,
)
from logsieve.evaluation.experiment.specs import (
    EARLY_METHODS,
    HDFS_BLOCK_PATTERN,
    ORDERS,
    SCOPES,
    SPLITS,
    AspectSpec,
    DatasetSpec,
    ExperimentConfig,
)

_RUN_KEYS = ("name", "description", "seeds", "valid", "jobs")
_DATASET_KEYS = (
    "log",
    "format",
    "labels",
    "session",
    "key_pattern",
    "parser",
    "sequences",
    "templates",
    "order",
    "family",
    "description",
    "params",
)
_ASPECT_KEYS = (
    "description",
    "datasets",
    "grouping",
    "split",
    "train",
    "valid",
    "test",
    "class_ratio",
    "class_ratio_scope",
    "label_noise",
    "robust",
    "parsing_noise",
    "early",
    "early_method",
    "early_max_prefix",
    "models",
    "seeds",
    "params",
)
_PARSER_KEYS = ("depth", "sim_th", "max_children")


def _model_params(value: Any, where: _Where, known: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``{model: {param: value}}``, checked against each detector's parameters."""
    if not isinstance(value, dict):
        raise where.error(f"must be a table of [MODEL] tables, not {_type_name(value)}")
    out: dict[str, dict[str, Any]] = {}
    for model, params in value.items():
        sub = where.sub(model)
        if model not in known:
            raise where.error(f"unknown model {model!r}; available: {', '.join(known) or 'none'}")
        if not isinstance(params, dict):
            raise sub.error(f"must be a table of parameters, not {_type_name(params)}")
        names = _param_names(model, sub)
        for key, v in params.items():
            if key == "random_state":
                raise sub.error("random_state is set from the seeds; remove it")
            if key not in names:
                raise sub.error(
                    f"unknown parameter {key!r} for {model} (valid: {', '.join(names)})"
                )
            if isinstance(v, dict):
                raise sub.error(f"{key} must be a number, string, boolean or list, not a table")
        out[model] = {k: (tuple(v) if isinstance(v, list) else v) for k, v in params.items()}
    return out


def _param_names(model: str, where: _Where) -> list[str]:
    from logsieve.detectors.registry import get_detector_class

    try:
        return list(get_detector_class(model)._get_param_names())
    except LogsieveError as exc:
        raise where.error(str(exc)) from None


def _known_models() -> list[str]:
    from logsieve.detectors.registry import list_detectors

    return list_detectors()


def _model_name(value: Any, key: str, where: _Where) -> str:
    name = _str(value, key, where).lower()
    known = _known_models()
    if name not in known:
        raise where.error(f"unknown model {name!r}; available: {', '.join(known) or 'none'}")
    return name


def _guess_family(name: str) -> str:
    low = name.lower()
    for fam in ("hdfs", "bgl", "thunderbird", "spirit", "hadoop", "openstack"):
        if low.startswith(fam):
            return fam
    return low


def _load_dataset(name: str, table: Any, where: _Where, models: Sequence[str]) -> DatasetSpec:
    table = _keys(table, _DATASET_KEYS, where)
    has_log, has_seq = "log" in table, "sequences" in table
    if has_log == has_seq:
        raise where.error(
            "give exactly one of log (a raw log to parse) or sequences (pre-parsed sequences)"
        )
    common: dict[str, Any] = {
        "name": name,
        "family": _str(table.get("family", _guess_family(name)), "family", where).lower(),
        "description": _str(table.get("description", ""), "description", where),
        "params": _model_params(table.get("params", {}), where.sub("params"), models),
    }
    if has_log:
        for key in ("templates", "order"):
            if key in table:
                raise where.error(f"{key} applies to sequences datasets only")
        parser = _keys(table.get("parser", {}), _PARSER_KEYS, where.sub("parser"))
        pw = where.sub("parser")
        checked = {}
        for key, v in parser.items():
            checked[key] = (
                _num(v, key, pw, 0.0, 1.0) if key == "sim_th" else _int(v, key, pw, low=1)
            )
        spec = DatasetSpec(
            kind="log",
            log=_paths(table["log"], "log", where),
            format=_str(table.get("format", "hdfs"), "format", where),
            labels=_path(table["labels"], "labels", where) if "labels" in table else None,
            session=_regex(table.get("session", HDFS_BLOCK_PATTERN), "session", where),
            key_pattern=_regex(table.get("key_pattern", HDFS_BLOCK_PATTERN), "key_pattern", where),
            parser=tuple(sorted(checked.items())),
            **common,
        )
        try:
            from logsieve.parsing.parser import LogParser

            LogParser(spec.format, **dict(spec.parser))
        except LogsieveError as exc:
            raise where.error(f"format: {exc}") from None
    else:
        for key in ("format", "labels", "session", "key_pattern", "parser"):
            if key in table:
                raise where.error(f"{key} applies to raw-log datasets only")
        seq = table["sequences"]
        files: list[tuple[Path, int | None]] = []
        if isinstance(seq, dict):
            sw = where.sub("sequences")
            _keys(seq, ("normal", "abnormal", "unlabelled"), sw)
            for key, lab in (("normal", 0), ("abnormal", 1), ("unlabelled", None)):
                if key in seq:
                    files += [(p, lab) for p in _paths(seq[key], key, sw)]
        else:
            files = [(p, None) for p in _paths(seq, "sequences", where)]
        order = _str(table.get("order", "file"), "order", where)
        if order not in ORDERS:
            raise where.error(f"order must be one of {', '.join(ORDERS)}, not {order!r}")
        spec = DatasetSpec(
            kind="sequences",
            sequences=tuple(files),
            templates=_path(table["templates"], "templates", where)
            if "templates" in table
            else None,
            order=order,
            **common,
        )
    digest = _hash_json({"files": [_file_sha256(p) for p in spec.inputs()], **spec.settings()})
    return replace(spec, data_id=digest[:16])


def _class_ratio(value: Any, key: str, where: _Where) -> float | None:
    if isinstance(value, str) and value == "natural":
        return None
    return _num(value, key, where, 0.0, 1.0, high_open=True)


def _noise_str(value: Any, key: str, where: _Where) -> str:
    from logsieve.evaluation.noise import ParsingNoise

    try:
        return str(ParsingNoise.parse(_str(value, key, where)))
    except LogsieveError as exc:
        raise where.error(f"{key}: {exc}") from None


def _robust(value: Any, key: str, where: _Where) -> str:
    """``false`` -> "none", ``true`` -> "confident" (confident learning), or a method name.

    The method names are those of the detectors' ``robust`` option.
    """
    if isinstance(value, bool):
        return "confident" if value else "none"
    text = _str(value, key, where)
    from logsieve.detectors.neural.robust import (
        ROBUST_METHODS,  # imports torch: only when a method is named
    )

    if text not in ("none", *ROBUST_METHODS):
        raise where.error(
            f"{key} must be false, true or one of {', '.join(ROBUST_METHODS)}, not {text!r}"
        )
    return text


def _load_aspect(
    name: str,
    table: Any,
    where: _Where,
    datasets: Mapping[str, DatasetSpec],
    run: dict[str, Any],
    models_known: Sequence[str],
) -> AspectSpec:
    from logsieve.detectors.registry import detector_info

    table = _keys(table, _ASPECT_KEYS, where)
    for key in ("datasets", "models"):
        if key not in table:
            raise where.error(f"missing key {key!r}")
    names = _list(table["datasets"], "datasets", where, _str)
    for ds in names:
        if ds not in datasets:
            raise where.error(f"unknown dataset {ds!r}; defined: {', '.join(datasets) or 'none'}")
    models = _list(table["models"], "models", where, _model_name)
    grouping_raw = table.get("grouping", ["session"])
    grouping: dict[str, tuple[str, ...]] = {}
    if isinstance(grouping_raw, dict):
        gw = where.sub("grouping")
        _keys(grouping_raw, names, gw)
        for ds in names:
            if datasets[ds].kind == "sequences":
                values = _list(grouping_raw.get(ds, "sequence"), ds, gw, _grouping_str)
            elif ds not in grouping_raw:
                raise gw.error(f"no grouping for dataset {ds!r}")
            else:
                values = _list(grouping_raw[ds], ds, gw, _grouping_str)
            grouping[ds] = values
    else:
        values = _list(grouping_raw, "grouping", where, _grouping_str)
        for ds in names:
            grouping[ds] = ("sequence",) if datasets[ds].kind == "sequences" else values
    for ds, values in grouping.items():
        kind = datasets[ds].kind
        for g in values:
            if (g == "sequence") != (kind == "sequences"):
                what = (
                    "pre-parsed sequences only take grouping 'sequence'"
                    if kind == "sequences"
                    else (
                        "'sequence' grouping is for pre-parsed sequences; "
                        "use session, count:N or time:DUR"
                    )
                )
                raise where.error(f"dataset {ds!r}: {what}")
    split = _list(table.get("split", ["chronological"]), "split", where, _str)
    for s in split:
        if s not in SPLITS:
            raise where.error(f"split must be chronological or random, not {s!r}")
    train = _list(
        table.get("train", [0.6]),
        "train",
        where,
        lambda v, k, w: _num(v, k, w, 0.0, 1.0, low_open=True, high_open=True),
    )
    valid = _num(table.get("valid", run["valid"]), "valid", where, 0.0, 1.0, high_open=True)
    test = table.get("test")
    if test is not None:
        test = _num(test, "test", where, 0.0, 1.0, low_open=True)
    for t in train:
        total = t + valid + (test or 0.0)
        if total > 1 + 1e-9 or (test is None and t + valid >= 1 - 1e-9):
            raise where.error(
                f"train {t:g} + valid {valid:g}{f' + test {test:g}' if test else ''} "
                "leaves no test windows"
            )
    class_ratio = _list(table.get("class_ratio", "natural"), "class_ratio", where, _class_ratio)
    scope = _str(table.get("class_ratio_scope", "train"), "class_ratio_scope", where)
    if scope not in SCOPES:
        raise where.error(f"class_ratio_scope must be train or all, not {scope!r}")
    label_noise = _list(
        table.get("label_noise", [0.0]),
        "label_noise",
        where,
        lambda v, k, w: _num(v, k, w, 0.0, 1.0, high_open=True),
    )
    if any(r > 0 for r in label_noise):
        from logsieve.evaluation.noise import label_noise_available

        if not label_noise_available():
            raise where.error(
                "label_noise needs logsieve.detectors.neural.robust.flip_labels, "
                "which is not available yet"
            )
    robust = _list(table.get("robust", [False]), "robust", where, _robust)
    parsing_noise = _list(table.get("parsing_noise", ["none"]), "parsing_noise", where, _noise_str)
    for noise in parsing_noise:
        if noise.startswith("tokens"):
            seq = [ds for ds in names if datasets[ds].kind == "sequences"]
            if seq:
                raise where.error(
                    f"parsing_noise {noise!r} re-parses raw logs; dataset {seq[0]!r} has none"
                )
    early = _bool(table.get("early", False), "early", where)
    early_method = _str(table.get("early_method", "auto"), "early_method", where)
    if early_method not in EARLY_METHODS:
        raise where.error(
            f"early_method must be one of {', '.join(EARLY_METHODS)}, not {early_method!r}"
        )
    early_max_prefix = _int(table.get("early_max_prefix", 0), "early_max_prefix", where, low=0)
    seeds = _list(
        table.get("seeds", list(run["seeds"])), "seeds", where, lambda v, k, w: _int(v, k, w, low=0)
    )
    params = _model_params(table.get("params", {}), where.sub("params"), models_known)
    incompatible: list[tuple[str, str]] = []
    for model in models:
        info = detector_info(model)
        why = ""
        for ds in names:
            spec = datasets[ds]
            if info.input_kind == "raw" and spec.kind == "sequences":
                why = f"model {model!r} reads raw log text; dataset {ds!r} is pre-parsed sequences"
            elif (
                info.input_kind == "semantic"
                and spec.kind == "sequences"
                and spec.templates is None
            ):
                why = f"model {model!r} needs templates; give dataset {ds!r} a templates file"
            else:
                continue
            incompatible.append((model, ds))
        if sum(m == model for m, _ in incompatible) == len(names):
            raise where.error(why)
        if any(r != "none" for r in robust) and "robust" in params.get(model, {}):
            raise where.error(
                f"robust is an aspect knob here; remove it from [{where.section}.params.{model}]"
            )
    return AspectSpec(
        name=name,
        description=_str(table.get("description", ""), "description", where),
        datasets=names,
        grouping=grouping,
        models=models,
        split=split,
        train=train,
        valid=valid,
        test=test,
        class_ratio=class_ratio,
        class_ratio_scope=scope,
        label_noise=label_noise,
        robust=robust,
        parsing_noise=parsing_noise,
        early=early,
        early_method=early_method,
        early_max_prefix=early_max_prefix,
        seeds=seeds,
        params=params,
        incompatible=tuple(incompatible),
    )


def load_config(path: str | Path) -> ExperimentConfig:
    """Read and validate an experiment config (TOML).

    Unknown keys, wrong types, unknown datasets or models, bad parameter names and
    missing files raise :class:`LogsieveError` with a one-line message naming the
    file, the section and the key. Paths are relative to the config file.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LogsieveError(f"{path}: no such config file") from None
    except UnicodeDecodeError as exc:
        raise LogsieveError(
            f"{path}: not UTF-8 text (byte {exc.start}); a config file is UTF-8 TOML"
        ) from None
    except OSError as exc:
        raise LogsieveError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise LogsieveError(f"{path}: invalid TOML ({exc})") from None
    path = path.resolve()
    top = _Where(path, "")
    _keys(doc, ("run", "params", "datasets", "aspects"), _Where(path, "top level"))
    rw = top.sub("run")
    run_t = _keys(doc.get("run", {}), _RUN_KEYS, rw)
    run: dict[str, Any] = {
        "name": _str(run_t.get("name", path.stem), "name", rw),
        "description": _str(run_t.get("description", ""), "description", rw),
        "seeds": _list(run_t.get("seeds", [0]), "seeds", rw, lambda v, k, w: _int(v, k, w, low=0)),
        "valid": _num(run_t.get("valid", 0.1), "valid", rw, 0.0, 1.0, high_open=True),
        "jobs": _int(run_t.get("jobs", 1), "jobs", rw, low=1),
    }
    models_known = _known_models()
    params = _model_params(doc.get("params", {}), top.sub("params"), models_known)
    ds_table = doc.get("datasets", {})
    if not isinstance(ds_table, dict) or not ds_table:
        raise top.sub("datasets").error("define at least one dataset, e.g. [datasets.hdfs]")
    datasets = {
        name: _load_dataset(name, t, top.sub(f"datasets.{name}"), models_known)
        for name, t in ds_table.items()
    }
    asp_table = doc.get("aspects", {})
    if not isinstance(asp_table, dict) or not asp_table:
        raise top.sub("aspects").error("define at least one aspect, e.g. [aspects.split]")
    aspects = {
        name: _load_aspect(name, t, top.sub(f"aspects.{name}"), datasets, run, models_known)
        for name, t in asp_table.items()
    }
    return ExperimentConfig(
        path=path,
        name=run["name"],
        description=run["description"],
        seeds=run["seeds"],
        valid=run["valid"],
        jobs=run["jobs"],
        datasets=datasets,
        aspects=aspects,
        params=params,
        text=text,
    )
