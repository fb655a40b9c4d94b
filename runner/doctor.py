"""`go-cache-matrix doctor`: what this host has for a run, and for each thing missing the command that fixes it
on this kind of host (apt-get / dnf / pacman / apk, from /etc/os-release).

    host ─ engines (docker, podman) ─ binfmt_misc ─ disk ─ tools ─ registries ─ per-arch preflight ─ verdict

Reads and asks; changes nothing except that the emulated-arch preflight starts one throw-away container.
Never raises for a missing thing: a section that cannot be checked says why. Exit 0 when a docker or podman
engine answers (the essentials), else 4 (no usable engine).
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from runner import config as config_mod
from runner import host, paths
from runner import refs as refs_mod
from runner.drivers import driver_for
from runner.errors import FatalError
from runner.model import Arch, Engine

REGISTRY_TIMEOUT = (3.0, 5.0)  # connect, read: seconds for the /v2/ reachability check
LOW_DISK = 10 * 2**30  # bytes: below this a full matrix run (images + toolchains + caches) may not fit
DEFAULT_REGISTRY = "docker.io"

Out = Callable[[str], None]


def _gib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB"


def _fix(out: Out, text: str) -> None:
    out(f"    fix: {text}")


def _which(name: str) -> str | None:
    """PATH, then the sbin directories a non-root PATH often lacks (dockerd, debootstrap, mkfs.*)."""
    return shutil.which(name) or next((p for d in ("/usr/sbin", "/sbin", "/usr/local/sbin")
                                       if os.access(p := f"{d}/{name}", os.X_OK)), None)


def _version(cmd: list[str]) -> str:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "?"
    return (proc.stdout.strip() or proc.stderr.strip()).splitlines()[0] if proc.returncode == 0 else "?"


def _has_systemd() -> bool:
    return Path("/run/systemd/system").is_dir()


def engine_start_fix(engine: Engine, fields: dict[str, str], installed: bool,
                     url: str | None = None) -> str:
    """The command that gets this engine answering (at url, when not the default) on this kind of host."""
    pm = host.package_manager(fields)
    if engine is Engine.DOCKER:
        start = "systemctl start docker" if _has_systemd() else (
            "rc-service docker start" if pm == "apk" else "dockerd >/var/log/dockerd.log 2>&1 &")
        if url:  # DOCKER_HOST
            start = f"start the docker engine that serves {url} (DOCKER_HOST), or unset DOCKER_HOST and {start}"
    else:
        url = url or "unix:///run/podman/podman.sock"
        start = "systemctl start podman.socket" if _has_systemd() and url.endswith("/run/podman/podman.sock") else (
            f"mkdir -p {os.path.dirname(url.removeprefix('unix://'))} && podman system service --time=0 {url} &"
            if url.startswith("unix://") else f"start the podman service that serves {url} (CONTAINER_HOST)")
    return start if installed else f"{host.install_command(engine.value, fields)} && {start}"


def check_engines(out: Out, fields: dict[str, str]) -> dict[Engine, dict[str, Any]]:
    """Each engine's version and storage facts; {} for an engine that does not answer."""
    found: dict[Engine, dict[str, Any]] = {}
    for engine in Engine:
        if engine.is_guest:  # not an engine API: the SELinux guest VM under QEMU (runner/guest/)
            from runner import guest

            out(f"  {engine}: {guest.preflight_check(Arch.AMD64).line()}")
            continue
        d = driver_for(engine)
        cli = _which(engine.value)
        sock = d.base_url[len("unix://"):] if d.base_url and d.base_url.startswith("unix://") else None
        if engine is Engine.PODMAN and cli is None and not (sock and Path(sock).exists()):
            out("  podman: not installed")
            _fix(out, engine_start_fix(engine, fields, installed=False))
            continue
        try:
            facts: dict[str, Any] = {**d.check(), **d.storage_facts()}
        except FatalError as e:
            installed = cli is not None or (engine is Engine.DOCKER and _which("dockerd") is not None)
            out(f"  {engine}: {'installed but ' if installed else 'not installed; '}no answer: {e.message}")
            _fix(out, engine_start_fix(engine, fields, installed, d.base_url))
            continue
        except Exception as e:  # an engine answering strangely is a fact, not a crash
            out(f"  {engine}: answers, but its facts could not be read: {type(e).__name__}: {e}")
            continue
        found[engine] = facts
        security = ", ".join(o.split(",")[0].removeprefix("name=") for o in facts.get("security_options") or [])
        out(f"  {engine}: {facts['version']} (API {facts['api_version']}) at {d.base_url or 'the default socket'}")
        out(f"    storage driver {facts.get('storage_driver') or '?'}, cgroup v{facts.get('cgroup_version') or '?'} "
            f"({facts.get('cgroup_driver') or '?'} driver), {'rootless' if facts.get('rootless') else 'rootful'}, "
            f"root dir {facts.get('docker_root_dir') or '?'}, security: {security or 'none reported'}")
    return found


