"""Rootless podman, for real: a user with subuid/subgid ranges (created here, kept for the next run), its own podman
storage and API socket, and what the uid mapping does to a bind-mounted cache.

    root: run env + storage:bind rootful on podman (provisions the image; cheap when cached)
      └─ podman save the cell image (and its gcm-base) ─> the user's podman load
    user gcm-rootless (subuid 100000+): a container writes into a bind-mounted cache as its root and as uid 1000
      └─ owner seen on the host vs in the container  ->  reports/test-artifacts/rootless-podman.json
    user gcm-rootless: `go-cache-matrix run` of the same two cells through its own socket (CONTAINER_HOST)

Every precondition that a host may lack is a skip naming the exact reason and its fix (README "Without root"):
not root (creating a user needs it), no newuidmap/newgidmap (`uidmap`, scripts/setup.sh --tests). The cells need no
network and rootless podman's containers get none (runner.drivers.PodmanDriver): its default, slirp4netns, needs
/dev/net/tun open to the user, which it is not on every host.
Nothing of root's cache is modified: toolchains and rootfs trees are hard-linked into the user's cache (files stay
root's, read-only to the user)."""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import signal
import stat
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runner import paths

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
USER = "gcm-rootless"
CELLS = ["debian-12/amd64/podman/go1.22/env", "debian-12/amd64/podman/go1.22/storage:bind"]
ARTIFACT = ROOT / "reports" / "test-artifacts" / "rootless-podman.json"
CONTAINER_UID = 1000  # a non-root user inside the container: lands on subuid start + 999 on the host


def _missing() -> str | None:
    """Why rootless podman cannot be set up here, or None."""
    if os.geteuid() != 0:
        return "needs root to create the test user (useradd) and its subuid/subgid ranges"
    for tool, fix in (("podman", "scripts/setup.sh"), ("useradd", "apt-get install passwd"),
                      ("runuser", "apt-get install util-linux"), ("newuidmap", "scripts/setup.sh --tests (uidmap)"),
                      ("newgidmap", "scripts/setup.sh --tests (uidmap)")):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            return f"{tool} is not installed (fix: {fix})"
    return None


def _tun_problem() -> str | None:
    """Why an unprivileged user cannot give a rootless container slirp4netns's network, or None (a recorded fact:
    the cells run without a network either way)."""
    if shutil.which("slirp4netns") is None:
        return "slirp4netns is not installed (fix: scripts/setup.sh --tests)"
    try:
        st = os.stat("/dev/net/tun")
    except OSError as e:
        return f"/dev/net/tun: {e.strerror} (fix: modprobe tun)"
    if (st.st_mode & 0o006) != 0o006:
        return (f"/dev/net/tun is {stat.filemode(st.st_mode)} root: slirp4netns, rootless podman's default network, "
                "cannot open it as an unprivileged user (`open(\"/dev/net/tun\"): Permission denied`); the tool's "
                "cell containers there get network mode none")
    return None


def _sh(*cmd: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr[-2000:]}")
    return proc


class Rootless:
    """The test user: its environment, a command runner, and its podman API service."""

    def __init__(self, home: Path, uid: int, runtime: Path, cache: Path, top: Path) -> None:
        self.home, self.uid, self.runtime, self.cache, self.top = home, uid, runtime, cache, top
        self.socket = f"unix://{runtime}/podman/podman.sock"
        self.env = {"HOME": str(home), "USER": USER, "XDG_RUNTIME_DIR": str(runtime), "PATH": "/usr/bin:/bin:/usr/sbin",
                    "GCM_CACHE_DIR": str(cache), "LANG": "C.UTF-8"}  # CONTAINER_HOST only for the tool

    def run(self, *cmd: str, timeout: float = 300, check: bool = True,
            **extra: str) -> subprocess.CompletedProcess[str]:
        env = [f"{k}={v}" for k, v in {**self.env, **extra}.items()]
        return _sh("runuser", "-u", USER, "--", "env", "-i", *env, *cmd, timeout=timeout, check=check)


def _subid_start(file: str) -> int | None:
    for line in Path(file).read_text().splitlines():
        name, _, rest = line.partition(":")
        if name == USER:
            return int(rest.split(":")[0])
    return None


