"""`static-binary`: what `-trimpath` and `-ldflags="-s -w"` do to a binary's size, and whether a CGO_ENABLED=0 binary
runs with nothing around it (as FROM scratch) and in another distro's container.

static-binary:binary  in the cell's image, the `small` program built with CGO_ENABLED=0 three ways: plain,
                      `-trimpath`, `-trimpath -ldflags="-s -w"`; each one's size in bytes and a run of each; then
                      the stripped one run by `chroot` into a directory that holds only that binary: the root a
                      FROM scratch image gives it (no /etc, /dev, /proc, no libc).
static-binary:from-<distro>
                      the plain CGO_ENABLED=0 program built in <distro>'s image, run in the cell's container and
                      chrooted there as above (from-<own distro> is the control row).
Both then run the binary (the stripped one, or the one from <distro>) in a container of an image the engine builds
`FROM scratch` for the cell: no layers; the probe that starts it, its job and out dirs and the binary's own dir are
all that is mounted there, besides the files the engine adds to /etc (hosts, hostname, resolv.conf): the file count
of /bin, /lib, /usr and /etc there is recorded (None: absent), to show what the binary had around it.

Go's documentation: with cgo disabled the linker writes a statically linked binary on Linux, so every run should
work; the cell fails when one does not (with the exit and the first line of stderr). Sizes are recorded, not judged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from runner.answer import (
    BREAKS,
    DEPENDS,
    NOT_MEASURED,
    VALUE,
    WORKS,
    Answer,
    AnswerFn,
    Outcome,
    judged,
    listing,
    obs_of,
    pick,
    rows,
    split,
)
from runner.model import Cell, Status
from runner.results import CellResult
from runner.scenarios import (
    SCRATCH,
    SCRATCH_IMAGE,
    WORKLOADS,
    JobContext,
    MountSpec,
    Phase,
    Probes,
    Verdict,
    describe_failure,
    exec_step,
    go_words,
    setup_failure,
    step,
)
from runner.scenarios.base import Rows, Scenario
from runner.scenarios.rows import lead
from runner.scenarios.storage import ENV

SRC = f"{SCRATCH}/src"
BIN = f"{SCRATCH}/bin"
SHARED = "/shared"  # the binary the FROM scratch image runs (from-<distro>: built in that distro's image)
SHARED_MOUNT = MountSpec("bind", SHARED, name="binary")
ROOT_DIRS = ("bin", "lib", "usr", "etc")  # what the FROM scratch container's root holds, recorded
EMPTY_ROOT = f"{SCRATCH}/empty-root"  # holds only /app: the root a FROM scratch image gives the binary
STATIC_ENV = {**ENV, "CGO_ENABLED": "0"}
FLAVOURS: dict[str, list[str]] = {"plain": [], "trimpath": ["-trimpath"],
                                  "stripped": ["-trimpath", "-ldflags=-s -w"]}


def _prepare(ctx: JobContext) -> list[dict[str, Any]]:
    return [{"name": "copy-src", "kind": "copytree", "path": f"{WORKLOADS}/small", "dest": SRC, "stop_on_error": True},
            exec_step("mod-download", ["go", "mod", "download"], dir=SRC, env=STATIC_ENV,
                      timeout_sec=ctx.build_timeout, stop_on_error=True)]


def _scratch(binary: str) -> list[dict[str, Any]]:
    """Copy the binary alone into an empty directory and run it with that directory as its root."""
    return [exec_step("empty-root", ["sh", "-c", f'mkdir -p {EMPTY_ROOT} && cp "$0" {EMPTY_ROOT}/app && '
                                                 f'find {EMPTY_ROOT}', binary]),
            exec_step("scratch", ["chroot", EMPTY_ROOT, "/app"], timeout_sec=60)]


def _from_scratch() -> Phase:
    """A container of an image built FROM scratch, running the binary kept in the shared mount: its root holds
    nothing but the probe that starts it, its job and out dirs and the binary's dir (runner.phase mounts no more)."""
    return Phase("scratch-image", [*({"name": f"root-{d}", "kind": "du", "path": f"/{d}"} for d in ROOT_DIRS),
                                   exec_step("scratch-image", [f"{SHARED}/app"], timeout_sec=60)],
                 mounts=(SHARED_MOUNT,), image=SCRATCH_IMAGE)


def _ran(s: Mapping[str, Any] | None) -> dict[str, Any]:
    if s is None:
        return {"ok": False, "exit_code": None, "stderr": "(did not run)"}
    return {"ok": bool(s.get("ok")), "exit_code": s.get("exit_code"),
            "stderr": "" if s.get("ok") else (go_words(s) or str(s.get("error") or ""))}


def _os(probe: Mapping[str, Any]) -> str:
    content = str((step(probe, "os") or {}).get("content") or "")
    for line in content.splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.partition("=")[2].strip('"')
    return ""


