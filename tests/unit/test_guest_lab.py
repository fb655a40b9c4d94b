"""The guest lab's modes and host-level cases, without a guest: the modes' kernel command lines, the plan's lab
cells and their boots, the jobs built for them (cases file, scripts, workload), job.sh dispatching to a mode's
script with the guest's commands stubbed, AppArmor and SELinux denials parsed from kernel records, and the
verdicts and Findings answers computed from synthetic records."""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest

from runner import config, guest, lab, plan
from runner.model import Arch, Engine, Status
from runner.results import CellResult
from runner.scenarios import nfs, sehost, systemd
from runner.scenarios.labcase import aa_text, avc_text, build_of, kv

ROOT = Path(__file__).resolve().parents[2]
AA_DENIED = ('type=AVC msg=audit(1795859100.250:120): apparmor="DENIED" operation="mkdir" profile="gcm-go" '
             'name="/root/.cache/go-build/" pid=812 comm="go" requested_mask="c" denied_mask="c" fsuid=0 ouid=0')
AVC_USER = ('type=AVC msg=audit(1795859101.5:121): avc:  denied  { write } for  pid=9 comm="go" name="go-build" '
            'scontext=user_u:user_r:user_t:s0 tcontext=user_u:object_r:xdg_cache_t:s0 tclass=dir permissive=0')


@pytest.fixture(scope="module")
def cfg() -> config.MatrixConfig:
    return config.load(ROOT / "matrix.toml")


def _cells(cfg: config.MatrixConfig, pattern: str) -> list[Any]:
    return plan.build_plan(cfg, plan.Choices(select=(pattern,), engines=(Engine.PODMAN_SELINUX,)),
                           host_arch=Arch.AMD64)


# ---------------------------------------------------------------- modes and the plan
def test_each_mode_picks_its_lsm_on_the_kernel_command_line() -> None:
    assert guest.MODES["selinux"].cmdline == "security=selinux selinux=1 enforcing=1"
    for name in ("systemd", "nfs", "apparmor"):
        assert guest.MODES[name].lsm == "apparmor" and "security=apparmor" in guest.MODES[name].cmdline
    assert guest.mode_of("selinux").name == guest.mode_of("se-host").name == "selinux"
    assert guest.mode_of("systemd").name == "systemd" and guest.mode_of("nfs").name == "nfs"
    with pytest.raises(KeyError):
        guest.mode_of("cold-warm")


def test_lab_cells_exist_on_the_guest_engine_only_and_share_one_boot_per_mode(cfg: config.MatrixConfig) -> None:
    cells = _cells(cfg, "debian-12/amd64/podman-selinux/*")
    by_mode: dict[str, set[str]] = {}
    for c in cells:
        by_mode.setdefault(guest.mode_of(c.scenario).name, set()).add(c.scenario)
    assert by_mode["selinux"] == {"selinux", "se-host"} and by_mode["systemd"] == {"systemd"}
    assert by_mode["nfs"] == {"nfs"} and by_mode["apparmor"] == {"apparmor"}
    se_host = next(c for c in cells if c.scenario == "se-host")
    members = guest.batch_members(se_host, cells)
    assert {m.scenario for m in members} == {"selinux", "se-host"} and {m.toolchain for m in members} == {"go1.27"}
    # the default profile runs the guest's cases with go1.27 only ("selinux@go1.27", "se-host@go1.27", ...)
    assert {c.toolchain.id for c in cells} == {"go1.27"}
    # the container cases come first, then the host-level ones; each toolchain's cases together
    keys = [m.key for m in members]
    assert keys.index("selinux/go1.27/volume") < keys.index("se-host/go1.27/root")
    # the AppArmor modes share one boot (one kernel command line), systemd's cases first
    unit = next(c for c in cells if c.scenario == "systemd")
    shared = [m.scenario for m in guest.batch_members(unit, cells)]
    assert set(shared) == {"systemd", "nfs", "apparmor"}
    assert shared.index("systemd") < shared.index("nfs") < shared.index("apparmor")  # our profiles load last
    assert guest.boot_of("nfs") is guest.boot_of("systemd") is guest.MODES["apparmor"]
    assert guest.boot_of("se-host") is guest.MODES["selinux"]
    docker = plan.build_plan(cfg, plan.Choices(engines=(Engine.DOCKER,)), host_arch=Arch.AMD64)
    assert not {c.scenario for c in docker} & set(lab.CASES)
    for profile in ("default", "full"):
        assert set(lab.CASES) <= {config.split_item(i)[0] for i in cfg.profiles[profile].scenarios}


