"""Typed reading of matrix.toml's tables for runner.config: each value checked against the type it must have,
every problem a ConfigError with the key's dotted path; and the line a key is written on, which those errors
point at (tomllib reports values, not positions).
"""

from __future__ import annotations

import datetime as _dt
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from runner.errors import ConfigError, did_you_mean

T = TypeVar("T")


class Reader:
    """Typed access to one TOML table with key paths for messages."""

    def __init__(self, file: str, table: Mapping[str, Any], where: str, path: tuple[str | int, ...] = ()) -> None:
        self.file, self.table, self.where = file, table, where
        self.path = path or ((where,) if where else ())  # TOML path parts, for config.load's line lookup

    def key(self, name: str) -> str:
        return f"{self.where}.{name}" if self.where else name

    def fail(self, name: str | None, message: str, fix: str | None = None) -> ConfigError:
        return ConfigError(self.file, self.key(name) if name else self.where or None, message, fix=fix,
                           path=(*self.path, name) if name else self.path)

    def only(self, *allowed: str) -> None:
        for k in self.table:
            if k not in allowed:
                raise self.fail(
                    k,
                    f"unknown key{did_you_mean(k, allowed)}",
                    fix=f"use one of: {', '.join(allowed)}",
                )

    def get(self, name: str, typ: type[T], default: T | None = None, *, required: bool = False) -> T:
        if name not in self.table:
            if required:
                table = f"[{self.where}]" if self.where else "the top of the file"
                raise self.fail(name, "missing required key", fix=f"add `{name} = ...` to {table}")
            return default  # type: ignore[return-value]
        value: Any = self.table[name]
        if typ is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, typ) or (typ is not bool and isinstance(value, bool)):
            raise self.fail(
                name,
                f"expected {typ.__name__}, found {type(value).__name__} {value!r}",
                fix=f"write {name} as a TOML {TOML_TYPES.get(typ, typ.__name__)}",
            )
        return value

    def number(self, name: str, default: float, *, positive: bool) -> float:
        """A finite float; > 0 when positive, else >= 0 (costs, timeouts, factors)."""
        value = self.get(name, float, default)
        if not math.isfinite(value) or value < 0 or (positive and value == 0):
            raise self.fail(name, f"must be a {'positive' if positive else 'non-negative'} number, found {value}",
                            fix=f"{name} = {default}")
        return value

    def strings(self, name: str, default: tuple[str, ...] = (), *, required: bool = False) -> tuple[str, ...]:
        value: Any = self.get(name, list, None, required=required)
        if value is None:
            return default
        if not value:
            raise self.fail(name, "empty list", fix=f"list at least one value in {name}, or remove the key")
        for item in value:
            if not isinstance(item, str):
                raise self.fail(name, f"expected a list of strings, found {item!r}", fix='quote each item: "..."')
        for i, item in enumerate(value):
            if item in value[:i]:
                raise self.fail(name, f"{item!r} is listed twice", fix=f"remove the second {item!r}")
        return tuple(value)

    def sub(self, name: str) -> Reader:
        return Reader(self.file, self.get(name, dict, {}), self.key(name), (*self.path, name))


TOML_TYPES: dict[type[Any], str] = {str: 'string: "..."', list: 'array: ["...", "..."]', dict: "table",
                                int: "integer", float: "number", bool: "boolean: true or false"}


def enum_value(r: Reader, name: str, value: str, enum_type: type[Any]) -> Any:
    choices = [e.value for e in enum_type]
    try:
        return enum_type(value)
    except ValueError:
        raise r.fail(
            name, f"unknown value {value!r}{did_you_mean(value, choices)}", fix=f"use one of: {', '.join(choices)}"
        ) from None


def date_value(r: Reader, name: str, value: str, *, allow_rolling: bool) -> str:
    if allow_rolling and value == "rolling":
        return value
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            raise ValueError(value)
        _dt.date.fromisoformat(value)
    except ValueError:
        raise r.fail(name, f"not a date: {value!r}", fix='write it as "YYYY-MM-DD"' + (
            ' (or "rolling")' if allow_rolling else "")) from None
    return value


def date_text(r: Reader, name: str, *, required: bool = False) -> str:
    """A date key as "YYYY-MM-DD": a quoted string, or an unquoted TOML date (eol = 2028-06-30)."""
    value = r.table.get(name)
    if isinstance(value, _dt.date) and not isinstance(value, _dt.datetime):
        return value.isoformat()
    return r.get(name, str, required=required)



_TOML_KEY = re.compile(r"""\s*(?:"((?:[^"\\]|\\.)*)"|'([^']*)'|([A-Za-z0-9_-]+))\s*""")


def _key_parts(text: str) -> tuple[str, ...] | None:
    """`a."b.c".d` -> ('a', 'b.c', 'd'); None when text is not a dotted TOML key."""
    parts: list[str] = []
    pos = 0
    while True:
        m = _TOML_KEY.match(text, pos)
        if not m:
            return None
        parts.append(next(g for g in m.groups() if g is not None))
        pos = m.end()
        if pos == len(text):
            return tuple(parts)
        if text[pos] != ".":
            return None
        pos += 1


def key_line(raw: str, path: Sequence[str | int]) -> int | None:
    """The line (from 1) where the TOML key `path` is written, or of its nearest written parent table/key.
    Best effort for messages: tables, [[arrays]], dotted keys and one-line inline tables."""
    lines: dict[tuple[str | int, ...], int] = {}
    header: tuple[str | int, ...] = ()
    counts: dict[tuple[str, ...], int] = {}
    for n, text in enumerate(raw.splitlines(), 1):
        stripped = text.strip()
        m = re.fullmatch(r"\[\[(.+?)\]\]\s*(#.*)?", stripped) or re.fullmatch(r"\[([^\[\]]+)\]\s*(#.*)?", stripped)
        if m:
            parts = _key_parts(m.group(1))
            if parts is None:
                continue
            if stripped.startswith("[["):
                counts[parts] = counts.get(parts, 0) + 1
                header = (*parts, counts[parts] - 1)
            else:
                header = parts
            lines.setdefault(header, n)
            continue
        key, eq, value = text.partition("=")
        parts = _key_parts(key) if eq else None
        if not parts:
            continue
        full = (*header, *parts)
        for i in range(len(header) + 1, len(full) + 1):
            lines.setdefault(full[:i], n)
        if value.lstrip().startswith("{"):  # inline table: { suite = "trixie", variant = "minbase" }
            for inner in re.finditer(r"""[{,]\s*("[^"]*"|'[^']*'|[A-Za-z0-9_-]+)\s*=""", value):
                lines.setdefault((*full, inner.group(1).strip("\"'")), n)
    for i in range(len(path), 0, -1):
        if tuple(path[:i]) in lines:
            return lines[tuple(path[:i])]
    return None