class StaticBinary(Scenario):
    id = "static-binary"
    title = ("A CGO_ENABLED=0 build of the small program: bytes plain, -trimpath, -trimpath -s -w; runs as it is, "
             "chrooted into a root holding only the binary (as FROM scratch), and built in another distro's image")
    # Needs a program (a binary to weigh and run): it builds `small`, not the cheap `lib`.

    def phases(self, cell: Cell, ctx: JobContext) -> list[Phase]:
        assert cell.variant is not None
        read_os = {"name": "os", "kind": "read", "path": "/etc/os-release"}
        if cell.variant == "binary":
            steps = [*_prepare(ctx), exec_step("mkdir", ["mkdir", "-p", BIN], stop_on_error=True)]
            for name, flags in FLAVOURS.items():
                steps.append(exec_step(f"build-{name}", ["go", "build", *flags, "-o", f"{BIN}/{name}", "."], dir=SRC,
                                       env=STATIC_ENV, timeout_sec=ctx.build_timeout, stop_on_error=True))
            steps.append(exec_step("sizes", ["stat", "-c", "%s %n", *(f"{BIN}/{n}" for n in FLAVOURS)]))
            steps += [exec_step(f"run-{n}", [f"{BIN}/{n}"], timeout_sec=60) for n in FLAVOURS]
            keep = exec_step("keep", ["cp", f"{BIN}/stripped", f"{SHARED}/app"])
            return [Phase("main", [*steps, *_scratch(f"{BIN}/stripped"), keep, read_os], mounts=(SHARED_MOUNT,)),
                    _from_scratch()]
        return [
            Phase("build", [*_prepare(ctx), exec_step("build-plain", ["go", "build", "-o", f"{SHARED}/app", "."],
                                                      dir=SRC, env=STATIC_ENV, timeout_sec=ctx.build_timeout,
                                                      stop_on_error=True), read_os],
                  mounts=(SHARED_MOUNT,), distro=cell.variant.removeprefix("from-"),
                  # the build is the source distro's, whatever the cell's: each target row copies the run's one
                  once="static-binary-build"),
            Phase("main", [exec_step("run-plain", [f"{SHARED}/app"], timeout_sec=60), *_scratch(f"{SHARED}/app"),
                           read_os], mounts=(SHARED_MOUNT,)),
            _from_scratch(),
        ]

    def evaluate(self, cell: Cell, probes: Probes, ctx: JobContext) -> Verdict:
        assert cell.variant is not None
        main = probes["main"]
        obs: dict[str, Any] = {"case": cell.variant, "run_in": _os(main)}
        builder = main if cell.variant == "binary" else probes["build"]
        obs["built_in"] = _os(builder)
        if problem := setup_failure(builder, ("copy-src", "mod-download")):
            return Verdict(Status.ERROR, problem, obs)
        flavours = list(FLAVOURS) if cell.variant == "binary" else ["plain"]
        for name in flavours:
            s = step(builder, f"build-{name}")
            if s is None or not s.get("ok"):
                return Verdict(Status.FAIL, describe_failure(s, f"{name} build"), obs)
        if cell.variant == "binary":
            sizes = {}
            for line in str((step(main, "sizes") or {}).get("stdout") or "").splitlines():
                size, _, path = line.partition(" ")
                if size.isdigit():
                    sizes[path.rsplit("/", 1)[-1]] = int(size)
            obs["bytes"] = sizes
        obs["runs"] = {n: _ran(step(main, f"run-{n}")) for n in flavours}
        root = step(main, "empty-root") or {}
        obs["empty_root"] = sorted(str(root.get("stdout") or "").split())
        obs["scratch"] = _ran(step(main, "scratch"))
        keep = step(main, "keep") if cell.variant == "binary" else {"ok": True}
        if keep is not None and not keep.get("ok"):
            return Verdict(Status.ERROR, describe_failure(keep, "copying the stripped binary out for the FROM scratch "
                                                                "image"), obs)
        if (img := probes.get("scratch-image")) is not None:
            obs["scratch_image"] = _ran(step(img, "scratch-image"))
            # Files per dir of its root (None: absent); the engine itself puts hosts, hostname and resolv.conf in /etc.
            usage = {d: (step(img, f"root-{d}") or {}).get("usage") or {} for d in ROOT_DIRS}
            obs["scratch_image"]["root"] = {d: u.get("files") if u.get("exists") else None for d, u in usage.items()}
        problems = [f"{n} binary in {obs['run_in'] or 'the cell'}: exit {r['exit_code']}: {r['stderr']}"
                    for n, r in obs["runs"].items() if not r["ok"]]
        if not obs["scratch"]["ok"]:
            problems.append(f"chrooted alone (as FROM scratch): exit {obs['scratch']['exit_code']}: "
                            f"{obs['scratch']['stderr']}")
        if "scratch_image" in obs and not obs["scratch_image"]["ok"]:
            problems.append(f"in an image FROM scratch: exit {obs['scratch_image']['exit_code']}: "
                            f"{obs['scratch_image']['stderr']}")
        if problems:
            return Verdict(Status.FAIL, "; ".join(problems), obs)
        if cell.variant == "binary" and len(obs["bytes"]) == len(FLAVOURS):
            b = obs["bytes"]
            return Verdict(Status.PASS, f"{b['plain']} bytes plain, {b['trimpath']} -trimpath, {b['stripped']} "
                                        "-trimpath -s -w; runs, alone in an empty root and in an image FROM scratch",
                           obs)
        return Verdict(Status.PASS, f"built in {obs['built_in']}, runs in {obs['run_in']}, alone in an empty root and "
                                    "in an image FROM scratch", obs)

    @staticmethod
    def answers() -> dict[str, AnswerFn]:
        return {"Q13": answer_static}

    @staticmethod
    def outcome(c: CellResult) -> Outcome | None:
        runs = c.observations.get("runs") or {}
        if not runs:
            return None
        if _runs(c) != "runs":
            return Outcome(BREAKS, c.reason)
        return Outcome(WORKS, "runs as built, alone in an empty root" + (
            " and in an image FROM scratch" if "scratch_image" in c.observations else ""))

    def detail_rows(self, cells: Sequence[CellResult]) -> Rows:
        headers = ["distro", "arch", "engine", "toolchain", "case", "built in", "bytes: plain / -trimpath / -s -w",
                   "runs here", "runs alone (empty root)", "runs in an image FROM scratch", "status"]
        out = []
        for c in cells:
            o = c.observations
            b = o.get("bytes") or {}
            sizes = " / ".join(str(b.get(n, "")) for n in FLAVOURS) if b else ""
            runs = o.get("runs") or {}
            here = ", ".join(f"{n} {'ok' if r.get('ok') else 'exit ' + str(r.get('exit_code'))}"
                             for n, r in runs.items())
            sc = o.get("scratch") or {}
            img = o.get("scratch_image") or {}
            out.append(lead(c) + [c.cell.get("variant", ""), o.get("built_in", ""), sizes, here, _said(sc), _said(img),
                                  c.status.value])
        return headers, out


