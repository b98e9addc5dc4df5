"""Typed run configs: dataclasses loadable from YAML and overridable on the command line.

Every verb of the CLI takes one dataclass. Precedence, lowest first: the dataclass defaults, a YAML file given with
``--config FILE`` (unknown keys are an error that lists the valid ones), then command-line flags parsed by ``tyro``
(``--train.lr 3e-4``). The resolved config is what a run folder stores, so any run can be repeated from it.
"""

from __future__ import annotations

import dataclasses
import sys
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from quartet.core.errors import QuartetError

T = TypeVar("T")


def to_dict(cfg: Any) -> dict[str, Any]:
    """A dataclass as plain YAML/JSON-safe data (paths become strings, tuples lists)."""

    def conv(v: Any) -> Any:
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            return {f.name: conv(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, Path):
            return str(v)
        if isinstance(v, (list, tuple)):
            return [conv(x) for x in v]
        if isinstance(v, dict):
            return {str(k): conv(x) for k, x in v.items()}
        return v

    return conv(cfg)


def _coerce(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if value is None:
        return None
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise QuartetError(f"config key {where!r}: expected a mapping for {tp.__name__}, got {value!r}")
        return from_dict(tp, value, _where=where)
    if origin in (typing.Union, types.UnionType):
        non_none = [a for a in args if a is not type(None)]
        for a in non_none:
            try:
                return _coerce(a, value, where)
            except (QuartetError, TypeError, ValueError):
                continue
        raise QuartetError(f"config key {where!r}: {value!r} does not match {tp}")
    if origin is typing.Literal:
        if value not in args:
            raise QuartetError(f"config key {where!r}: {value!r} is not one of {list(args)}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise QuartetError(f"config key {where!r}: expected a list, got {value!r}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            return tuple(_coerce(a, v, where) for a, v in zip(args, value, strict=True))
        inner = args[0] if args else Any
        seq = [_coerce(inner, v, where) for v in value]
        return tuple(seq) if origin is tuple else seq
    if origin is dict:
        return dict(value)
    if tp is Path:
        return Path(value)
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp in (int, str, bool) and not isinstance(value, tp):
        raise QuartetError(f"config key {where!r}: expected {tp.__name__}, got {value!r}")
    return value


def from_dict(cls: type[T], data: dict[str, Any], _where: str = "") -> T:
    """Build dataclass ``cls`` from a mapping, recursively, checking keys and types.

    Unknown keys raise :class:`QuartetError` naming the key and the valid ones; missing keys keep their defaults."""
    if not isinstance(data, dict):
        raise QuartetError(f"config {_where or cls.__name__}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - names)
    if unknown:
        raise QuartetError(
            f"config {_where or cls.__name__}: unknown key(s) {unknown}; valid keys are {sorted(names)}"
        )
    kwargs = {k: _coerce(hints[k], v, f"{_where}.{k}".lstrip(".")) for k, v in data.items()}
    return cls(**kwargs)


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping, with errors that name the file."""
    p = Path(path)
    if not p.is_file():
        raise QuartetError(f"config file {p} not found")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise QuartetError(f"config file {p} is not valid YAML: {e}") from e
    if not isinstance(data, dict):
        raise QuartetError(f"config file {p}: top level must be a mapping of keys to values")
    return data


def load_config(cls: type[T], path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> T:
    """Defaults of ``cls``, updated from a YAML file, then from ``overrides``.

    Dotted keys reach nested configs: ``{"optim.lr": 1e-3}``."""
    data: dict[str, Any] = load_yaml(path) if path else {}
    for key, value in (overrides or {}).items():
        node = data
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return from_dict(cls, data)


def dump_yaml(cfg: Any) -> str:
    """A dataclass as YAML text (the form ``--config`` reads back)."""
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)


def _split_config_flag(argv: list[str]) -> tuple[str | None, list[str]]:
    rest: list[str] = []
    path = None
    it = iter(range(len(argv)))
    for i in it:
        a = argv[i]
        if a == "--config":
            if i + 1 >= len(argv):
                raise QuartetError("--config needs a YAML file path")
            path = argv[i + 1]
            next(it, None)
        elif a.startswith("--config="):
            path = a.split("=", 1)[1]
        else:
            rest.append(a)
    return path, rest


def parse_cli(
    cls: type[T], argv: list[str] | None = None, prog: str | None = None, description: str | None = None
) -> T:
    """Parse ``argv`` into ``cls``: ``--config FILE.yaml`` sets defaults, other flags (tyro) override them."""
    import tyro

    argv = list(sys.argv[1:] if argv is None else argv)
    path, rest = _split_config_flag(argv)
    default = load_config(cls, path) if path else None
    return tyro.cli(cls, args=rest, default=default, prog=prog, description=description or (cls.__doc__ or ""))