def check_binfmt(out: Out, fields: dict[str, str], host_arch: Arch, root: Path = host.BINFMT_DIR) -> None:
    status = host.binfmt_status(root)
    entries = host.binfmt_entries(root)
    out(f"binfmt_misc ({root}): {status}")
    if status == "not mounted":
        _fix(out, f"mount -t binfmt_misc binfmt_misc {root}")
    elif status == "disabled":
        _fix(out, f"echo 1 > {root}/status")
    for name, e in entries.items():
        out(f"  {name}: {'enabled' if e['enabled'] else 'disabled'}, flags {e['flags'] or 'none'}, "
            f"interpreter {e['interpreter'] or '?'}")
    for arch in Arch:
        if arch is host_arch:
            continue
        name = f"qemu-{arch.to_qemu()}"
        entry = entries.get(name)
        if entry is None:
            out(f"  {name}: missing: {arch.value} cells cannot be emulated here")
            _fix(out, host.emulation_fix_for(arch, fields))
        elif not entry["enabled"]:
            _fix(out, f"update-binfmts --enable {name}" if host.package_manager(fields) == "apt"
                 else f"echo 1 > {root}/{name}")
        elif "F" not in entry["flags"]:
            out(f"  {name}: lacks the F flag: the interpreter would be looked up inside each container")
            _fix(out, host.emulation_fix_for(arch, fields))


def check_disk(out: Out, engines: dict[Engine, dict[str, Any]]) -> None:
    places: list[tuple[str, Path | None, str]] = []
    for engine, facts in engines.items():
        root = facts.get("docker_root_dir")
        places.append((f"images ({engine} root dir)", Path(root) if root else None,
                       f"`go-cache-matrix clean --images` or `{engine} system prune`"))
    if not engines:
        places.append(("images", None, ""))
    places.append(("caches (Go toolchains, probe, module proxy)", paths.cache_dir(),
                   "free space there, or point GCM_CACHE_DIR at a larger disk"))
    for what, path, fix in places:
        got = host.free_space(path) if path else None
        if got is None:
            out(f"  {what}: {path or 'unknown: no engine answers'}: not visible from here")
            continue
        where, free, total = got
        note = f"{path}" + (f" (not created yet; on {where})" if where != path else "")
        out(f"  {what}: {note}: {_gib(free)} free of {_gib(total)}")
        if free < LOW_DISK:
            out(f"    low: a full run needs about {_gib(LOW_DISK)}")
            _fix(out, fix)


def check_tools(out: Out, fields: dict[str, str]) -> None:
    exe = _which("debootstrap")
    if exe:
        out(f"  debootstrap: {exe} ({_version([exe, '--version'])}): Debian rows build offline")
    else:
        out("  debootstrap: not installed: Debian rows need the registry")
        _fix(out, host.install_command("debootstrap", fields))
    for fs in ("ext4", "xfs", "btrfs"):
        tool = f"mkfs.{fs}"
        exe = _which(tool)
        out(f"  {tool}: {exe or f'not installed: filesystem:{fs} cells will be unavailable'}")
        if not exe:
            _fix(out, host.install_command(tool, fields))


def registries(cfg: config_mod.MatrixConfig | None, mirror: str | None = None) -> list[str]:
    """The registries the matrix pulls from (distros with the registry source; Docker Hub when none is named),
    with references moved to their registry's mirror where one is set."""
    refs = [d.image for d in cfg.distros.values() if any(s.value == "registry" for s in d.sources)] if cfg else []
    found = [host.registry_host(refs_mod.rewrite(r, mirror)) for r in refs or [f"{DEFAULT_REGISTRY}/library/x"]]
    return list(dict.fromkeys(found))