@pytest.fixture(scope="module")
def user(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rootless]:
    if (why := _missing()) is not None:
        pytest.skip(f"rootless podman: {why}")
    try:
        pwd.getpwnam(USER)
    except KeyError:
        _sh("useradd", "--create-home", "--shell", "/bin/sh", "--comment", "go-cache-matrix rootless test", USER)
    for flag, file in (("--add-subuids", "/etc/subuid"), ("--add-subgids", "/etc/subgid")):
        if _subid_start(file) is None:
            _sh("usermod", flag, "100000-165535", USER)
    entry = pwd.getpwnam(USER)
    runtime = Path(f"/run/user/{entry.pw_uid}")  # no logind here: make what pam_systemd would
    (runtime / "podman").mkdir(parents=True, exist_ok=True)
    for p in (runtime, runtime / "podman"):
        os.chown(p, entry.pw_uid, entry.pw_gid)
    runtime.chmod(0o700)
    # pytest's tmp dirs are closed to other users: a directory of our own, removed afterwards.
    top = Path(tempfile.mkdtemp(prefix="gcm-rootless-"))
    top.chmod(0o755)
    cache = top / "cache"
    cache.mkdir()
    os.chown(cache, entry.pw_uid, entry.pw_gid)
    u = Rootless(Path(entry.pw_dir), entry.pw_uid, runtime, cache, top)
    info = u.run("podman", "info", "--format", "{{.Host.Security.Rootless}} {{.Host.IDMappings.UIDMap}}",
                 check=False)
    if info.returncode != 0:
        shutil.rmtree(top, ignore_errors=True)
        pytest.skip(f"rootless podman does not start for {USER}: {info.stderr.strip()[-400:]}")
    try:
        yield u
    finally:
        shutil.rmtree(top, ignore_errors=True)
        # rootless podman keeps a pause process holding the user namespace: it is this test's, so it goes too
        pause = runtime / "libpod" / "tmp" / "pause.pid"
        with contextlib.suppress(OSError, ValueError):
            os.kill(int(pause.read_text().strip()), signal.SIGTERM)


