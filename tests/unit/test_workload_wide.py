"""The `wide` workload: the committed tree is what its generator writes, and it is what the contention
scenarios count on (no standard library, two targets sharing layers, lib's go.sum)."""

from __future__ import annotations

import re
from pathlib import Path

from runner.workloads import wide_gen

WIDE = Path(wide_gen.__file__).resolve().parent / "wide"


def test_committed_tree_is_the_generators_output(tmp_path: Path) -> None:
    wide_gen.write(tmp_path / "wide")
    want = {p.relative_to(tmp_path / "wide").as_posix(): p.read_bytes() for p in (tmp_path / "wide").rglob("*")
            if p.is_file()}
    got = {p.relative_to(WIDE).as_posix(): p.read_bytes() for p in WIDE.rglob("*") if p.is_file()}
    assert sorted(got) == sorted(want), "run: python -m runner.workloads.wide_gen"
    assert [n for n in want if got[n] != want[n]] == [], "run: python -m runner.workloads.wide_gen"


def test_no_standard_library_import() -> None:
    imports = {m for p in WIDE.rglob("*.go") for m in re.findall(r'^\s*(?:\w+ )?"([^"]+)"$', p.read_text(), re.M)}
    assert imports and all(i.startswith("gcm.example/") for i in imports), sorted(imports)


def test_package_counts_follow_the_layout() -> None:
    files = wide_gen.files()
    dirs = {n.rsplit("/", 1)[0] if "/" in n else "." for n in files if n.endswith(".go")}
    # the root's build: every layer package, the root, and gcm.example/words from the proxy
    assert wide_gen.packages(".") == len([d for d in dirs if not d.startswith("alt")]) + 1
    assert wide_gen.packages("./alt") == (wide_gen.ALT_FROM + 1) * wide_gen.WIDTH + wide_gen.WIDTH + 1
    assert (WIDE / "go.sum").read_bytes() == (WIDE.parent / "lib" / "go.sum").read_bytes()
