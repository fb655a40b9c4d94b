"""Every verb survives every input (issue 19, item 3): property-based bad input through the real CLI entry
(`runner.cli.main`, in-process), with a fixed seed (`derandomize=True`) and a bounded number of examples.

For each verb: malformed matrix.toml (random mutations of a valid one, garbage, nesting thousands deep), result
directories of any JSON shape (and files that are directories, FIFOs, dangling links, not UTF-8, nested 100 000
deep), bad paths and bad numbers. The outcome is the documented exit code, one `error:` line and a `fix:` line
when it is an error, and never a traceback. The examples tried are counted per verb in the session's summary.

`run` and `bench` get only inputs that must be refused before any engine work, and DOCKER_HOST points at
nothing, so an input that slipped through would be exit 4, never a real run.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import string
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from runner import options, plan
from runner.cli import main
from runner.engine import SdkDriver
from runner.errors import EngineUnavailable, UsageError
from runner.paths import run_id_problem
from tests.faults.tally import BAD_BY_VERB, BAD_INPUTS
from tests.unit.test_bad_input import BASE
from tests.unit.test_results import make

ROOT = Path(__file__).resolve().parents[2]
TRIED: Counter[str] = Counter()
TRACEBACKS: Counter[str] = Counter()
FUZZ = settings(derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


@pytest.fixture(autouse=True)
def _no_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    # Belt and braces for run/bench/clean: an input that got past validation meets no engine (exit 4). Driver.check
    # is replaced rather than pointed at a dead socket: the docker SDK leaks the socket of a failed connect.
    def no_engine(self: SdkDriver) -> dict[str, str]:
        raise EngineUnavailable(f"{self.engine}: no engine in the fuzz tests", fix="none needed")

    monkeypatch.setattr(SdkDriver, "check", no_engine)
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/gcm-fuzz.sock")
    monkeypatch.setenv("CONTAINER_HOST", "unix:///nonexistent/gcm-fuzz.sock")
    for var in options.ENV:  # every GCM_* variable plan and run read (runner.options)
        monkeypatch.delenv(var, raising=False)


def cli(verb: str, argv: list[str], ok: tuple[int, ...], *, subprocess_: bool = False) -> tuple[int, str]:
    """Run the CLI in-process (doctor in a subprocess: it talks to the host's engines); check the exit code is one
    of `ok` (2 is always allowed: bad input), that an error is one `error:` line plus a `fix:` line, and that no
    traceback was printed. Counts the input for `verb`."""
    if subprocess_:
        proc = subprocess.run([sys.executable, "-m", "runner", *argv], capture_output=True, text=True, timeout=120,
                              cwd=ROOT)
        code, text = proc.returncode, proc.stderr + proc.stdout
    else:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(argv)
            except SystemExit as e:  # argparse's own errors
                code = int(e.code or 0)
        text = err.getvalue()
    TRIED[verb] += 1
    if "Traceback" in text:
        TRACEBACKS[verb] += 1
    assert "Traceback" not in text, f"{verb} {argv!r}:\n{text}"
    assert code in (*ok, 2), f"{verb} {argv!r}: exit {code}\n{text[-2000:]}"
    if code == 2:
        errors = [ln for ln in text.splitlines() if "error:" in ln]
        assert len(errors) == 1 and "fix:" in text, f"{verb} {argv!r}: not one error and a fix:\n{text}"
    return code, text


@pytest.fixture(scope="module", autouse=True)
def _tally(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    print(f"fuzzed inputs by verb: {dict(TRIED)}; tracebacks: {sum(TRACEBACKS.values())}")


def _record(request: pytest.FixtureRequest, before: Counter[str]) -> None:
    """The examples this test tried, as user properties for the session's summary line (tests/faults/tally.py)."""
    tried = TRIED - before
    assert isinstance(request.node, pytest.Item)
    request.node.user_properties.append((BAD_INPUTS, sum(tried.values())))
    request.node.user_properties.append((BAD_BY_VERB, json.dumps({**tried, "tracebacks": sum(TRACEBACKS.values())})))


@contextlib.contextmanager
def tmpdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="gcm-fuzz-") as d:
        yield Path(d)


