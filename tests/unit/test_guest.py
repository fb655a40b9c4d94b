"""The SELinux guest target's pure parts: accelerator choice, QEMU command, the job (its data, and job.sh run
with every guest command stubbed), results and AVC parsing, verdicts from the records, the plan's guest cells,
and the report's row and title note."""

from __future__ import annotations

import dataclasses
import io
import os
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest

from runner import config, guest, plan
from runner.model import Arch, Engine, Status
from runner.render.markdown import details
from runner.results import CellResult
from runner.scenarios import catalogue
from runner.scenarios import selinux as se
from runner.scenarios.guestcell import guest_outcome

ROOT = Path(__file__).resolve().parents[2]
CPUINFO = "processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu vme de pse msr {extra} sse2\n\nprocessor\t: 1\n"
DENIED = ('type=AVC msg=audit(1795859100.250:120): avc:  denied  { write } for  pid=812 comm="touch" '
          'name="gcm-bind" dev="vda" ino=4242 scontext=system_u:system_r:container_t:s0:c318,c800 '
          'tcontext=unconfined_u:object_r:user_home_t:s0 tclass=dir permissive=0')
GO_ERR = "go: failed to initialize build cache at /cache: mkdir /cache/00: permission denied\n"


@pytest.fixture(scope="module")
def cfg() -> config.MatrixConfig:
    return config.load(ROOT / "matrix.toml")


# ---------------------------------------------------------------- accelerator, QEMU
def test_kvm_only_when_usable_and_the_cpu_shows_vmx_or_svm() -> None:
    assert guest.cpu_flags(CPUINFO.format(extra="vmx")) >= {"vmx", "sse2"}
    kvm = guest.choose_accel(True, guest.cpu_flags(CPUINFO.format(extra="svm")))
    assert kvm.name == "kvm" and "kvm" in kvm.args and kvm.factor < 2
    pvm = guest.choose_accel(True, guest.cpu_flags(CPUINFO.format(extra="")))  # a PVM /dev/kvm: no vmx/svm
    assert pvm.name == "tcg" and "tcg,thread=multi" in pvm.args and "no vmx/svm" in pvm.why
    assert pvm.factor == guest.TCG_FACTOR
    assert guest.choose_accel(False, frozenset({"vmx"})).name == "tcg"
    assert guest.choose_accel(True, frozenset()).to_dict()["accel"] == "TCG"
    assert guest.kvm_usable(Path("/nonexistent/kvm")) is False


def test_install_hint_per_kind_of_host() -> None:
    assert guest.install_hint('ID=debian\nVERSION_ID="12"\n') == "apt-get install qemu-system-x86 qemu-utils"
    assert guest.install_hint('ID="rocky"\nID_LIKE="rhel centos fedora"\n').startswith("dnf install")
    assert "Debian/Ubuntu" in guest.install_hint("ID=plan9\n")


def test_qemu_command_has_no_network_the_mode_lsm_and_one_disk_per_toolchain_mount(tmp_path: Path) -> None:
    accel = guest.choose_accel(False, frozenset())
    go = [tmp_path / "go1.22.img", tmp_path / "go1.27.img"]
    cmd = guest.qemu_command("qemu-system-x86_64", accel, tmp_path, tmp_path / "o.qcow2", tmp_path / "r.img",
                             tmp_path / "job.tar", go, tmp_path / "serial.log", guest.MODES["selinux"].cmdline)
    assert "-nodefaults" in cmd and cmd[cmd.index("-nic") + 1] == "none" and "-netdev" not in cmd
    drives = [cmd[i + 1] for i, a in enumerate(cmd) if a == "-drive"]
    assert [d.split(",")[0] for d in drives] == [f"file={tmp_path}/o.qcow2", f"file={tmp_path}/r.img",
                                                 f"file={tmp_path}/job.tar", f"file={go[0]}", f"file={go[1]}"]
    assert drives[0].endswith("format=qcow2") and all(d.endswith("readonly=on") for d in drives[2:])
    assert "enforcing=1" in cmd[cmd.index("-append") + 1] and cmd[cmd.index("-serial") + 1].startswith("file:")
    assert cmd[cmd.index("-kernel") + 1] == str(tmp_path / "vmlinuz")
    aa = guest.qemu_command("qemu-system-x86_64", accel, tmp_path, tmp_path / "o.qcow2", tmp_path / "r.img",
                            tmp_path / "job.tar", go[:1], tmp_path / "serial.log", guest.MODES["apparmor"].cmdline)
    line = aa[aa.index("-append") + 1]
    assert "security=apparmor apparmor=1" in line and "selinux" not in line


