"""The one family of tool/config errors. Cell problems never raise these: they become results.

Exit codes (documented in the README and `go-cache-matrix --help`):
  0  every selected cell ran and none is fail/error
  1  at least one cell is fail or error (a finding, or a broken cell)
  2  bad input: matrix.toml, environment variable or command-line argument
  3  nothing selected: the filters matched no cell
  4  the host cannot run anything: no engine, engine too old
  130 interrupted (SIGINT)
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class FatalError(Exception):
    exit_code = 1

    def __init__(self, message: str, *, fix: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix

    def __str__(self) -> str:
        return self.message if not self.fix else f"{self.message}\n  fix: {self.fix}"


class ConfigError(FatalError):
    exit_code = 2

    def __init__(self, file: str, key: str | None, message: str, *, fix: str | None = None,
                 line: int | None = None, path: tuple[str | int, ...] = ()) -> None:
        """`file:line: key: message`. path: the key as TOML path parts (dots inside names stay
        unambiguous), so config.load can add the line of a key that parse() found wrong."""
        at = f"{file}:{line}" if line else file
        where = f"{at}: {key}" if key else at
        super().__init__(f"{where}: {message}", fix=fix)
        self.file = file
        self.key = key
        self.line = line
        self.detail = message
        self.path = path


class UsageError(FatalError):
    exit_code = 2


class NothingSelected(FatalError):
    exit_code = 3


class EngineUnavailable(FatalError):
    exit_code = 4


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """' (did you mean 'x'?)' or '' — for messages about unknown names."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