# ---------------------------------------------------------------- strategies
scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=8)

toml_scalars = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.sampled_from(["inf", "-inf", "nan", "0.0", "-0.0", "1e400", "true", "false", "1979-05-27", "07:32:00",
                     "1979-05-27T07:32:00Z", '""', "[]", "{}", "[[]]", '"\\u0000"', '"a\\nb"', "'$(id)'",
                     '"debian:12;rm -rf /"', '"../../etc"', '"/"', '"*"']),
    st.text(alphabet=string.printable, max_size=15).map(json.dumps),
)
toml_values = st.recursive(toml_scalars, lambda inner: st.lists(inner, max_size=3).map(lambda v: f"[{', '.join(v)}]")
                           | st.dictionaries(st.from_regex(r"[a-z_]{1,6}", fullmatch=True), inner, max_size=3)
                           .map(lambda d: "{" + ", ".join(f"{k} = {v}" for k, v in d.items()) + "}"),
                           max_leaves=5)
BASE_LINES = BASE.splitlines()
VALUE_LINES = [i for i, ln in enumerate(BASE_LINES) if " = " in ln]


@st.composite
def bad_matrices(draw: st.DrawFn) -> str:
    """A mutation of the valid BASE matrix, garbage, or nesting deep enough to exhaust a recursive parser."""
    kind = draw(st.sampled_from(["value", "value", "value", "drop", "garbage", "deep-array", "deep-table"]))
    if kind == "garbage":
        return draw(st.text(max_size=80))
    if kind == "deep-array":
        n = draw(st.integers(min_value=500, max_value=6000))
        return f"schema_version = 1\nx = {'[' * n}{']' * n}\n"
    if kind == "deep-table":
        n = draw(st.integers(min_value=500, max_value=6000))
        return "schema_version = 1\nx = " + "{a = " * n + "1" + "}" * n + "\n"
    lines = list(BASE_LINES)
    i = draw(st.sampled_from(VALUE_LINES))
    if kind == "drop":
        del lines[i]
    else:
        lines[i] = lines[i].partition(" = ")[0] + " = " + draw(toml_values)
    return "\n".join(lines) + "\n"


option_text = st.text(max_size=30) | st.sampled_from(["", " ", "\n", "a=b", "=", "amd64=", "x=$(id)", "debian-12=",
                                                     "debian-12=debian:12;ls", "debian-12=\n", "../..", "/"])


# ---------------------------------------------------------------- plan
def test_plan_survives_any_matrix(request: pytest.FixtureRequest) -> None:
    before = Counter(TRIED)

    @settings(FUZZ, max_examples=150)
    @given(text=bad_matrices())
    def check(text: str) -> None:
        with tmpdir() as d:
            (d / "m.toml").write_text(text, encoding="utf-8")
            cli("plan", ["plan", "--matrix", str(d / "m.toml")], ok=(0, 3))

    check()
    _record(request, before)


def test_plan_survives_any_option(request: pytest.FixtureRequest) -> None:
    before = Counter(TRIED)
    options = ["--shard", "--select", "--skip", "--distro", "--endpoint", "--registry-mirror", "--profile"]

    @settings(FUZZ, max_examples=200)
    @given(option=st.sampled_from(options), value=option_text | st.from_regex(r"-?[0-9]{0,25}/-?[0-9]{0,25}"))
    def check(option: str, value: str) -> None:
        with tmpdir() as d:
            (d / "m.toml").write_text(BASE, encoding="utf-8")
            cli("plan", ["plan", "--matrix", str(d / "m.toml"), f"{option}={value}"], ok=(0, 3))

    check()
    _record(request, before)


# ---------------------------------------------------------------- run (refused before any engine work)
def _refused_shard(text: str) -> bool:
    try:
        plan.parse_shard(text)
    except UsageError:
        return True
    return False