def _said(r: Mapping[str, Any]) -> str:
    return "" if not r else "ok" if r.get("ok") else f"exit {r.get('exit_code')}: {r.get('stderr', '')}"


def _other_distro(c: CellResult) -> bool:
    v = str(c.cell.get("variant") or "")
    return v.startswith("from-") and v.removeprefix("from-") != c.cell.get("distro")


def _runs(c: CellResult) -> str | None:
    """'runs' when every run of the cell (as built and alone in an empty root) worked, 'fails' when one did not."""
    runs, scratch = c.observations.get("runs"), c.observations.get("scratch")
    if not isinstance(runs, dict) or not runs or not isinstance(scratch, dict):
        return None
    image = c.observations.get("scratch_image") or {"ok": True}  # results from before the image was built
    return "runs" if scratch.get("ok") and image.get("ok") and all(r.get("ok") for r in runs.values()) else "fails"


def _saving(c: CellResult, flavour: str) -> float | None:
    b = obs_of(c, "bytes")
    if not isinstance(b, Mapping) or not isinstance(b.get("plain"), int) or not isinstance(b.get(flavour), int):
        return None
    return 100.0 * (1 - b[flavour] / b["plain"]) if b["plain"] else None


def _span(values: list[float]) -> str:
    lo, hi = min(values), max(values)
    return f"{lo:.1f} %" if abs(hi - lo) < 0.05 else f"{lo:.1f}–{hi:.1f} %"


def answer_static(cells: Sequence[CellResult]) -> Answer:
    """Q13: the size saved by -trimpath and by -trimpath -s -w (a range over rows), and whether a CGO_ENABLED=0
    binary runs alone in an empty root and when built in another distro: `depends` when rows disagree on a run."""
    basis = pick(cells, "static-binary")
    done = judged(basis)
    parts, mixed = [], []
    stripped = [s for c in done if (s := _saving(c, "stripped")) is not None]
    trimmed = [s for c in done if (s := _saving(c, "trimpath")) is not None]
    if stripped:
        parts.append(f"-trimpath -s -w: {_span(stripped)} smaller than plain (-trimpath alone: {_span(trimmed)})")
    for label, cases in (("alone in an empty root and FROM scratch", done),
                         ("built in another distro's image", [c for c in done if _other_distro(c)])):
        groups = split(cases, _runs)
        if len(groups) > 1:
            mixed.append(f"{label}: runs on {listing(groups['runs'])}, fails on {listing(groups['fails'])}")
        elif groups:
            ((word, where_),) = groups.items()
            parts.append(f"{label}: {word} ({rows(len(where_))})")
    if not parts and not mixed:
        return Answer(NOT_MEASURED, "", tuple(basis))
    figure = "; ".join(dict.fromkeys(
        f"{c.cell.get('toolchain')}/{c.cell.get('arch')}: " + " / ".join(str(b.get(n)) for n in FLAVOURS) + " bytes"
        for c in done if isinstance(b := c.observations.get("bytes"), dict) and b))
    limits = ("alone: a chroot into a directory holding only the binary, and a container of an image the engine "
              "built FROM scratch (its root holds the runner's mounts besides); the small program only (no cgo, no "
              "os/user or net lookups)")
    if mixed:
        return Answer(DEPENDS, "depends: " + "; ".join(mixed + parts), tuple(basis), figure, limits)
    return Answer(VALUE, "; ".join(parts), tuple(basis), figure, limits)
