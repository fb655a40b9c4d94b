"""What the guest lab's host-level scenarios (systemd, nfs, se-host, apparmor) share: goprobe.sh's key=value
records read back, a build record in words, the guest's facts for titles, and the AppArmor and SELinux denials of
a case as short text. The cases themselves: runner.lab; the guest's scripts: images/selinux-guest/job/."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import Any

from runner.lab import denial_text
from runner.results import CellResult


def kv(text: str | None) -> dict[str, str]:
    """goprobe.sh's records: key=value lines (the first '=' splits; a repeated key keeps the last)."""
    out: dict[str, str] = {}
    for line in (text or "").splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() and " " not in key.strip():
            out[key.strip()] = value.strip()
    return out


def build_of(rec: Mapping[str, str], name: str) -> dict[str, Any] | None:
    """One go command's record (NAME_rc, _sec, _compiled, _err) -> {"ran", "ok", "exit_code", "sec", "compiled",
    "stderr"}; None when goprobe.sh did not get that far."""
    rc = rec.get(f"{name}_rc")
    if rc is None or not rc.lstrip("-").isdigit():
        return None
    out: dict[str, Any] = {"ran": True, "ok": int(rc) == 0, "exit_code": int(rc)}
    with contextlib.suppress(ValueError):
        out["sec"] = float(rec.get(f"{name}_sec", ""))
    if (compiled := rec.get(f"{name}_compiled", "")).isdigit():
        out["compiled"] = int(compiled)
    if int(rc) != 0 or rec.get(f"{name}_err"):
        out["stderr"] = rec.get(f"{name}_err", "")
    return out


def built(b: Mapping[str, Any] | None) -> str:
    """'ok, 1 pkgs' | 'exit 1: go: ...' | '' (not run)."""
    if not b:
        return ""
    if b.get("ok"):
        return f"ok, {b.get('compiled', '?')} pkgs" if "compiled" in b else "ok"
    return f"exit {b.get('exit_code')}: {b.get('stderr') or '?'}"


def aa_denials(records: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [r for r in records if r.get("result") == "DENIED"]


def aa_text(records: Sequence[Mapping[str, Any]], limit: int = 3) -> str:
    """The distinct AppArmor denials, as 'DENIED mkdir /path (profile p, comm c)'; 'none logged'."""
    seen = list(dict.fromkeys(denial_text(dict(r)) for r in aa_denials(records)))
    if not seen:
        return "none logged"
    return "; ".join(seen[:limit]) + (f" and {len(seen) - limit} more" if len(seen) > limit else "")


def avc_text(records: Sequence[Mapping[str, Any]], limit: int = 3) -> str:
    """The distinct SELinux denials, as 'denied { write } user_t → xdg_cache_t dir'; 'none logged'."""
    def t(ctx: Any) -> str:
        parts = str(ctx or "").split(":")
        return parts[2] if len(parts) > 2 else str(ctx or "")

    seen = list(dict.fromkeys(
        f"denied {{ {' '.join(r.get('permissions') or [])} }} {t(r.get('scontext'))} → {t(r.get('tcontext'))} "
        f"{r.get('tclass')} ({r.get('comm', '?')})" for r in records if r.get("result") == "denied"))
    if not seen:
        return "none logged"
    return "; ".join(seen[:limit]) + (f" and {len(seen) - limit} more" if len(seen) > limit else "")


def lab_note(cells: Sequence[CellResult], what: str) -> str:
    """Where a guest scenario's rows ran, from the cells' own records: '. Measured in a Debian 12 guest VM under
    QEMU 7.2 with TCG, kernel 6.1..., <what>'."""
    seen: list[str] = []
    for c in cells:
        g = (c.host or {}).get("guest") or c.observations.get("guest")
        if not isinstance(g, Mapping):
            continue
        accel = str(g.get("accel", "?"))
        speed = "near native" if accel == "KVM" else f"software emulation, timeouts ×{g.get('duration_factor', '?')}"
        lsm = str(g.get("lsm") or "?")
        text = (f"a Debian 12 guest VM (mode `{g.get('mode', '?')}`) under QEMU {g.get('qemu', '?')} with {accel} "
                f"({speed}), kernel {g.get('kernel', '?')}, LSMs {lsm}")
        if g.get("apparmor"):
            text += (f", AppArmor {g['apparmor']} ({g.get('apparmor_enforce', '?')} of "
                     f"{g.get('apparmor_profiles', '?')} profiles enforcing)")
        if g.get("policy") and g.get("mode") == "selinux":
            text += f", {g['policy']} enforcing"
        if g.get("systemd"):
            text += f", systemd {g['systemd']}"
        if g.get("nfs") and g.get("mode") == "nfs":
            text += f", nfs-kernel-server {g['nfs']}"
        if text not in seen:
            seen.append(text)
    return f". Measured in {'; and in '.join(seen)}. {what}" if seen else ""