def mirror_setting(cfg: config_mod.MatrixConfig | None) -> str | None:
    """The mirrors a run would use here: $GCM_REGISTRY_MIRROR's, over the matrix's settings.registry_mirror per
    registry."""
    env = config_mod.parse_registry_mirror(os.environ.get("GCM_REGISTRY_MIRROR"), "GCM_REGISTRY_MIRROR")
    return refs_mod.merge_mirrors(cfg.settings.registry_mirror if cfg else None, env)


def probe_registry(registry: str) -> tuple[bool, str]:
    """GET https://<api host>/v2/: 200 or 401 (a login is asked for) means a registry answers. A mirror on a
    port whose https attempt fails at the connection or TLS level (not a DNS failure or a timeout) is tried
    over http:// too; only a registry's answer there counts, and it is said to be plain HTTP."""
    import requests

    api = host.registry_api_host(registry)
    t0 = time.monotonic()
    try:
        r = requests.get(f"https://{api}/v2/", timeout=REGISTRY_TIMEOUT)
    except requests.exceptions.RequestException as e:
        problem = _request_problem(e, api)
        plain_may_work = ":" in api and isinstance(e, requests.exceptions.ConnectionError) and not isinstance(
            e, requests.exceptions.Timeout) and "DNS" not in problem
        if not plain_may_work:
            return False, problem
        t0 = time.monotonic()
        try:
            r = requests.get(f"http://{api}/v2/", timeout=REGISTRY_TIMEOUT)
        except requests.exceptions.RequestException:
            return False, problem
        if r.status_code not in (200, 401):
            return False, problem
        return True, (f"HTTP {r.status_code} from http://{api}/v2/ in {time.monotonic() - t0:.1f}s (plain HTTP: the "
                      "engine must allow it as an insecure registry; docker does for 127.0.0.0/8)")
    ok = r.status_code in (200, 401)
    return ok, f"HTTP {r.status_code} from https://{api}/v2/ in {time.monotonic() - t0:.1f}s"


def _with_port(api: str) -> str:
    return api if ":" in api else f"{api}:443"


def _request_problem(e: Exception, api: str) -> str:
    """The cause of a failed request in a few words, not urllib3's nested repr."""
    import requests

    text = str(e)
    if "NameResolution" in text or "Name or service not known" in text or "Temporary failure in name" in text:
        return f"DNS cannot resolve {api}"
    if isinstance(e, requests.exceptions.ConnectTimeout):
        return f"no TCP answer from {_with_port(api)} within {REGISTRY_TIMEOUT[0]:.0f}s"
    if isinstance(e, requests.exceptions.ReadTimeout):
        return f"{api} accepted the connection but sent nothing within {REGISTRY_TIMEOUT[1]:.0f}s"
    if "Connection refused" in text:
        return f"{_with_port(api)} refused the connection"
    if isinstance(e, requests.exceptions.SSLError):
        return f"TLS failed with {api}: {text[-160:]}"
    if isinstance(e, requests.exceptions.ProxyError):
        return f"the HTTPS proxy failed: {text[-160:]}"
    return f"{type(e).__name__}: {text[:160]}{'...' if len(text) > 160 else ''}"


def check_registries(out: Out, cfg: config_mod.MatrixConfig | None) -> None:
    mirror = mirror_setting(cfg)
    if mirror:
        out(f"  mirrors: {refs_mod.describe_mirrors(mirror)}")
    for registry in registries(cfg, mirror):
        ok, detail = probe_registry(registry)
        out(f"  {registry}: {'reachable' if ok else 'unreachable'}: {detail}")
        if not ok:
            _fix(out, f"allow HTTPS to {_with_port(host.registry_api_host(registry))} (or set HTTPS_PROXY for the "
                      "engine and this tool); without it only the debootstrap-built Debian rows run, the others are "
                      "`unavailable`")


def check_preflight(out: Out, cfg: config_mod.MatrixConfig | None, host_arch: Arch) -> None:
    from runner import preflight
    from runner.execute import RunContext

    if cfg is None:  # no matrix: the host side only (binfmt), no container
        for arch in Arch:
            out("  " + preflight.check(arch, host_arch, driver=None, endpoint=None, probes=None, labels={}).line())
        return
    ctx = RunContext(run_id=f"doctor-{os.getpid()}", run_dir=Path(os.devnull), cfg=cfg, images_dir=paths.images_dir(),
                     host_arch=host_arch, profile="")
    for arch in Arch:
        out("  " + ctx.arch_check(arch, Engine.DOCKER, None).line())
    for arch, url in cfg.settings.endpoints.items():
        out(f"  endpoint {ctx.arch_check(arch, Engine.DOCKER, url).line()}")