@pytest.fixture(scope="module")
def image(user: Rootless, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Run the cells rootful first (the image, and the rootful side of the comparison), then hand the user a copy
    of the image and of what root's cache holds for it."""
    reports = tmp_path_factory.mktemp("rootful")
    selects = [a for c in CELLS for a in ("--select", c)]
    proc = subprocess.run([sys.executable, "-m", "runner", "run", "--engine", "podman", "--reports", str(reports),
                           "-q", "-n", "0", "--run-id", "it-rootful", *selects],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    cells = {c["id"]: c for c in json.loads((reports / "runs" / "it-rootful" / "results.json").read_text())["cells"]}
    tag = (cells[CELLS[0]].get("image") or {}).get("tag")
    if not tag:
        pytest.skip(f"rootful podman could not provide {CELLS[0]}'s image: {cells[CELLS[0]]['reason']}\n"
                    f"{proc.stdout[-1500:]}")
    have = user.run("podman", "image", "exists", tag, check=False).returncode == 0
    if not have:
        bases = _sh("podman", "images", "--format", "{{.Repository}}:{{.Tag}}", "--filter",
                    "reference=gcm-base/debian-12*").stdout.split()
        archive = user.top / "image.tar"
        _sh("podman", "save", "-o", str(archive), tag, *bases, timeout=600)
        archive.chmod(0o644)
        user.run("podman", "load", "-q", "-i", str(archive), timeout=600)
        archive.unlink()
    # The user's cache: hard links to root's toolchains and rootfs trees (never chown them: they are root's files).
    # Across filesystems, a copy of only what these cells use.
    src = paths.cache_dir()
    for kind, only in (("toolchains", "go1.22.*-linux-amd64"), ("rootfs", "debian-12-amd64-*"), ("pulled", "*")):
        if not (src / kind).is_dir():
            continue
        if _sh("cp", "-al", str(src / kind), str(user.cache / kind), check=False).returncode != 0:
            (user.cache / kind).mkdir(exist_ok=True)
            for p in (src / kind).glob(only):
                _sh("cp", "-a", str(p), str(user.cache / kind / p.name), timeout=600)
        os.chown(user.cache / kind, user.uid, -1)  # the directory only: the tool may add beside what is linked
    return {"tag": tag, "rootful": cells}


def test_bind_mounted_cache_owner_on_host_vs_in_container(user: Rootless, image: dict[str, Any]) -> None:
    """Writes into a bind-mounted cache as the container's root and as uid 1000, with no network (it needs none):
    the host sees the user's own uid for container root and subuid start + 999 for uid 1000."""
    bind = user.cache / "bind-cache"
    bind.mkdir()
    os.chown(bind, user.uid, -1)
    script = ("mkdir -p /cache/as-root && echo x > /cache/as-root/entry && stat -c '%u' /cache/as-root/entry && "
              "cat /proc/self/uid_map")
    as_root = user.run("podman", "run", "--rm", "--network", "none", "-v", f"{bind}:/cache", image["tag"], "sh", "-c",
                       script).stdout.split()
    # uid 1000 in the container is an unmapped stranger to the bind's owner: give it a directory it may write.
    user.run("podman", "run", "--rm", "--network", "none", "-v", f"{bind}:/cache", image["tag"], "sh", "-c",
             f"mkdir -p /cache/as-{CONTAINER_UID} && chown {CONTAINER_UID} /cache/as-{CONTAINER_UID}")
    as_user = user.run("podman", "run", "--rm", "--network", "none", "--user", str(CONTAINER_UID), "-v",
                       f"{bind}:/cache", image["tag"], "sh", "-c",
                       f"echo y > /cache/as-{CONTAINER_UID}/entry && stat -c '%u' /cache/as-{CONTAINER_UID}/entry"
                       ).stdout.split()
    host_root = (bind / "as-root" / "entry").stat().st_uid
    host_user = (bind / f"as-{CONTAINER_UID}" / "entry").stat().st_uid
    start = _subid_start("/etc/subuid")
    assert start is not None
    facts = {"user": USER, "uid": user.uid, "subuid_start": start, "uid_map": " ".join(as_root[1:]),
             "container_root": {"in_container": int(as_root[0]), "on_host": host_root},
             f"container_uid_{CONTAINER_UID}": {"in_container": int(as_user[0]), "on_host": host_user},
             "dev_net_tun": _tun_problem() or "usable"}
    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    ARTIFACT.write_text(json.dumps(facts, indent=2) + "\n")
    print(f"rootless uid mapping: {facts} -> {ARTIFACT}")
    assert facts["container_root"] == {"in_container": 0, "on_host": user.uid}
    assert facts[f"container_uid_{CONTAINER_UID}"] == {"in_container": CONTAINER_UID,
                                                       "on_host": start + CONTAINER_UID - 1}


@pytest.fixture(scope="module")
def service(user: Rootless) -> Iterator[Rootless]:
    """The user's podman API socket, for the tool (CONTAINER_HOST); stopped by its pid afterwards."""
    sock = user.runtime / "podman" / "podman.sock"
    env = [f"{k}={v}" for k, v in user.env.items()]
    proc = subprocess.Popen(["runuser", "-u", USER, "--", "env", "-i", *env, "podman", "system", "service",
                             "--time=0", user.socket], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        if sock.is_socket():
            break
        time.sleep(0.1)
    try:
        yield user
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def _python_for(user: Rootless) -> tuple[str, dict[str, str]]:
    """An interpreter the user may run, with this environment's packages: this one, or the system's of the same
    version reading this one's site-packages (a venv in root's home is closed to other users)."""
    if user.run("test", "-x", sys.executable, check=False).returncode == 0:
        return sys.executable, {}
    system = "/usr/bin/python3"
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    got = user.run(system, "-c", "import sys; print('%d.%d' % sys.version_info[:2])", check=False).stdout.strip()
    if got != version:
        pytest.skip(f"no interpreter {USER} may run: {sys.executable} is closed to it and {system} is {got or 'absent'}"
                    f", not {version}")
    return system, {"PYTHONPATH": f"{ROOT}:{sysconfig.get_paths()['purelib']}:{sysconfig.get_paths()['platlib']}"}


def test_cells_run_rootless_as_that_user(service: Rootless, image: dict[str, Any]) -> None:
    reports = service.top / "reports"
    reports.mkdir()
    os.chown(reports, service.uid, -1)
    if service.run("test", "-r", str(ROOT / "runner" / "cli.py"), check=False).returncode != 0:
        pytest.skip(f"{USER} cannot read this checkout ({ROOT}): a directory above it is closed to other users")
    python, extra = _python_for(service)
    selects = [a for c in CELLS for a in ("--select", c)]
    proc = service.run(python, "-c", f"import os, sys; os.chdir({str(ROOT)!r}); sys.path.insert(0, {str(ROOT)!r}); "
                       "from runner.cli import main; sys.exit(main(sys.argv[1:]))",
                       "run", "--engine", "podman", "--reports", str(reports), "-q", "-n", "0", "--run-id",
                       "it-rootless", *selects, timeout=900, check=False, CONTAINER_HOST=service.socket, **extra)
    print(proc.stdout[-3000:], proc.stderr[-1500:], sep="\n")
    cells = {c["id"]: c for c in json.loads((reports / "runs" / "it-rootless" / "results.json").read_text())["cells"]}
    for cid in CELLS:
        assert cells[cid]["status"] == "pass", (cid, cells[cid]["reason"])
        assert cells[cid]["host"]["engine"]["rootless"] is True
