"""Frozen dataclass configs from TOML, ``key=value`` overrides, and dumps to TOML/JSON.

Every config a user can write (``TrainConfig``, ``DegradationConfig``, ``ModelConfig``) goes
through here, so a typo in a run file or on the command line is refused with a message that
names the key and lists the valid ones, instead of being silently ignored.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from engine.errors import ConfigError

try:  # Python 3.11+
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

T = TypeVar("T")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _is_optional(tp: Any) -> tuple[bool, Any]:
    """(True, inner) for ``X | None``; (False, tp) otherwise."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(tp)) == 2:
            return True, args[0]
    return False, tp


def _convert(value: Any, tp: Any, where: str) -> Any:
    """Check ``value`` (from TOML/JSON) against the annotation ``tp`` and convert lists to
    tuples and ints to floats where the field asks for it."""
    optional, tp = _is_optional(tp)
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{where}: a value is required")
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if isinstance(value, tp):
            return value
        if isinstance(value, str) and hasattr(tp, "preset"):
            return tp.preset(value)  # e.g. degradation = "paper"
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a table of settings, got {value!r}")
        return from_dict(tp, value, where=where)
    origin = typing.get_origin(tp)
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(f"{where}: expected {len(args)} values, got {len(value)}")
        return tuple(_convert(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args, strict=True)))
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(float(value)):
                raise ConfigError(f"{where}: expected a finite number, got {value!r}")
            return float(value)
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{where}: expected a text value, got {value!r}")
    if tp is Path:
        if isinstance(value, (str, Path)):
            return Path(value)
        raise ConfigError(f"{where}: expected a path, got {value!r}")
    return value


def from_dict(cls: type[T], data: Mapping[str, Any], *, where: str = "") -> T:
    """Build the frozen dataclass ``cls`` from a (TOML) mapping; unknown keys are an error.

    Missing keys keep the dataclass defaults; nested dataclass fields take a nested table
    (or, where the class has a ``preset`` classmethod, a preset name).
    """
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where or cls.__name__}: expected a table of settings")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        prefix = f"{where}." if where else ""
        raise ConfigError(
            f"unknown setting{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(prefix + k for k in unknown)}; valid keys: {', '.join(sorted(fields))}"
        )
    hints = _hints(cls)
    kwargs = {
        name: _convert(value, hints[name], f"{where}.{name}" if where else name)
        for name, value in data.items()
    }
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"{where or cls.__name__}: {exc}") from None


def to_dict(cfg: Any) -> dict[str, Any]:
    """Plain dict of a config (tuples as lists, paths as text), ready for TOML or JSON."""

    def plain(v: Any) -> Any:
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, Path):
            return str(v)
        return v

    out = plain(cfg)
    assert isinstance(out, dict)
    return out


def _parse_scalar(text: str, tp: Any, key: str) -> Any:
    optional, tp = _is_optional(tp)
    if optional and text.strip().lower() in ("none", "null", ""):
        return None
    t = text.strip()
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if hasattr(tp, "preset"):
            return tp.preset(t)
        raise ConfigError(f"{key}: set its fields one by one, e.g. {key}.<field>=...")
    origin = typing.get_origin(tp)
    if origin is tuple:
        inner = t[1:-1] if t.startswith(("[", "(")) and t.endswith(("]", ")")) else t
        parts = [p for p in (s.strip() for s in inner.split(",")) if p]
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_parse_scalar(p, args[0], key) for p in parts)
        if len(parts) != len(args):
            raise ConfigError(f"{key}: expected {len(args)} comma-separated values, got {text!r}")
        return tuple(_parse_scalar(p, a, key) for p, a in zip(parts, args, strict=True))
    try:
        if tp is bool:
            low = t.lower()
            if low in _TRUE:
                return True
            if low in _FALSE:
                return False
            raise ValueError
        if tp is int:
            f = float(t.replace("_", ""))
            if not f.is_integer():
                raise ValueError
            return int(f)
        if tp is float:
            v = float(t.replace("_", ""))
            if not math.isfinite(v):
                raise ValueError
            return v
    except ValueError:
        kind = {bool: "true or false", int: "an integer", float: "a number"}[tp]
        raise ConfigError(f"{key}: expected {kind}, got {text!r}") from None
    if tp is Path:
        return Path(t)
    return t


def apply_overrides(cfg: T, overrides: Sequence[str]) -> T:
    """Return ``cfg`` with ``key=value`` overrides applied (dotted keys reach nested configs:
    ``model.channels=32``; lists as ``1,2,3``; booleans as true/false).

    The result is validated again by the dataclasses' ``__post_init__``.
    """
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key=value")
        key, text = item.split("=", 1)
        key = key.strip()
        if not key:
            raise ConfigError(f"override {item!r} has no key")
        cfg = _set_path(cfg, key.split("."), text, key)
    return cfg


def _set_path(obj: Any, path: list[str], text: str, full_key: str) -> Any:
    fields = {f.name for f in dataclasses.fields(obj) if f.init}
    name = path[0]
    if name not in fields:
        raise ConfigError(
            f"unknown setting {full_key!r}; valid keys here: {', '.join(sorted(fields))}"
        )
    if len(path) == 1:
        value = _parse_scalar(text, _hints(type(obj))[name], full_key)
    else:
        child = getattr(obj, name)
        if not (dataclasses.is_dataclass(child) and not isinstance(child, type)):
            raise ConfigError(f"{'.'.join(path[:1])} in {full_key!r} has no sub-settings")
        value = _set_path(child, path[1:], text, full_key)
    return dataclasses.replace(obj, **{name: value})


def load_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML file; a missing or malformed file is a ``ConfigError`` naming it."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config ({exc.strerror})") from None


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ConfigError(f"cannot write non-finite number {v} to TOML")
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # JSON string escapes are valid TOML basic strings
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise ConfigError(f"cannot write {type(v).__name__} to TOML")


def dumps_toml(cfg: Any) -> str:
    """TOML text of a config or plain dict; nested configs become tables. ``None`` values
    are left out (TOML has no null), which reads back as the field's default of None."""
    data = to_dict(cfg) if not isinstance(cfg, Mapping) else dict(cfg)
    lines: list[str] = []
    tables: list[tuple[str, Mapping[str, Any]]] = []

    def emit(prefix: str, d: Mapping[str, Any]) -> None:
        for k, v in d.items():
            if v is None:
                continue
            if isinstance(v, Mapping):
                tables.append((f"{prefix}{k}", v))
            else:
                lines.append(f"{k} = {_toml_value(v)}")

    emit("", data)
    while tables:
        name, d = tables.pop(0)
        lines.append("")
        lines.append(f"[{name}]")
        emit(f"{name}.", d)
    return "\n".join(lines) + "\n"


def dumps_json(cfg: Any) -> str:
    """Indented JSON of a config or plain dict."""
    data = to_dict(cfg) if not isinstance(cfg, Mapping) else dict(cfg)
    return json.dumps(data, indent=2, sort_keys=False) + "\n"