def _section(out: Out, title: str, debug: bool, fn: Callable[[], None]) -> None:
    if title:
        out(title)
    try:
        fn()
    except Exception as e:  # doctor reports what it could not check and goes on
        if debug:
            raise
        out(f"  could not check: {type(e).__name__}: {e} (rerun with --debug for the traceback)")


def check_caches(out: Out, facts: dict[str, Any]) -> None:
    """The size of each of the tool's caches (runner.caches), and how to prune them."""
    from runner import caches

    root = paths.cache_dir()
    found = caches.usage(root)
    facts["caches"] = {"dir": str(root), "bytes": sum(u.bytes for u in found), "kinds": [u.to_dict() for u in found]}
    out(f"  {root}: {caches.human(facts['caches']['bytes'])} in all")
    for u in found:
        if u.paths:
            out(f"  {u.kind}: {caches.human(u.bytes)} in {u.files} file{'' if u.files == 1 else 's'}: {u.what}")
    if facts["caches"]["bytes"]:
        _fix(out, "`go-cache-matrix clean --prune-caches` (everything but locks) or `--prune-caches KIND,...`; "
                  "refused while a run is live")


def run(matrix: str, *, debug: bool = False, out: Out = print, facts: dict[str, Any] | None = None) -> int:
    """The report, line by line to `out`; `facts` (when given) gets what --json prints besides the lines."""
    facts = {} if facts is None else facts
    fields = host.os_release_fields(host.OS_RELEASE)
    host_arch = Arch.host()
    pm = host.package_manager(fields)
    facts["host"] = {"os": fields.get("PRETTY_NAME") or platform.system(), "id": fields.get("ID"),
                     "package_manager": pm, "arch": host_arch.value, "cpus": os.cpu_count(),
                     "kernel": platform.release(), "uid": os.geteuid()}
    out(f"host: {fields.get('PRETTY_NAME') or platform.system()} (ID {fields.get('ID', '?')}"
        f"{', like ' + fields['ID_LIKE'] if fields.get('ID_LIKE') else ''}; packages: {pm or 'unknown'}), "
        f"{host_arch.value}, {os.cpu_count()} CPUs, kernel {platform.release()}, "
        f"{'root' if os.geteuid() == 0 else f'uid {os.geteuid()}'}")
    out(f"  cgroup {host.cgroup_version(host.CGROUP_ROOT)}, SELinux {host.selinux_mode()}, "
        f"AppArmor {host.apparmor_detail()}")

    cfg: config_mod.MatrixConfig | None = None
    try:
        cfg = config_mod.load(matrix)
    except FatalError as e:
        out(f"matrix: {e.message}")
        if e.fix:
            _fix(out, e.fix)
        out("  (registries default to Docker Hub; the preflight checks binfmt only)")

    engines: dict[Engine, dict[str, Any]] = {}

    def _engines() -> None:
        engines.update(check_engines(out, fields))

    _section(out, "engines:", debug, _engines)
    _section(out, "", debug, lambda: check_binfmt(out, fields, host_arch, host.BINFMT_DIR))
    _section(out, "disk:", debug, lambda: check_disk(out, engines))
    _section(out, "tools:", debug, lambda: check_tools(out, fields))
    _section(out, "registries (from the image refs in the matrix):", debug, lambda: check_registries(out, cfg))
    _section(out, "preflight per arch (docker):", debug, lambda: check_preflight(out, cfg, host_arch))
    _section(out, "caches (this tool's, on the host):", debug, lambda: check_caches(out, facts))
    facts["engines"] = {str(e): f for e, f in engines.items()}
    if engines:
        answering = ", ".join(f"{e} {f['version']}" for e, f in engines.items())
        out(f"essentials: ok ({answering} {'answers' if len(engines) == 1 else 'answer'})")
        return 0
    out("essentials: no container engine answers: nothing can run (exit 4); see the engines' fix above")
    return 4
