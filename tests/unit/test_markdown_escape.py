"""Markdown tables: a `|` or a line break in any cell the tool renders must not break the table."""

from __future__ import annotations

from runner.render.markdown import cell_text, table


def test_pipe_and_newline_are_escaped_once() -> None:
    assert cell_text("a | b") == "a \\| b"
    assert cell_text("`x | y`") == "`x \\| y`"
    assert cell_text("already \\| escaped") == "already \\| escaped"
    assert cell_text("line 1\nline 2\r\nline 3") == "line 1<br>line 2<br>line 3"
    assert cell_text(None) == "" and cell_text(3) == "3"


def test_a_reason_with_a_pipe_keeps_the_table_shape() -> None:
    text = table([["debian-12/amd64/docker/go1.22/env", "fail", "go env | grep GOCACHE failed:\nexit 1"]],
                 ["cell", "status", "reason | why"])
    lines = text.splitlines()
    assert len(lines) == 3  # header, rule, one row: the newline did not start a row
    unescaped = [line.replace("\\|", "") for line in lines]
    assert all(line.count("|") == 4 for line in unescaped), text  # 3 columns: 4 unescaped bars per line
