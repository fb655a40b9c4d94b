"""The offline module proxy: layout Go expects, and hashes that match the committed go.sum."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from runner.workloads import proxy


def test_committed_go_sum_matches_the_generated_modules(project_root: Path) -> None:
    go_sum = (project_root / "runner/workloads/small/go.sum").read_text().splitlines()
    versions = {(mv.path, mv.version): mv for mv in proxy.discover()}
    expected = []
    for line in go_sum:
        path, version, _ = line.split()
        mv = versions[(path, version.removesuffix("/go.mod"))]
        expected += [x for x in proxy.go_sum_lines(mv) if x.split()[1] == version]
    assert go_sum == expected


def test_proxy_tree_has_list_info_mod_zip(tmp_path: Path) -> None:
    dest = proxy.build(tmp_path / "proxy")
    vdir = dest / "gcm.example/greet/@v"
    assert (vdir / "list").read_text().split() == ["v1.0.0", "v1.1.0"]
    assert json.loads((vdir / "v1.1.0.info").read_text())["Version"] == "v1.1.0"
    assert b"require gcm.example/words v1.0.0" in (vdir / "v1.1.0.mod").read_bytes()
    with zipfile.ZipFile(vdir / "v1.1.0.zip") as z:
        names = z.namelist()
    assert names and all(n.startswith("gcm.example/greet@v1.1.0/") for n in names)
    assert "gcm.example/greet@v1.1.0/go.mod" in names
    # Built once: a second call reuses the tree.
    assert proxy.build(tmp_path / "proxy") == dest


def test_hash1_is_order_independent_and_content_sensitive() -> None:
    a = proxy.hash1({"m@v/a.go": b"a", "m@v/b.go": b"b"})
    assert a == proxy.hash1({"m@v/b.go": b"b", "m@v/a.go": b"a"})
    assert a != proxy.hash1({"m@v/a.go": b"a", "m@v/b.go": b"B"})
    assert a.startswith("h1:")


def test_escape_upper_case_paths() -> None:
    assert proxy.escape("github.com/BurntSushi/toml") == "github.com/!burnt!sushi/toml"