def test_toolchain_mounts_per_mode() -> None:
    se_mounts = guest.go_mounts(guest.MODES["selinux"], ["go1.22", "go1.27"])
    assert [(m.toolchain, m.device, m.mountpoint) for m in se_mounts] == [
        ("go1.22", "/dev/vdd", "/opt/gcm-go/go1.22"), ("go1.27", "/dev/vde", "/opt/gcm-go/go1.27"),
        ("go1.22", "/dev/vdf", "/opt/gcm-go-host/go1.22"), ("go1.27", "/dev/vdg", "/opt/gcm-go-host/go1.27")]
    assert "container_ro_file_t" in se_mounts[0].context and "bin_t" in se_mounts[2].context
    (only,) = guest.go_mounts(guest.MODES["nfs"], ["go1.27"])
    assert only == guest.job.GoMount("go1.27", "/dev/vdd", "/opt/gcm-go/go1.27", "")


def test_preflight_without_qemu_is_unavailable_with_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(guest.accel, "qemu_binary", lambda: None)
    check = guest.preflight_check(Arch.AMD64)
    assert not check.ok and check.mode == "guest" and "qemu-system-x86_64" in check.detail
    assert check.fix and "qemu" in check.fix
    assert not guest.preflight_check(Arch.ARM64).ok