# ---------------------------------------------------------------- jobs
def test_the_cases_file_has_one_line_per_lab_case_with_its_budget() -> None:
    members = [guest.Member("systemd", "go1.27", "dynamic"), guest.Member("nfs", "go1.22", "v3-nolock")]
    assert guest.case_lines(members, guest.TCG_FACTOR) == [
        f"systemd|go1.27|dynamic|{lab.case_budget('systemd', 'dynamic', guest.TCG_FACTOR):.0f}",
        f"nfs|go1.22|v3-nolock|{lab.case_budget('nfs', 'v3-nolock', guest.TCG_FACTOR):.0f}"]
    with pytest.raises(KeyError):
        guest.case_lines([guest.Member("nfs", "go1.22", "v5")], 1.0)
    assert lab.case_budget("nfs", "v3", guest.TCG_FACTOR) > lab.case_budget("systemd", "root", guest.TCG_FACTOR)


def test_a_lab_job_ships_its_scripts_the_workload_and_the_module_proxy(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GCM_CACHE_DIR", str(tmp_path / "cache"))
    members = [guest.Member("nfs", "go1.27", "v4.2")]
    guest.write_job_tar(tmp_path / "job.tar", ROOT / "images" / guest.RECIPE, guest.MODES["nfs"], members,
                        ["go1.27"], guest.TCG_FACTOR)
    with tarfile.open(tmp_path / "job.tar") as t:
        names = set(t.getnames())
        params = t.extractfile("params").read().decode()  # type: ignore[union-attr]
    assert {"job.sh", "nfs.sh", "goprobe.sh", "ro/lib/go.mod", "ro/lib/go.sum"} <= names
    assert "ro/proxy/gcm.example/words/@v/v1.0.0.zip" in names and "systemd.sh" not in names
    assert params.splitlines() == ["MODE=nfs", "LSM=apparmor", f"IMAGE={guest.IMAGE}",
                                   "GO=go1.27|/dev/vdd|/opt/gcm-go/go1.27|"]


STUBS = {  # every guest command the mode scripts use: each logs its argv
    "systemd-run": 'echo "systemd-run $*" >>"$GCM_LOG"; for a in "$@"; do case $a in StandardOutput=file:*) '
                   'printf "uid=0\\nhome=<unset>\\nbuild_rc=1\\n" >"${a#StandardOutput=file:}";; esac; done',
    "systemctl": 'echo "systemctl $*" >>"$GCM_LOG"; case "$*" in *"--value"*SubState*|*SubState*--value*) '
                 'echo exited;; *ExecMainStatus*--value*|*--value*ExecMainStatus*) echo 1;; esac',
    **{n: 'echo "${0##*/} $*" >>"$GCM_LOG"' for n in ("mount", "useradd", "chmod", "cp", "id", "ls")},
}


def test_job_sh_runs_a_mode_script_per_scenario_and_records_each_case(tmp_path: Path) -> None:
    stubs, job, results = tmp_path / "stubs", tmp_path / "job", tmp_path / "results"
    bash = shutil.which("bash")
    assert bash
    for d in (stubs, job, results):
        d.mkdir()
    for name, body in STUBS.items():
        (stubs / name).write_text(f"#!{bash}\n{body}\n")
        (stubs / name).chmod(0o755)
    members = [guest.Member("systemd", "go1.27", v) for v in ("root", "dynamic-cachedir")]
    guest.write_job_tar(tmp_path / "job.tar", ROOT / "images" / guest.RECIPE, guest.MODES["systemd"], members,
                        ["go1.27"], guest.KVM_FACTOR)
    with tarfile.open(tmp_path / "job.tar") as t:
        t.extractall(job, filter="data")
    script = (job / "systemd.sh").read_text().replace("LAB=/opt/gcm-lab", f"LAB={tmp_path}/lab")
    (job / "systemd.sh").write_text(script)
    env = {**os.environ, "PATH": f"{stubs}:{os.environ['PATH']}", "GCM_LOG": str(tmp_path / "log"),
           "GCM_RESULTS": str(results)}
    subprocess.run([bash, "-c", f'{bash} ./job.sh 3>"$1" >"$2" 2>&1', "_", str(tmp_path / "marks"),
                    str(tmp_path / "job.log")], cwd=job, env=env, check=True, timeout=120)
    log = (tmp_path / "log").read_text()
    marks = (tmp_path / "marks").read_text()
    assert "mount -o ro /dev/vdd /opt/gcm-go/go1.27" in log
    runs = [ln for ln in log.splitlines() if ln.startswith("systemd-run ")]
    assert len(runs) == 2 + 5  # root: first, second; dynamic-cachedir: first, second, property, viaenv, viaenv2
    assert "-p DynamicUser=yes -p CacheDirectory=go-build -E GOCACHE=%C/go-build" in runs[2]
    assert "-p Environment=GOCACHE=%C/go-build" in runs[4] and "cachedir-env" in runs[5]
    assert all("-p RemainAfterExit=yes" in r and "/opt/gcm-go/go1.27" in r for r in runs)
    assert "scenario-start systemd" in marks and "case-end systemd/go1.27/root" in marks
    d = results / "cases/systemd/go1.27/root"
    assert (d / "first.out").read_text().startswith("uid=0") and (d / "first.rc").read_text().strip() == "1"
    assert (d / "t_start").is_file() and (d / "t_end").is_file()
    assert (results / "mode").read_text() == "systemd\n"


# ---------------------------------------------------------------- denials
def test_apparmor_records_are_parsed_from_audit_and_kernel_lines() -> None:
    rec = lab.parse_apparmor(AA_DENIED)
    assert rec is not None and rec["result"] == "DENIED" and rec["operation"] == "mkdir"
    assert rec["profile"] == "gcm-go" and rec["name"] == "/root/.cache/go-build/" and rec["denied_mask"] == "c"
    kernel = "[  48.2] audit: type=1400 " + AA_DENIED.split("msg=", 1)[1]
    assert guest.parse_apparmor_records(AA_DENIED, kernel) == [rec]  # one record, seen twice
    assert lab.parse_apparmor("type=AVC msg=audit(1.0:1): avc: denied { write }") is None
    assert aa_text([rec]) == "DENIED mkdir /root/.cache/go-build/ (profile gcm-go, comm go)"
    assert aa_text([]) == "none logged"


def test_lab_case_files_give_records_and_denials_of_their_window(tmp_path: Path) -> None:
    root = tmp_path / "results"
    d = root / "cases/se-host/go1.27/user_u"
    d.mkdir(parents=True)
    (d / "out.txt").write_text("id_z=user_u:user_r:user_t:s0\nbuild_rc=0\nbuild_compiled=1\n")
    (d / "t_start").write_text("1795859100.0\n")
    (d / "t_end").write_text("1795859102.0\n")
    (root / "audit.log").write_text(AVC_USER + "\n" + AA_DENIED.replace("1795859100.250", "1795859900.0") + "\n")
    (root / "lab-facts.txt").write_text("lsm=lockdown,capability,selinux\nsystemd=252\n")
    parsed = guest.parse_results(root, [guest.Member("se-host", "go1.27", "user_u")])
    case = parsed["cases"]["se-host/go1.27/user_u"]
    assert case["files"]["out.txt"].startswith("id_z=") and case["window"] == (1795859100.0, 1795859103.0)
    assert [a["comm"] for a in case["avc"]] == ["go"] and case["apparmor"] == []
    assert parsed["facts"]["systemd"] == "252"
    assert avc_text(case["avc"]) == "denied { write } user_t → xdg_cache_t dir (go)"


# ---------------------------------------------------------------- verdicts from records
def test_goprobe_records_read_back() -> None:
    rec = kv("uid=0\nhome=<unset>\nbuild_rc=1\nbuild_sec=0.2\nbuild_compiled=0\nbuild_err=build cache is required, "
             "but could not be located: GOCACHE is not an absolute path\nnot a record\n")
    assert rec["home"] == "<unset>" and "not a record" not in str(rec)
    b = build_of(rec, "build")
    assert b == {"ran": True, "ok": False, "exit_code": 1, "sec": 0.2, "compiled": 0,
                 "stderr": "build cache is required, but could not be located: GOCACHE is not an absolute path"}
    assert build_of(rec, "rebuild") is None


UNIT_FAIL = ("uid=0\nuser=root\nhome=<unset>\ngocache_env=<unset>\ngo_env_gocache=off\nbuild_rc=1\nbuild_compiled=0\n"
             "build_err=build cache is required, but could not be located: GOCACHE is not defined and neither "
             "$XDG_CACHE_HOME nor $HOME are defined\n")
UNIT_OK = ("uid=61234\nhome=<unset>\ngocache_env=/var/cache/go-build\ngo_env_gocache=/var/cache/go-build\nbuild_rc=0\n"
           "build_compiled=1\nrebuild_rc=0\nrebuild_compiled=0\n")


def test_systemd_verdicts_follow_what_the_unit_recorded() -> None:
    v = systemd.verdict("root", {"first.out": UNIT_FAIL, "first.rc": "1\n", "second.out": UNIT_FAIL})
    assert v.status is Status.FAIL and "HOME=<unset>" in v.reason and "neither $XDG_CACHE_HOME" in v.reason
    ok = systemd.verdict("dynamic", {"first.out": UNIT_OK, "second.out": UNIT_OK.replace("build_compiled=1",
                                                                                         "build_compiled=0")})
    assert ok.status is Status.PASS and "a new unit's build hits" in ok.reason
    again = systemd.verdict("dynamic", {"first.out": UNIT_OK, "second.out": UNIT_OK})
    assert again.status is Status.FAIL and "does not outlive the unit" in again.reason
    lost = systemd.verdict("root", {"first.run": "Failed to start transient service unit\n"})
    assert lost.status is Status.ERROR and "Failed to start" in lost.reason
    expanded = systemd.verdict("dynamic-cachedir", {
        "first.out": UNIT_FAIL.replace("gocache_env=<unset>", "gocache_env=%C/go-build"),
        "property.out": UNIT_OK, "viaenv.out": UNIT_OK, "viaenv2.out": UNIT_OK})
    o = expanded.observations
    assert o["setenv_expanded"] is False and o["property_expanded"] is True
    assert o["via_cache_directory"]["build"]["ok"] is True and "$CACHE_DIRECTORY" in expanded.reason


def _nfs_files(cross: int, fail_build: bool = False) -> dict[str, str]:
    step = "{0}_rc=0\n{0}_compiled={1}\n"
    files = {"mount-a.rc": "0\n", "mount-b.rc": "0\n", "flock.txt": f"cross={cross}\nsame=1\n",
             "mounts.txt": "127.0.0.1:/srv/gcm-nfs/x /mnt/gcm-go1.27-v3-a nfs rw,vers=3,nolock,local_lock=all 0 0\n",
             "go-a.out": step.format("modd", 0) + step.format("cold", 3) + step.format("warm", 0),
             "go-b.out": step.format("other", 0),
             "conc-a.out": step.format("modd", 0) + step.format("build", 3),
             "conc-b.out": step.format("modd", 0) + step.format("build", 3),
             "clean.out": step.format("clean", 0) + step.format("after", 3)}
    if fail_build:
        files["conc-b.out"] = step.format("modd", 0) + ("build_rc=1\nbuild_err=go: error obtaining buildID: "
                                                        "stale NFS file handle\n")
    return files


def test_nfs_verdicts_and_the_flock_finding() -> None:
    v = nfs.verdict("v3-nolock", _nfs_files(cross=0))
    assert v.status is Status.PASS and "NOT excluded" in v.reason
    assert v.observations["mount"] == {"rc": {"a": "0", "b": "0"}, "vers": "3", "local_lock": "all", "lock": "nolock"}
    cell = _result("nfs", "v3-nolock", v)
    assert nfs.Nfs.outcome(cell).word == "degraded"  # type: ignore[union-attr]
    bad = nfs.verdict("v4.2", _nfs_files(cross=1, fail_build=True))
    assert bad.status is Status.FAIL and "stale NFS file handle" in bad.reason and "excluded" in bad.reason
    lost = nfs.verdict("v3", {"mount-a.rc": "32\n", "mount-b.rc": "32\n", "mount-a.log": "mount.nfs: access denied\n"})
    assert lost.status is Status.ERROR and "access denied" in lost.reason
    answer = nfs.answer_nfs([cell, _result("nfs", "v4.2", bad)])
    assert "v3-nolock: every go command works; flock does NOT exclude" in answer.text
    assert "stale NFS file handle" in answer.text


def test_se_host_verdicts_check_the_mapped_context_and_keep_the_avc() -> None:
    from runner.selinux import parse_avc

    files = {"out.txt": "id_z=user_u:user_r:user_t:s0\nhome=/home/gcmuser\ngo_env_gocache=/home/gcmuser/.cache/go-"
                        "build\nbuild_rc=1\nbuild_err=go: failed to initialize build cache at /home/gcmuser/.cache/"
                        "go-build: mkdir /home/gcmuser/.cache/go-build: permission denied\n",
             "ls1.txt": "user_u:object_r:xdg_cache_t:s0 /home/gcmuser/.cache\n"
                        "ls: cannot access '/home/gcmuser/.cache/go-build': No such file or directory\n"}
    v = sehost.verdict("user_u", files, [parse_avc(AVC_USER)])  # type: ignore[list-item]
    assert v.status is Status.FAIL and "permission denied" in v.reason and "user_t → xdg_cache_t" in v.reason
    wrong = sehost.verdict("staff_u", {"out.txt": "id_z=unconfined_u:unconfined_r:unconfined_t:s0\n"}, [])
    assert wrong.status is Status.ERROR and "not as the mapped SELinux user staff_u" in wrong.reason
    ok_files = {"out.txt": "id_z=user_u:user_r:user_t:s0\nbuild_rc=0\nbuild_compiled=1\nrebuild_rc=0\n"
                           "rebuild_compiled=0\n",
                "ls1.txt": "user_u:object_r:user_home_t:s0 /home/gcmfc/.cache/go-build\n",
                "ls2.txt": "user_u:object_r:xdg_cache_t:s0 /home/gcmfc/.cache/go-build\n"}
    ok = sehost.verdict("user_u-fcontext", ok_files, [])
    assert ok.status is Status.PASS and "after the rule and restorecon: xdg_cache_t:s0" in ok.reason
    answer = sehost.answer_host([_result("se-host", "user_u", v), _result("se-host", "user_u-fcontext", ok)])
    assert answer.text.startswith("Debian 12 refpolicy: ") and "RHEL's targeted policy: not measured here" in \
        answer.text


def _result(scenario: str, variant: str, v: Any) -> CellResult:
    cell = {"id": f"debian-12/amd64/podman-selinux/go1.27/{scenario}:{variant}", "distro": "debian-12",
            "distro_name": "Debian", "release": "12", "arch": "amd64", "engine": "podman-selinux",
            "toolchain": "go1.27", "scenario": scenario, "variant": variant, "emulated": False}
    return CellResult(cell=cell, status=v.status, reason=v.reason, observations=v.observations)


def test_apparmor_verdicts_name_the_profile_and_its_denials() -> None:
    from runner.scenarios import apparmor

    denied = lab.parse_apparmor(AA_DENIED)
    assert denied is not None
    files = {"out.txt": "home=/home/gopher\napparmor=unconfined\nbuild_rc=1\nbuild_err=go: failed to initialize "
                        "build cache at /home/gopher/.cache/go-build: mkdir /home/gopher/.cache: permission denied\n",
             "parser.rc": "0\n", "loaded.txt": "gcm-go (enforce)\n"}
    v = apparmor.verdict("profile", files, [denied, {**denied, "result": "ALLOWED"}])
    assert v.status is Status.FAIL and v.observations["confinement"] == "gcm-go (enforce)"
    assert "DENIED mkdir /root/.cache/go-build/ (profile gcm-go, comm go)" in v.reason and "ALLOWED" not in v.reason
    bad = apparmor.verdict("profile-rw", {**files, "parser.rc": "1\n", "parser.log": "syntax error"}, [])
    assert bad.status is Status.ERROR and "syntax error" in bad.reason
    pod = apparmor.verdict("podman", {"run/label": "containers-default-0.50.1 (enforce)", "run/write": "ok\n",
                                      "run/build.rc": "0\n", "run/build.err": "gcm.example/selinux\n",
                                      "run/second/build.rc": "0\n", "run/second/build.err": ""}, [])
    assert pod.status is Status.PASS and pod.observations["confinement"].startswith("containers-default")
    assert pod.observations["build"]["compiled"] == 1 and pod.observations["rebuild"]["compiled"] == 0
    answer = apparmor.answer_apparmor([_result("apparmor", "profile", v), _result("apparmor", "podman", pod)])
    assert "profile: fails" in answer.text and "podman: builds; DENIED: none logged" in answer.text
    assert "a demonstration, not a finding about a distro" in answer.limits
