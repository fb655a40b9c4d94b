"""The README's set-up, for real: scripts/setup.sh in a fresh Debian 12 and a fresh Debian 13 container.

Each container starts from the tool's own debootstrap rootfs of that release (its `rootfs` source, built and
cached by runner.images if not there yet), imported as a throw-away image: nothing but debootstrap's minbase.
The project (the working tree, as git sees it) is copied in, then, as the README says:

    scripts/setup.sh           apt-get update, the packages, nox from the distro; starting engines and
                               registering binfmt cannot work in an unprivileged container: warnings, exit 0
    nox -s plan -- --profile smoke      the distro's nox, its venv backend (python3-venv), the package installed
    go-cache-matrix doctor     names what a container cannot have (docker, binfmt) with the fix

pip inside the container uses the host's pip configuration (its files and PIP_* variables, copied as they are),
so the test works wherever the host's pip does. Costs a few minutes per release (the packages are downloaded).
"""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from runner import config as config_mod
from runner import images
from runner.drivers import DockerDriver
from runner.engine import LABEL_MANAGED, LABEL_RUN
from runner.model import Arch, ImageSource

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
DOCKER = "docker"
SETUP_TIMEOUT = 1200  # seconds: apt downloads an engine, QEMU and nox
PIP_FILES = ("/etc/pip.conf", "~/.config/pip/pip.conf", "~/.pip/pip.conf")
HOST_CA = "usr/local/share/gcm-host-ca.pem"  # in the container: what the host's pip trusts (PIP_CERT points here)


def _docker(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([DOCKER, *args], capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"docker {' '.join(args[:3])} exited {proc.returncode}: {proc.stderr.strip()[-800:]}")
    return proc


def _project_tar() -> bytes:
    """The working tree as git sees it (tracked and new files, nothing ignored) as a tar under src/."""
    names = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True,
                           check=True).stdout.decode().split("\0")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name in filter(None, names):
            if (ROOT / name).is_file():
                tar.add(ROOT / name, arcname=f"src/{name}", recursive=False)
    return buf.getvalue()


def _host_ca() -> Path | None:
    """The CA bundle the host's pip trusts: a TLS-inspecting proxy's CA is in it, and not in a fresh container's."""
    for name in (os.environ.get("PIP_CERT"), os.environ.get("SSL_CERT_FILE"), "/etc/ssl/certs/ca-certificates.crt"):
        if name and Path(name).is_file():
            return Path(name)
    return None


def _pip_config_tar() -> bytes:
    """The host's pip configuration files at the same paths (root's home is /root in the container too), and the
    CA bundle its pip trusts at HOST_CA."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        ca = _host_ca()
        if ca is not None:
            tar.add(ca, arcname=HOST_CA)
        for name in PIP_FILES:
            path = Path(os.path.expanduser(name))
            if path.is_file():
                target = "root/" + str(path.relative_to(Path.home())) if name.startswith("~") else name.lstrip("/")
                tar.add(path, arcname=target)
    return buf.getvalue()


@pytest.fixture(params=["debian-12", "debian-13"])
def fresh(request: pytest.FixtureRequest) -> Iterator[str]:
    """A running container of a fresh Debian release (its debootstrap rootfs), with the project at /src."""
    distro = config_mod.load(ROOT / "matrix.toml").distros[request.param]
    rootfs_only = replace(distro, sources=(ImageSource.ROOTFS,))
    driver = DockerDriver()
    base, _ = images.base_for_build(driver, rootfs_only, Arch.host(), emulated=False)
    assert base.tar is not None and base.tar.is_file(), base
    run_id = f"it-setup-{uuid.uuid4().hex[:8]}"
    tag = f"gcm-it-setup/{distro.id}:{run_id}"
    name = f"gcm-{run_id}-{distro.id}"
    _docker("import", "--change", f"LABEL {LABEL_MANAGED}=1", "--change", f"LABEL {LABEL_RUN}={run_id}",
            str(base.tar), tag, timeout=300)
    try:
        passed = {k: v for k, v in os.environ.items()
                  if (k.startswith("PIP_") and k != "PIP_CERT") or k.lower().endswith("_proxy")}
        env = [a for k, v in passed.items() for a in ("-e", f"{k}={v}")]
        if _host_ca() is not None:
            env += ["-e", f"PIP_CERT=/{HOST_CA}"]
        _docker("run", "-d", "--name", name, "--label", f"{LABEL_MANAGED}=1", "--label", f"{LABEL_RUN}={run_id}",
                *env, tag, "sleep", "infinity")
        try:
            for data in (_project_tar(), _pip_config_tar()):
                subprocess.run([DOCKER, "cp", "-", f"{name}:/"], input=data, check=True, capture_output=True)
            print(f"{distro.id}: container {name} from {base.origin}")
            yield name
        finally:
            _docker("rm", "-f", name, check=False)
    finally:
        _docker("rmi", "-f", tag, check=False)
        if driver._client is not None:
            driver._client.close()


def _sh(container: str, script: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    proc = _docker("exec", "-w", "/src", container, "bash", "-c", script, timeout=timeout, check=False)
    print(f"$ {script}  → exit {proc.returncode}\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
    return proc


def test_readme_setup_in_a_fresh_debian(fresh: str) -> None:
    setup = _sh(fresh, "scripts/setup.sh", timeout=SETUP_TIMEOUT)
    assert setup.returncode == 0, setup.stderr[-2000:]
    out = setup.stdout + setup.stderr
    assert "apt-get update" in out and "installing:" in out
    assert "warning: docker does not answer" in out  # an unprivileged container cannot run dockerd: said, not hidden
    # nox is the distro's (never pip into the system Python) and the engine packages came from apt
    which = _sh(fresh, "command -v nox && dpkg-query -W -f='${Status}\\n' nox python3-venv docker.io")
    assert which.returncode == 0 and which.stdout.startswith("/usr/bin/nox"), which.stdout
    assert which.stdout.count("install ok installed") == 3, which.stdout

    again = _sh(fresh, "scripts/setup.sh --no-start")  # a second run installs nothing
    assert again.returncode == 0 and "installing:" not in again.stdout, again.stdout

    plan = _sh(fresh, "nox -s plan -- --profile smoke", timeout=SETUP_TIMEOUT)
    assert plan.returncode == 0, plan.stdout[-2000:] + plan.stderr[-2000:]
    said = plan.stdout + plan.stderr  # nox passes the command's stderr on to its stdout
    assert "/docker/go1.22/" in said and "# 2 cells, profile smoke" in said, said

    doctor = _sh(fresh, ".nox/plan/bin/go-cache-matrix doctor")
    text = doctor.stdout
    lines = text.splitlines()
    docker_line = next(i for i, line in enumerate(lines) if line.startswith("  docker:"))
    assert "no answer" in lines[docker_line], text
    assert lines[docker_line + 1].strip().startswith("fix:") and "dockerd" in lines[docker_line + 1], text
    binfmt = next(i for i, line in enumerate(lines) if line.startswith("binfmt_misc"))
    other = "qemu-aarch64" if Arch.host() is Arch.AMD64 else "qemu-x86_64"
    assert "not mounted" in lines[binfmt] or f"{other}: missing" in text, text
    assert "fix: mount -t binfmt_misc" in text or "update-binfmts --enable" in text, text
    # no engine, or only podman (its socket may answer in a container): exit 4, or 0 naming podman
    assert doctor.returncode == 4 or (doctor.returncode == 0 and "essentials: ok (podman" in text), text