def test_run_refuses_bad_input_before_engine_work(request: pytest.FixtureRequest) -> None:
    before = Counter(TRIED)

    @settings(FUZZ, max_examples=120)
    @given(kind=st.sampled_from(["run-id", "shard", "matrix"]), run_id=st.text(max_size=70),
           shard=st.from_regex(r"[0-9]{0,25}/[0-9]{0,25}") | st.text(max_size=10), matrix=bad_matrices())
    def check(kind: str, run_id: str, shard: str, matrix: str) -> None:
        with tmpdir() as d:
            (d / "m.toml").write_text(BASE if kind != "matrix" else matrix, encoding="utf-8")
            argv = ["run", "--matrix", str(d / "m.toml"), "--reports", str(d / "reports")]
            if kind == "run-id":
                assume(run_id_problem(run_id) is not None)
                argv.append(f"--run-id={run_id}")
            elif kind == "shard":
                assume(_refused_shard(shard))
                argv.append(f"--shard={shard}")
            code, _ = cli("run", argv, ok=(2, 3, 4) if kind == "matrix" else (2, 3))
            assert not (d / "reports" / "runs").exists() or code == 3

    check()
    _record(request, before)


# ---------------------------------------------------------------- report and merge over damaged run dirs
CELL_KEYS = [k for k in make().to_dict() if k != "schema_version"] + [f"cell.{k}" for k in make().cell]
SPECIALS = ["directory", "fifo", "dangling-link", "not-utf8", "empty", "deep-json", "huge-number", "nul"]


def _special(path: Path, kind: str) -> None:
    if kind == "directory":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "dangling-link":
        path.symlink_to(path.parent / "nowhere")
    elif kind == "not-utf8":
        path.write_bytes(b"\xff\xfe{\x80")
    elif kind == "empty":
        path.write_text("")
    elif kind == "deep-json":
        path.write_text("[" * 100_000 + "]" * 100_000)
    elif kind == "huge-number":
        path.write_text("1" + "0" * 5000)
    else:
        path.write_text('{"schema_version": 1\x00}')


@st.composite
def cell_files(draw: st.DrawFn) -> Callable[[Path], None]:
    """A writer of one cell file: a valid cell with one key replaced or removed, any JSON, or a special file."""
    kind = draw(st.sampled_from(["mutated", "mutated", "mutated", "any-json", "special"]))
    if kind == "special":
        special = draw(st.sampled_from(SPECIALS))
        return lambda p: _special(p, special)
    if kind == "any-json":
        value = draw(json_values)
        return lambda p: p.write_text(json.dumps(value))
    d = make().to_dict()
    key = draw(st.sampled_from(CELL_KEYS))
    target, _, sub = key.partition(".") if key.startswith("cell.") else ("", "", key)
    holder = d["cell"] if target else d
    if draw(st.booleans()):
        holder.pop(sub, None)
    else:
        holder[sub] = draw(json_values)
    return lambda p: p.write_text(json.dumps(d))


@st.composite
def run_jsons(draw: st.DrawFn) -> Callable[[Path], None]:
    kind = draw(st.sampled_from(["fields", "fields", "any-json", "special", "none"]))
    if kind == "none":
        return lambda p: None
    if kind == "special":
        special = draw(st.sampled_from(SPECIALS))
        return lambda p: _special(p, special)
    if kind == "any-json":
        value = draw(json_values)
        return lambda p: p.write_text(json.dumps(value))
    keys = ["run_id", "profile", "started", "finished", "interrupted", "host", "choices", "plan", "warnings",
            "conflicts", "problems", "missing_cells", "shards", "resumed"]
    meta = draw(st.dictionaries(st.sampled_from(keys), json_values, max_size=4))
    return lambda p: p.write_text(json.dumps(meta))


