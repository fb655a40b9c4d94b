"""`systemd`: what HOME and GOCACHE a Go build sees in a real systemd unit, and whether it builds (Q06).

In the guest lab's `systemd` mode (runner.guest.modes: Debian's default LSM, systemd as PID 1) each variant runs
transient units with systemd-run (images/selinux-guest/job/systemd.sh): no User= (root), User= a system user whose
home does not exist, DynamicUser=yes, and DynamicUser=yes with CacheDirectory=go-build and GOCACHE=%C/go-build
given with -E (and, in a third unit, with -p Environment=). Every unit records its HOME, `go env GOCACHE`, a build
and a rebuild; a second unit with the same settings builds again (does the cache outlive the unit?).

pass: the build works and a new unit's build hits the cache; fail: the build fails (Go's message kept) or a new
unit compiles again (the cache did not outlive the unit); error: a record is missing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from runner import lab
from runner.answer import BREAKS, DEGRADED, WORKS, Answer, AnswerFn, Outcome, brief, per_case, pick
from runner.model import Cell, Status
from runner.results import CellResult
from runner.scenarios import Verdict
from runner.scenarios.base import Rows, Scenario
from runner.scenarios.labcase import build_of, built, kv, lab_note
from runner.scenarios.rows import lead

if TYPE_CHECKING:
    from runner.guest import CaseRecords


def unit_record(files: Mapping[str, str], name: str) -> dict[str, Any] | None:
    """One unit's records: its environment, `go env`, the builds, systemd-run's exit code and first stderr line."""
    out = files.get(f"{name}.out")
    if out is None and f"{name}.run" not in files:
        return None
    rec = kv(out)
    rc = (files.get(f"{name}.rc") or "").strip()
    err = [ln for ln in ((files.get(f"{name}.run") or "") + (files.get(f"{name}.err") or "")).splitlines()
           if ln.strip()]
    return {"ran": "uid" in rec, "state": kv(files.get(f"{name}.state")),
            "unit_rc": int(rc) if rc.lstrip("-").isdigit() else None,
            "unit_stderr": err[0] if err else "", "home": rec.get("home"), "user": rec.get("user"),
            "uid": rec.get("uid"), "gocache_env": rec.get("gocache_env"), "cache_directory": rec.get("cache_directory"),
            "go_env_gocache": rec.get("go_env_gocache"), "go_env_rc": rec.get("go_env_rc"),
            "build": build_of(rec, "build"), "rebuild": build_of(rec, "rebuild")}


def verdict(variant: str, files: Mapping[str, str], guest: Mapping[str, Any] | None = None) -> Verdict:
    first, second = unit_record(files, "first"), unit_record(files, "second")
    obs: dict[str, Any] = {"variant": variant, "case": lab.WHAT["systemd"].get(variant, ""), "first": first,
                           "second": second, "guest": dict(guest or {})}
    if variant == "dynamic-cachedir":
        prop = unit_record(files, "property")
        obs["property"] = prop
        obs["setenv_expanded"] = _expanded(first)
        obs["property_expanded"] = _expanded(prop)
        via, via2 = unit_record(files, "viaenv"), unit_record(files, "viaenv2")
        obs["via_cache_directory"] = {"cache_directory": (via or {}).get("cache_directory"),
                                      "build": (via or {}).get("build"), "new_unit": (via2 or {}).get("build")}
    if not first or not first["ran"] or first["build"] is None:
        why = (first or {}).get("unit_stderr") or "no record from the unit"
        return Verdict(Status.ERROR, f"output lost: the unit recorded nothing ({why})", obs)
    obs.update(home=first["home"], gocache=first["go_env_gocache"], build=first["build"], rebuild=first["rebuild"],
               new_unit=(second or {}).get("build"))
    seen = f"HOME={first['home']}, go env GOCACHE={first['go_env_gocache'] or '(empty)'}"
    if variant == "dynamic-cachedir":
        seen += (f"; -E GOCACHE=%C/go-build reached the unit as {first['gocache_env']!r}, -p Environment= as "
                 f"{(obs['property'] or {}).get('gocache_env')!r}")
    b = first["build"]
    if variant == "dynamic-cachedir":
        v = obs["via_cache_directory"]
        seen += (f"; with GOCACHE=$CACHE_DIRECTORY ({v['cache_directory']}) in the unit's command: build "
                 f"{built(v['build']) or 'not recorded'}, new unit {built(v['new_unit']) or 'not recorded'}")
    if not b["ok"]:
        return Verdict(Status.FAIL, f"{seen}: the build fails: {built(b)}", obs)
    nb = (second or {}).get("build")
    if nb is None:
        return Verdict(Status.ERROR, f"{seen}: build ok, but the second unit recorded nothing", obs)
    if not nb.get("ok") or nb.get("compiled"):
        return Verdict(Status.FAIL, f"{seen}: build ok ({built(b)}), but a new unit compiles again ({built(nb)}): "
                                    "the cache does not outlive the unit", obs)
    return Verdict(Status.PASS, f"{seen}: build ok ({built(b)}), a new unit's build hits the cache ({built(nb)})", obs)


def _expanded(u: Mapping[str, Any] | None) -> bool | None:
    """Whether the unit saw GOCACHE with %C expanded (an absolute path), None if it did not record it."""
    value = (u or {}).get("gocache_env")
    if value is None or value == "<unset>":
        return None
    return "%C" not in value and value.startswith("/")


class Systemd(Scenario):
    id = "systemd"
    title = ("Go in transient systemd units (systemd-run), per case: the unit's HOME and user, `go env GOCACHE`, the "
             "build, the rebuild in the same unit and the build in a new unit with the same settings")

    @staticmethod
    def answers() -> dict[str, AnswerFn]:
        return {"Q06": answer_units}

    @staticmethod
    def outcome(c: CellResult) -> Outcome:
        o = c.observations
        b = o.get("build") or {}
        if c.status is Status.PASS:
            return Outcome(WORKS, "")
        if b.get("ok"):
            return Outcome(DEGRADED, c.reason)
        return Outcome(BREAKS, c.reason)

    def precondition(self, cell: Cell) -> tuple[Status, str] | None:
        return Status.NA, "needs a real systemd: the guest engine (podman-selinux) runs it in the guest VM"

    def guest_verdict(self, cell: Cell, got: CaseRecords) -> Verdict:
        return verdict(cell.variant or "", got.files, got.guest)

    def detail_title(self, cells: Sequence[CellResult]) -> str:
        return self.title + lab_note(cells, "Units run as systemd runs services; root's shell environment plays no "
                                            "part. DynamicUser=yes implies ProtectSystem=strict and "
                                            "ProtectHome=read-only.")

    def detail_rows(self, cells: Sequence[CellResult]) -> Rows:
        headers = ["distro", "arch", "engine", "toolchain", "case", "unit's HOME", "user (uid)", "go env GOCACHE",
                   "build", "rebuild, same unit", "build, new unit", "status"]
        rows = []
        for c in cells:
            o = c.observations
            f = o.get("first") or {}
            case = f"{c.cell.get('variant')}: {o.get('case', '')}"
            if o.get("variant") == "dynamic-cachedir":
                v = o.get("via_cache_directory") or {}
                case += (f" (-E: %C {'expanded' if o.get('setenv_expanded') else 'not expanded'}; -p Environment=: "
                         f"%C {'expanded' if o.get('property_expanded') else 'not expanded'}; GOCACHE=$CACHE_DIRECTORY "
                         f"in the command: build {built(v.get('build')) or '?'}, new unit "
                         f"{built(v.get('new_unit')) or '?'})")
            rows.append(lead(c) + [case, f.get("home") or "", f"{f.get('user') or '?'} ({f.get('uid') or '?'})",
                                   f.get("go_env_gocache") or "", built(f.get("build")), built(f.get("rebuild")),
                                   built((o.get("second") or {}).get("build")), c.status.value])
        return headers, rows


def answer_units(cells: Sequence[CellResult]) -> Answer:
    """Q06: per unit setting, what HOME and GOCACHE Go saw and whether the build worked (and outlived the unit)."""
    def key(c: CellResult) -> str | None:
        o = c.observations
        f = o.get("first") or {}
        if not f.get("build"):
            return None
        what = "builds" if f["build"].get("ok") else f"fails ({brief(str(f['build'].get('stderr') or ''), 90)})"
        nb = (o.get("second") or {}).get("build") or {}
        if f["build"].get("ok"):
            what += ", a new unit hits the cache" if nb.get("ok") and not nb.get("compiled") else \
                ", a new unit compiles again"
        extra = ""
        if o.get("variant") == "dynamic-cachedir":
            v = o.get("via_cache_directory") or {}
            nb = v.get("new_unit") or {}
            works = "builds" if (v.get("build") or {}).get("ok") else "fails"
            hits = ", a new unit hits" if nb.get("ok") and not nb.get("compiled") else ""
            extra = (f"; %C in -E {'expanded' if o.get('setenv_expanded') else 'not expanded'}, in -p Environment= "
                     f"{'expanded' if o.get('property_expanded') else 'not expanded'}; GOCACHE=$CACHE_DIRECTORY in "
                     f"the unit's command {works}{hits}")
        return (f"{c.cell.get('variant')}: HOME={f.get('home')}, GOCACHE={f.get('go_env_gocache') or '(none)'}, "
                f"{what}{extra}")

    basis = pick(cells, "systemd")
    return per_case(basis, key, limits="Debian 12's systemd in the guest VM; other systemd versions may differ")