def test_a_cell_without_qemu_is_unavailable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                            cfg: config.MatrixConfig) -> None:
    monkeypatch.setenv("GCM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(guest.accel, "qemu_binary", lambda: None)
    cell = _cell(cfg, "bind-z")
    status, reason, _, _ = guest_outcome(cell, tmp_path / "run", ROOT / "images", [cell])
    assert status is Status.UNAVAILABLE and "apt-get install qemu-system-x86" in reason


# ---------------------------------------------------------------- plan
def _cell(cfg: config.MatrixConfig, variant: str, toolchain: str = "go1.22") -> Any:
    # the selinux profile: every toolchain's cases (the default profile runs "selinux@go1.27")
    return plan.build_plan(cfg, plan.Choices(profile="selinux", engines=(Engine.PODMAN_SELINUX,),
                                             select=(f"debian-12/amd64/podman-selinux/{toolchain}/selinux:{variant}",)),
                           host_arch=Arch.AMD64)[0]


def test_the_guest_engine_plans_only_the_guest_scenarios_on_debian_12_amd64(cfg: config.MatrixConfig) -> None:
    cells = plan.build_plan(cfg, plan.Choices(engines=(Engine.PODMAN_SELINUX,)), host_arch=Arch.AMD64)
    guest_scenarios = {sid for sid in (config.split_item(i)[0] for i in cfg.profiles["default"].scenarios)
                       if catalogue.runs_in_guest(sid)}
    assert cells and {c.scenario for c in cells} == guest_scenarios and "selinux" in guest_scenarios
    assert {(c.distro.id, c.arch) for c in cells} == {("debian-12", Arch.AMD64)}
    assert "debian-12/amd64/podman-selinux/go1.27/selinux:bind-z" in {c.id for c in cells}
    assert {c.toolchain.id for c in cells} == {"go1.27"}  # "selinux@go1.27", like the lab's scenarios
    assert {c.variant for c in cells if c.scenario == "selinux"} == set(se.VARIANTS)
    # a guest-only scenario gets no cell on a host engine
    host = plan.build_plan(cfg, plan.Choices(engines=(Engine.DOCKER,)), host_arch=Arch.AMD64)
    assert not {c.scenario for c in host} & (guest_scenarios - {"selinux"})
    skipped = plan.build_plan(cfg, plan.Choices(profile="selinux", skip=("*/podman-selinux/*",)),
                              host_arch=Arch.AMD64)
    assert skipped and not any(c.engine.is_guest for c in skipped)


def test_cells_of_one_mode_share_a_boot_whatever_their_toolchain(cfg: config.MatrixConfig) -> None:
    planned = [_cell(cfg, "bind-Z", "go1.27")] + [_cell(cfg, v) for v in ("volume", "bind", "bind-z")]
    assert [m.key for m in guest.batch_members(planned[1], planned)] == [
        "selinux/go1.22/bind", "selinux/go1.22/bind-z", "selinux/go1.22/volume", "selinux/go1.27/bind-Z"]
    assert guest.batch_members(planned[0], planned) == guest.batch_members(planned[1], planned)
    alone = _cell(cfg, "label-disable")
    assert [m.key for m in guest.batch_members(alone, [])] == ["selinux/go1.22/label-disable"]
    distro = dataclasses.replace(alone, toolchain=cfg.toolchains["distro"])
    assert guest.batch_members(alone, [distro, alone]) == guest.batch_members(alone, [alone])


# ---------------------------------------------------------------- the job: data in, job.sh runs it
LOG = 'printf "%s" "${0##*/}" >>"$GCM_LOG"; printf " %q" "$@" >>"$GCM_LOG"; echo >>"$GCM_LOG"'
STUBS = {  # every command of job.sh that needs the guest: each logs its argv; mkdir only below the test's dir
    "podman": LOG + '\nif [ "$1 $2" = "volume inspect" ]; then echo "/vol/$5"; fi\n[ "$1 $2" != "image exists" ] '
                    '|| [ -z "${GCM_NO_IMAGE:-}" ]',
    "timeout": LOG + '\nshift 3\nexec "$@"',
    "runcon": LOG + '\nshift 2\nexec "$@"',
    "bash": LOG,  # make-image.sh, when the baked image is missing
    "mkdir": 'for a in "$@"; do case $a in -*|"$GCM_ROOT"/*) ;; *) ' + LOG + '\nexit 0;; esac; done\n'
             'exec /bin/mkdir "$@"',
    **{name: LOG for name in ("chcon", "restorecon", "semodule", "mount", "stat", "ls")},
}


def _run_job(tmp_path: Path, variants: tuple[str, ...], toolchains: tuple[str, ...] = ("go1.22",),
             **env: str) -> tuple[str, list[str], Path]:
    """job.sh of a job tar for `variants`, run here with the guest's commands stubbed: (the commands it ran, one
    per line with their arguments shell-quoted and this test's dir as ROOT; its GCM-MARK lines; results dir)."""
    stubs, job, results = tmp_path / "stubs", tmp_path / "job", tmp_path / "results"
    real_bash = shutil.which("bash")  # the stubs' bash (make-image.sh's) comes first on the job's PATH
    assert real_bash
    for d in (stubs, job, results):
        d.mkdir(parents=True)
    for name, body in STUBS.items():
        (stubs / name).write_text(f"#!{real_bash}\n{body}\n")
        (stubs / name).chmod(0o755)
    members = [guest.Member("selinux", tc, v) for tc in toolchains for v in variants]
    guest.write_job_tar(tmp_path / "job.tar", ROOT / "images" / guest.RECIPE, guest.MODES["selinux"], members,
                        list(toolchains), guest.TCG_FACTOR)
    with tarfile.open(tmp_path / "job.tar") as t:
        t.extractall(job, filter="data")
    env = {**os.environ, "PATH": f"{stubs}:{os.environ['PATH']}", "GCM_LOG": str(tmp_path / "log"),
           "GCM_ROOT": str(tmp_path), "GCM_RESULTS": str(results), **env}
    subprocess.run([real_bash, "-c", f'{real_bash} ./job.sh 3>"$1" >"$2" 2>&1', "_", str(tmp_path / "marks"),
                    str(tmp_path / "job.log")], cwd=job, env=env, check=True, timeout=60)
    return ((tmp_path / "log").read_text().replace(str(tmp_path), "ROOT"),
            [ln.removeprefix("GCM-MARK ") for ln in (tmp_path / "marks").read_text().splitlines()], results)


def _members(variants: Any, toolchain: str = "go1.22", scenario: str = "selinux") -> list[Any]:
    return [guest.Member(scenario, toolchain, v) for v in variants]


def test_the_cases_file_holds_every_run_with_its_mount_options_and_budget() -> None:
    lines = guest.case_lines(_members(se.VARIANTS), guest.TCG_FACTOR)
    assert len(lines) == sum(len(se.CASES[v]) for v in se.VARIANTS)
    # a build run under TCG: 90 s native x 13 + 30
    assert lines[0] == "selinux|go1.22|bind|1200|first|bind|||label write build"
    assert "selinux|go1.22|bind-Z-reused|1200|second|bind|||label write reuse build" in lines
    assert "selinux|go1.22|label-disable|225|first|bind||label=disable|label write" in lines
    assert "selinux|go1.22|bind-z|1200|first|bind|z||label write build" in lines
    assert guest.case_lines(_members(["volume"], "go1.27"), guest.KVM_FACTOR) == [
        "selinux|go1.27|volume|147|first|volume|||label write build",
        "selinux|go1.27|volume|147|second|volume|||reuse build"]


def test_the_job_runs_every_case_with_its_mount_and_options(tmp_path: Path) -> None:
    log, marks, results = _run_job(tmp_path, se.VARIANTS, ("go1.22", "go1.27"))
    runs = [ln.split(" ", 7)[7] for ln in log.splitlines() if ln.startswith("timeout -k 10 ")]
    assert len(runs) == 2 * sum(len(se.CASES[v]) for v in se.VARIANTS)
    ro, go = "-v ROOT/job/ro:/opt/gcm:ro -v /opt/gcm-go/go1.22:/usr/local/go:ro", "localhost/gcm-busybox:1"
    assert runs[0] == ("podman run --rm --network=none --name gcm-go1.22-bind-first "
                       f"-v /home/gopher/.cache/gcm-go1.22-bind:/cache {ro} "
                       f"-v ROOT/results/cases/selinux/go1.22/bind/first:/out {go} /bin/sh /opt/gcm/case.sh first "
                       "label write build")
    assert "-v /home/gopher/.cache/gcm-go1.22-bind-z:/cache:z " in log
    assert "/home/gopher/.cache/gcm-go1.27-bind-Z:/cache:Z " in log
    assert "-v /opt/gcm-go/go1.27:/usr/local/go:ro" in log
    assert "--name gcm-go1.22-label-disable-first --security-opt label=disable -v /home/gopher/.cache/gcm-go1.22-" \
           "label-disable:/cache " in log
    assert "podman volume create gcm-go1.22-volume" in log and "-v gcm-go1.22-volume:/cache " in log
    # the reused :Z case: its second run mounts the same dir without an option
    reused = [r for r in runs if "gcm-go1.22-bind-Z-reused-" in r]
    assert ["/cache:Z " in r for r in reused] == [True, False]
    assert all("gcm-go1.22-bind-Z-reused:/cache" in r for r in reused)
    build = [r for r in runs if r.startswith("podman build")]
    assert build[0] == ("podman build --pull=never --network=none --build-arg GCM_IMAGE=localhost/gcm-busybox:1 "
                        "--build-arg GCM_RUN=first --build-arg GCM_STEPS=label\\ write\\ build "
                        f"{ro} -v ROOT/results/cases/selinux/go1.22/build-cache-mount/first:/out "
                        "-f ROOT/job/Containerfile-go1.22-build-cache-mount "
                        "-t localhost/gcm-build:go1.22-build-cache-mount-first ROOT/job/ro/ctx")
    assert "stat -c %C /var/tmp/buildah-cache-\\*/\\*" in log  # no buildah cache dir here: the glob stays
    assert "stat -c %C /vol/gcm-go1.22-volume" in log
    for tc in ("go1.22", "go1.27"):
        for v in se.VARIANTS:
            assert f"case-start selinux/{tc}/{v}" in marks and f"case-end selinux/{tc}/{v}" in marks
    assert "run-end go1.22/bind second rc=0" in marks and marks.count("image-done") == 1
    assert (results / "cases/selinux/go1.27/bind-z/second/engine.rc").read_text() == "0\n"
    assert (results / "image-source").read_text() == "baked\n"
    assert (results / "mode").read_text() == "selinux\n"


def test_every_job_mounts_go_read_only_and_makes_the_busybox_image_only_if_the_bake_did_not(tmp_path: Path) -> None:
    log, _, results = _run_job(tmp_path / "baked", ("bind",))
    assert "mount -o ro\\,context=system_u:object_r:container_ro_file_t:s0 /dev/vdd /opt/gcm-go/go1.22" in log
    assert "mount -o ro\\,context=system_u:object_r:bin_t:s0 /dev/vde /opt/gcm-go-host/go1.22" in log
    assert log.index("podman image exists") < log.index("restorecon -R /var/lib/containers")
    assert "make-image.sh" not in log
    log, _, results = _run_job(tmp_path / "missing", ("bind",), GCM_NO_IMAGE="1")
    assert "bash ROOT/job/make-image.sh localhost/gcm-busybox:1 ROOT/results/image.log" in log
    assert log.index("make-image.sh") < log.index("restorecon")
    assert (results / "image-source").read_text() == "boot\n"
    recipe = ROOT / "images" / guest.RECIPE
    make = (recipe / "make-image.sh").read_text()
    assert "cp /bin/busybox" in make and "podman import" in make and "GOCACHE=/cache" in make
    assert "make-image.sh" in (recipe / "bake.sh").read_text()  # the bake makes the same image
    assert "--mount=type=cache,target=/cache" in (recipe / "job" / "Containerfile").read_text()


def test_the_recipe_key_covers_the_recipe_but_not_the_job(tmp_path: Path) -> None:
    recipe = tmp_path / "r"
    (recipe / "policy").mkdir(parents=True)
    (recipe / "job").mkdir()
    (recipe / "bake.sh").write_text("echo bake\n")
    (recipe / "policy" / "x.te").write_text("policy_module(x, 1.0)\n")
    key = guest.recipe_key(recipe, "bookworm", None)
    (recipe / "job" / "case.sh").write_text("echo changed\n")
    (recipe / "README.md").write_text("what the recipe relies on\n")
    assert guest.recipe_key(recipe, "bookworm", None) == key
    (recipe / "make-image.sh").write_text("podman import\n")
    assert guest.recipe_key(recipe, "bookworm", None) != key
    key = guest.recipe_key(recipe, "bookworm", None)
    (recipe / "policy" / "x.te").write_text("policy_module(x, 1.1)\n")
    assert guest.recipe_key(recipe, "bookworm", None) != key
    assert guest.recipe_key(recipe, "bookworm", "http://mirror.invalid/debian") != guest.recipe_key(
        recipe, "bookworm", None)


def test_the_shipped_recipe_has_what_the_key_and_the_bake_need() -> None:
    recipe = ROOT / "images" / guest.RECIPE
    for name in ("bake.sh", "make-image.sh", "packages.txt", "policy/gcmstdio.te", "job/case.sh", "job/job.sh",
                 "job/Containerfile", "README.md",
                 "rootfs/usr/local/sbin/gcm-guest-job", "rootfs/etc/containers/containers.conf"):
        assert (recipe / name).is_file(), name
    packages = (recipe / "packages.txt").read_text()
    for p in ("selinux-policy-default", "selinux-policy-src", "podman", "netavark", "busybox-static", "auditd"):
        assert f"\n{p}\n" in packages
    assert 'cgroup_manager = "cgroupfs"' in (recipe / "rootfs/etc/containers/containers.conf").read_text()


# ---------------------------------------------------------------- results: files -> records -> verdicts
def _write_run(d: Path, *, label: str | None = "system_u:system_r:container_t:s0:c318,c800\x00",
               write: str | None = "ok", build_rc: int | None = None, build_err: str = "",
               t: tuple[float, float] = (1795859100.0, 1795859110.0), reuse: str | None = None) -> None:
    d.mkdir(parents=True)
    if reuse is not None:
        (d / "reuse-read").write_text(reuse + "\n")
        (d / "reuse-write").write_text(reuse + "\n")
    if label is not None:
        (d / "label").write_text(label)
    if write is not None:
        (d / "write").write_text(write + "\n")
        (d / "write.err").write_text("" if write == "ok" else "touch: /cache/gcm-write-test: Permission denied\n")
    if build_rc is not None:
        (d / "build.rc").write_text(f"{build_rc}\n")
        (d / "build.err").write_text(build_err)
        (d / "build.time").write_text("10.5 70.75\n")
    (d / "engine.rc").write_text("0\n")
    (d / "dir_label_before").write_text("unconfined_u:object_r:user_home_t:s0\n")
    (d / "dir_label_after").write_text("unconfined_u:object_r:user_home_t:s0\n")
    (d / "t_start").write_text(f"{t[0]}\n")
    (d / "t_end").write_text(f"{t[1]}\n")


def test_compiled_packages_are_the_package_lines_only() -> None:
    err = "internal/goarch\nruntime\ngcm.example/greet\ngo: downloading gcm.example/greet v1.1.0\n# runtime\n"
    assert guest.compiled_packages(err) == ["internal/goarch", "runtime", "gcm.example/greet"]
    assert guest.compiled_packages(GO_ERR) == []


def test_results_give_records_avcs_by_case_window_and_verdicts(tmp_path: Path) -> None:
    root = tmp_path / "results"
    _write_run(root / "cases/selinux/go1.22/bind/first", write="denied", build_rc=1, build_err=GO_ERR)
    _write_run(root / "cases/selinux/go1.22/bind/second", label=None, write=None, build_rc=1, build_err=GO_ERR,
               t=(1795859111.0, 1795859120.0))
    pkgs = "".join(f"p{i}\n" for i in range(37))
    _write_run(root / "cases/selinux/go1.22/bind-z/first", build_rc=0, build_err=pkgs, t=(1795859200.0, 1795859300.0))
    _write_run(root / "cases/selinux/go1.22/bind-z/second", label=None, write=None, build_rc=0,
               t=(1795859301.0, 1795859310.0),
               reuse="ok")
    (root / "audit.log").write_text(DENIED + "\n" + DENIED.replace("1795859100.250", "1795859250.000")
                                    .replace("container_t", "getty_t") + "\n")
    (root / "dmesg.txt").write_text("[   48.2] audit: type=1400 " + DENIED.split("msg=", 1)[1] + "\n")
    (root / "facts.txt").write_text("rc=0\nenforce=Enforcing\npodman=4.3.1\ncontainer_module=400 pp\n")
    (root / "modules").write_text("container (priority 400),gcmstdio (priority 400)\n")
    (root / "image-source").write_text("baked\n")
    parsed = guest.parse_results(root, _members(["bind", "bind-z"]))
    assert parsed["facts"]["podman"] == "4.3.1"
    assert parsed["facts"]["container_module"] == "container (priority 400), gcmstdio (priority 400)"
    assert parsed["facts"]["image_source"] == "baked"
    bind = parsed["cases"]["selinux/go1.22/bind"]
    assert len(bind["avc"]) == 1  # audit.log and dmesg carry the same record once; the getty one is elsewhere
    first = bind["runs"]["first"]
    assert first["label"] == "system_u:system_r:container_t:s0:c318,c800"
    assert first["write"] == {"ok": False, "error": "touch: /cache/gcm-write-test: Permission denied"}
    assert first["build"]["exit_code"] == 1 and first["build"]["stderr"] == GO_ERR.strip()
    v = se.verdict("bind", bind["runs"], bind["avc"])
    assert v.status is Status.PASS and "denied { write } container_t → user_home_t" in v.reason
    assert ":z" in v.reason and "failed to initialize build cache" in v.reason
    z = parsed["cases"]["selinux/go1.22/bind-z"]
    assert se.container_avcs(z["avc"]) == [] and z["runs"]["first"]["build"]["compiled"] == 37
    assert z["runs"]["first"]["build"]["sec"] == pytest.approx(60.25)
    v = se.verdict("bind-z", z["runs"], z["avc"])
    assert v.status is Status.PASS and "cold 37 pkgs" in v.reason


def test_a_denied_write_without_an_avc_does_not_pass(tmp_path: Path) -> None:
    _write_run(tmp_path / "first", write="denied", build_rc=1, build_err=GO_ERR)
    _write_run(tmp_path / "second", label=None, write=None, build_rc=1, build_err=GO_ERR)
    runs = {"first": guest.parse_run(tmp_path / "first"), "second": guest.parse_run(tmp_path / "second")}
    assert se.verdict("bind", runs, []).status is Status.FAIL


def test_lost_output_never_passes(tmp_path: Path) -> None:
    _write_run(tmp_path / "first", label=None, write=None)  # the container wrote nothing (stdio lost, or no start)
    runs = {"first": guest.parse_run(tmp_path / "first"), "second": guest.parse_run(tmp_path / "nothing")}
    for variant in ("bind", "bind-z", "volume"):
        v = se.verdict(variant, runs, [])
        assert v.status is Status.ERROR and "output lost" in v.reason


def _records(write: bool, compiled: int | None = None, label: str = "container_t",
             reuse: bool | None = None) -> dict[str, Any]:
    build = None if compiled is None else {"ran": True, "ok": True, "exit_code": 0, "sec": 1.0, "compiled": compiled}
    return {"label": f"system_u:system_r:{label}:s0:c1,c2", "write": {"ok": write, "error": "" if write else "denied"},
            "build": build, "reuse": None if reuse is None else {"read": reuse, "write": reuse, "error": ""}}


def test_verdicts_of_the_reuse_and_label_disable_cases() -> None:
    ok = se.verdict("bind-Z-reused", {"first": _records(True), "second": {**_records(False, reuse=False), "build": {
        "ran": True, "ok": False, "exit_code": 1, "compiled": 0, "stderr": GO_ERR.strip()}}}, [])
    assert ok.status is Status.PASS and "dontaudit" in ok.reason and "private" in ok.reason
    bad = se.verdict("bind-Z-reused", {"first": _records(True), "second": _records(True, 0, reuse=True)}, [])
    assert bad.status is Status.FAIL and "MCS" in bad.reason
    shared = se.verdict("bind-z-reused", {"first": _records(True), "second": _records(True, reuse=True)}, [])
    assert shared.status is Status.PASS
    mcs = ('type=AVC msg=audit(1.5:9): avc:  denied  { read } for pid=1 comm="cat" name="gcm-write-first" '
           'scontext=system_u:system_r:container_t:s0:c3,c4 tcontext=system_u:object_r:container_file_t:s0:c1,c2 '
           'tclass=file permissive=0')
    from runner.selinux import parse_avc

    split = se.verdict("bind-z-reused", {"first": _records(True), "second": _records(True, reuse=False)},
                       [parse_avc(mcs)])  # type: ignore[list-item]
    assert split.status is Status.FAIL and "MCS categories" in split.reason
    assert "container_file_t:s0:c1,c2" in split.reason
    assert se.verdict("bind-z-reused", {"first": _records(True), "second": _records(False, reuse=True)},
                      []).status is Status.FAIL
    v = se.verdict("label-disable", {"first": _records(True, label="unconfined_t")}, [])
    assert v.status is Status.PASS and "unconfined_t" in v.reason
    warm = se.verdict("volume", {"first": _records(True, 30), "second": {**_records(True, 2, reuse=True),
                                                                         "label": None}}, [])
    assert warm.status is Status.FAIL and "compiled 2" in warm.reason
    locked_out = se.verdict("volume", {"first": _records(True, 30), "second": _records(True, 30, reuse=False)}, [])
    assert locked_out.status is Status.FAIL and "label=level:s0" in locked_out.reason


def test_the_host_engine_phases_follow_the_cases(cfg: config.MatrixConfig) -> None:
    from runner.scenarios import JobContext

    c = dataclasses.replace(_cell(cfg, "bind-Z-reused"), engine=Engine.PODMAN)
    first, second = se.Selinux().phases(c, JobContext(build_timeout=60))
    assert first.mounts[0].relabel == "Z" and second.mounts[0].relabel == "" and first.mounts[0].name == "gocache"
    assert [s["name"] for s in first.steps] == ["label", "write"]
    assert "build" in [s["name"] for s in second.steps]
    (only,) = se.Selinux().phases(dataclasses.replace(c, variant="label-disable"), JobContext(build_timeout=60))
    assert only.security_opt == ("label=disable",)
    vol = se.Selinux().phases(dataclasses.replace(c, variant="volume"), JobContext(build_timeout=60))
    assert {p.mounts[0].kind for p in vol} == {"volume"}


# ---------------------------------------------------------------- boot plumbing: markers, results disk, stale jobs
def test_markers_in_serial_text() -> None:
    text = "Debian GNU/Linux\r\nGCM-MARK guest-up kernel=6.1 selinux=Enforcing\r\nx GCM-MARK case-start bind\r\n"
    assert guest.markers_in(text) == ["guest-up kernel=6.1 selinux=Enforcing", "case-start bind"]


def test_the_results_disk_is_a_tar_followed_by_zeros(tmp_path: Path) -> None:
    img = tmp_path / "results.img"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        data = b"rc=0\n"
        info = tarfile.TarInfo("./facts.txt")
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    img.write_bytes(buf.getvalue() + bytes(1 << 20))
    got, problem = guest.untar(img, tmp_path / "out")
    assert problem is None and got is not None and (got / "facts.txt").read_text() == "rc=0\n"
    img.write_bytes(bytes(1 << 16))
    got, problem = guest.untar(img, tmp_path / "out2")
    assert got is None and problem
    bad = io.BytesIO()
    with tarfile.open(fileobj=bad, mode="w") as t:
        info = tarfile.TarInfo("../escape")
        t.addfile(info, io.BytesIO(b""))
    img.write_bytes(bad.getvalue())
    got, problem = guest.untar(img, tmp_path / "out3")
    assert got is None and "unsafe" in str(problem) and not (tmp_path / "escape").exists()


def test_stale_job_dirs_of_dead_processes_are_swept(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GCM_CACHE_DIR", str(tmp_path))
    dead = guest.jobs_root() / "999999999-dead"
    dead.mkdir(parents=True)
    (dead / "owner").write_text("999999999\n")
    (dead / "overlay.qcow2").write_bytes(b"x")
    with guest.job_dir() as mine:
        assert not dead.exists() and (mine / "owner").read_text().strip() == str(os.getpid())
        assert guest.sweep_stale_jobs() == 0 and mine.exists()
    assert not mine.exists()


# ---------------------------------------------------------------- report
GUEST = {"accel": "TCG", "duration_factor": 13.0, "qemu": "7.2.22", "kernel": "6.1.0-50-amd64", "podman": "4.3.1",
         "policy": "Debian refpolicy 2:2.20221101-9", "container_module": "400 container pp", "enforce": "Enforcing"}


def test_the_detail_table_names_where_the_column_was_measured() -> None:
    runs = {"first": {**_records(False), "build": {"ran": True, "ok": False, "exit_code": 1, "compiled": 0,
                                                   "stderr": GO_ERR.strip()},
                      "dir_label_before": "unconfined_u:object_r:user_home_t:s0", "dir_label_after": ""},
            "second": {"label": None, "write": None, "build": {"ran": True, "ok": False, "exit_code": 1,
                                                               "compiled": 0, "stderr": GO_ERR.strip()}}}
    from runner.selinux import parse_avc

    v = se.verdict("bind", runs, [parse_avc(DENIED)], {"guest": GUEST})  # type: ignore[list-item]
    cell = {"id": "debian-12/amd64/podman-selinux/go1.22/selinux:bind", "distro": "debian-12", "distro_name": "Debian",
            "release": "12", "arch": "amd64", "engine": "podman-selinux", "toolchain": "go1.22", "scenario": "selinux",
            "variant": "bind", "emulated": False}
    (d,) = details([CellResult(cell=cell, status=v.status, reason=v.reason, observations=v.observations)])
    row = dict(zip(d.headers, d.rows[0], strict=True))
    assert row["write"].startswith("denied") and row["AVC (container_t)"] == "{ write } → user_home_t dir"
    assert row["go build (cold)"].startswith("exit 1: go: failed to initialize build cache")
    assert row["for users"] == se.USER_NOTE["bind"] and row["status"] == "pass"
    assert "TCG" in d.title and "podman 4.3.1" in d.title and "refpolicy 2:2.20221101-9" in d.title
    assert "not Fedora/RHEL `container-selinux`" in d.title



def test_killed_bakes_of_other_recipes_are_deleted_unless_one_is_running(monkeypatch: pytest.MonkeyPatch,
                                                                        tmp_path: Path) -> None:
    import fcntl

    monkeypatch.setenv("GCM_CACHE_DIR", str(tmp_path))
    (tmp_path / "locks").mkdir()
    killed, running = tmp_path / "guest" / ".bake-aaaa", tmp_path / "guest" / ".bake-bbbb"
    for d in (killed, running):
        (d / "root").mkdir(parents=True)
    with open(tmp_path / "locks" / "guest-base-bbbb.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # a bake of recipe bbbb in progress
        guest.image._sweep_killed_bakes(tmp_path / "guest")
    assert not killed.exists() and running.exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to bind-mount")
def test_a_work_tree_is_deleted_without_crossing_into_a_bind_mount(tmp_path: Path) -> None:
    from runner.paths import mounts_below, rmtree_unmounted

    precious, work = tmp_path / "precious", tmp_path / "work"
    (precious / "node").mkdir(parents=True)
    (work / "root" / "dev").mkdir(parents=True)
    for _ in range(2):  # stacked, as a bind of the root onto itself leaves them
        subprocess.run(["mount", "--bind", str(precious), str(work / "root" / "dev")], check=True)
    assert len(mounts_below(work)) == 2
    assert rmtree_unmounted(work)
    assert not work.exists() and (precious / "node").is_dir()