def _damaged_run(d: Path, run_json: Callable[[Path], None], cells: list[Callable[[Path], None]]) -> Path:
    run_dir = d / "in" / "runs" / "r1"
    (run_dir / "cells").mkdir(parents=True)
    run_json(run_dir / "run.json")
    (run_dir / "cells" / "good.json").write_text(json.dumps(make().to_dict()))
    for i, write in enumerate(cells):
        write(run_dir / "cells" / f"c{i}.json")
    return run_dir


def test_report_and_merge_survive_any_result_files(request: pytest.FixtureRequest) -> None:
    before = Counter(TRIED)

    @settings(FUZZ, max_examples=150)
    @given(run_json=run_jsons(), cells=st.lists(cell_files(), min_size=1, max_size=3))
    def check(run_json: Callable[[Path], None], cells: list[Callable[[Path], None]]) -> None:
        with tmpdir() as d:
            run_dir = _damaged_run(d, run_json, cells)
            cli("report", ["report", str(run_dir), "--reports", str(d / "in"), "--html", str(d / "r.html"),
                           "--junit", str(d / "r.xml")], ok=(0,))
            cli("merge", ["merge", str(run_dir), "--reports", str(d / "out")], ok=(0,))

    check()
    _record(request, before)


def test_report_and_merge_survive_bad_paths(request: pytest.FixtureRequest) -> None:
    before = Counter(TRIED)
    paths = st.text(max_size=20) | st.sampled_from(["/", "/dev/null", "/proc/self", ".", "..", "-", "\x01",
                                                    "/nonexistent/x", "a" * 300, "//", "~"])

    @settings(FUZZ, max_examples=80)
    @given(path=paths, verb=st.sampled_from(["report", "report-out", "merge", "merge-reports"]))
    def check(path: str, verb: str) -> None:
        with tmpdir() as d:
            below = d / "x" / path.lstrip("/")  # outputs go below the temp dir, whatever the path looks like
            run_dir = _damaged_run(d, lambda p: p.write_text("{}"), [])
            if verb == "report":
                cli("report", ["report", path, "--reports", str(d / "in")], ok=(0,))
            elif verb == "report-out":
                cli("report", ["report", str(run_dir), "--reports", str(d / "in"), f"--output={below}"], ok=(0,))
            elif verb == "merge":
                cli("merge", ["merge", path, "--reports", str(d / "out")], ok=(0,))
            else:  # a --reports of any shape below the temp dir: refused, or written only below it
                cli("merge", ["merge", str(run_dir), f"--reports={below}"], ok=(0,))

    check()
    _record(request, before)


# ---------------------------------------------------------------- clean, doctor, bench
def test_clean_bench_doctor_refuse_bad_input(request: pytest.FixtureRequest) -> None:
    before = Counter(TRIED)

    @settings(FUZZ, max_examples=60)
    @given(run_id=st.text(max_size=70) | st.sampled_from([".", "..", "*", ".+", "a|b", "/"]))
    def clean(run_id: str) -> None:
        assume(run_id_problem(run_id) is not None)
        cli("clean", ["clean", f"--run={run_id}"], ok=(2,))

    @settings(FUZZ, max_examples=40)
    @given(reps=st.integers() | st.text(max_size=8), matrix=bad_matrices())
    def bench(reps: int | str, matrix: str) -> None:
        with tmpdir() as d:
            (d / "m.toml").write_text(matrix if isinstance(reps, int) and 1 <= reps <= 100 else BASE)
            assume(not (isinstance(reps, str) and re.fullmatch(r"\s*[+]?0*([1-9][0-9]?|100)\s*", reps)))
            cli("bench", ["bench", "--matrix", str(d / "m.toml"), "--reports", str(d), f"--reps={reps}"],
                ok=(2, 4))

    @settings(FUZZ, max_examples=6)
    @given(matrix=bad_matrices())
    def doctor(matrix: str) -> None:
        with tmpdir() as d:
            (d / "m.toml").write_text(matrix, encoding="utf-8")
            cli("doctor", ["doctor", "--matrix", str(d / "m.toml")], ok=(0, 4), subprocess_=True)

    clean()
    bench()
    doctor()
    _record(request, before)
