"""QEMU process control: one boot of the guest on a qcow2 overlay, the job in on a disk, the results out on
another, under hard timeouts; and the logged, killable child process the bake runs in.

A boot has no network device. QEMU is always killed, and the overlay and job files deleted, when the boot ends
for any reason (Ctrl-C included); QEMU also dies with the process that started it (PR_SET_PDEATHSIG). Job
directories of processes that are gone (a SIGKILLed run) are swept by the next boot or `clean`.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import shutil
import signal
import subprocess
import tarfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from runner.guest.accel import QEMU, Accel, install_hint, qemu_binary
from runner.guest.errors import GuestError, GuestUnavailable, Progress
from runner.paths import cache_dir

BOOT_TIMEOUT = {"tcg": 360.0, "kvm": 150.0}  # until the guest's job starts (login on the serial console)
MEMORY_MB = 2048
CPUS = 2
RESULTS_DISK_BYTES = 256 << 20
# Less to do under TCG: no crypto self-tests, no drivers for the emulated PC's legacy and KVM hardware.
FAST_CMDLINE = ("cryptomgr.notests modprobe.blacklist=kvm,kvm_amd,kvm_intel,floppy,pcspkr,ata_piix,ata_generic,"
                "i2c_piix4,psmouse,serio_raw,joydev,evdev,aesni_intel")


def die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def run_logged(cmd: Sequence[str], log: Path, timeout: float, progress: Progress, prefix: str) -> int:
    """Run cmd in its own process group, its output to log, lines starting with `prefix` as progress; killed on
    timeout or when this process is interrupted."""
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, errors="replace", start_new_session=True, preexec_fn=die_with_parent)

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


def qemu_img(args: Sequence[str]) -> None:
    proc = subprocess.run(["qemu-img", *args], capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise GuestError(f"qemu-img {' '.join(args)}: {proc.stderr.strip()}")


# ---------------------------------------------------------------- job directories: one per boot
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


# ---------------------------------------------------------------- a boot: overlay, job in, results out
def qemu_command(binary: str, accel: Accel, base_dir: Path, disk: Path, results: Path, job: Path,
                 go: Sequence[Path], serial: Path, lsm_cmdline: str) -> list[str]:
    """QEMU for one job: no network device, no display; the kernel and initrd of base_dir, the mode's LSM on the
    command line; vda the system disk (a qcow2 overlay), vdb the results, vdc the job, vdd on the Go toolchain
    disks (read-only; one image may be attached twice: runner.guest.job.go_mounts). A second serial port (no
    backend) gives the guest a terminal line for a real console login (ttyS1)."""
    return [binary, "-nodefaults", "-no-user-config", *accel.args, "-m", str(MEMORY_MB), "-smp", str(CPUS),
            "-display", "none", "-nic", "none", "-no-reboot", "-monitor", "none",
            "-kernel", str(base_dir / "vmlinuz"), "-initrd", str(base_dir / "initrd.img"),
            "-append", f"root=/dev/vda rw console=ttyS0,115200 {lsm_cmdline} {FAST_CMDLINE} panic=-1",
            "-drive", f"file={disk},if=virtio,format=qcow2",
            "-drive", f"file={results},if=virtio,format=raw",
            "-drive", f"file={job},if=virtio,format=raw,readonly=on",
            *[a for g in go for a in ("-drive", f"file={g},if=virtio,format=raw,readonly=on")],
            "-serial", f"file:{serial}", "-serial", "null"]


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


def boot(base_dir: Path, job: Path, go: Sequence[Path], work: Path, accel: Accel, progress: Progress, *,
         total_timeout: float, lsm_cmdline: str) -> BootResult:
    """Boot once on a qcow2 overlay of the baked base disk (base_dir: base.img, vmlinuz, initrd.img), with the job
    tar and the toolchain disk. QEMU is killed and the overlay deleted on every way out."""
    binary = qemu_binary()
    if binary is None:
        raise GuestUnavailable(f"no {QEMU} here (fix: `{install_hint()}`)")
    serial, results_img, top = work / "serial.log", work / "results.img", work / "overlay.qcow2"
    with open(results_img, "wb") as fh:
        fh.truncate(RESULTS_DISK_BYTES)
    qemu_img(["create", "-q", "-f", "qcow2", "-b", str(base_dir / "base.img"), "-F", "raw", str(top)])
    cmd = qemu_command(binary, accel, base_dir, top, results_img, job, go, serial, lsm_cmdline)
    out = BootResult(results=None)
    t0 = time.monotonic()
    seen = 0
    with open(work / "qemu.log", "w") as qlog:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=qlog, stderr=subprocess.STDOUT,
                                start_new_session=True, preexec_fn=die_with_parent)
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
        out.results, out.problem = untar(results_img, work / "results")
    results_img.unlink(missing_ok=True)
    return out


def untar(img: Path, dest: Path) -> tuple[Path | None, str | None]:
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
