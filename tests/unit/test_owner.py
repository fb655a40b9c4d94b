"""Who owns a run's resources, and Go's words in a failed `go build -v` step (no engine needed)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from runner.resources import owner_gone, owner_token
from runner.scenarios import describe_failure, go_words


def test_a_live_process_owns_its_resources() -> None:
    token = owner_token()
    host, pid, started = token.split("/")
    assert host == socket.gethostname() and pid == str(os.getpid()) and started.isdigit()
    assert not owner_gone(token)


def test_a_dead_or_reused_pid_is_gone_and_a_foreign_or_odd_owner_is_not() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    token = owner_token(child.pid)
    assert not owner_gone(token)
    child.kill()
    child.wait()
    assert owner_gone(token)
    host, pid, started = owner_token().split("/")
    assert owner_gone(f"{host}/{pid}/{int(started) + 1}"), "same pid, another start time: a reused pid"
    assert not owner_gone(f"another-host-{host}/{child.pid}/1"), "another host's runner is not ours to judge"
    assert not owner_gone("garbage") and not owner_gone(f"{host}/123/?")


def test_go_words_skip_the_package_lines_of_go_build_v() -> None:
    step = {"ok": False, "exit_code": 1, "compiled": ["runtime", "fmt"],
            "stderr": "runtime\nfmt\ngo: failed to trim cache: write /c/trim.txt: no space left on device\n"}
    assert go_words(step) == "go: failed to trim cache: write /c/trim.txt: no space left on device"
    assert describe_failure(step, "cold build").endswith(": no space left on device")
