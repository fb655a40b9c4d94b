"""runner.pull_retry: which pull failures are tried again (rate limits, registry 5xx) and which are not (offline,
missing, denied), with the texts docker and podman actually relay; and the backoff loop with a fake clock."""

from __future__ import annotations

from typing import Any

import docker.errors
import pytest

from runner import images, pull_retry
from runner.model import Arch

RETRY = [
    "toomanyrequests: You have reached your pull rate limit. You may increase the limit by authenticating",
    'Get "https://registry.example/v2/": received unexpected HTTP status: 503 Service Unavailable',
    "error pulling image configuration: download failed after attempts=6: received unexpected HTTP status: "
    "502 Bad Gateway",
    'initializing source docker://debian:12: reading manifest 12 in registry.example/library/debian: StatusCode: 429, '
    '"{\\"errors\\":[{\\"code\\":\\"TOOMANYREQUESTS\\"}]}"',
    "requesting bearer token: invalid status code from registry 504 (Gateway Timeout)",
    "unknown: 500 Internal Server Error",
    "429 Too Many Requests",
]
KEEP = [
    'Get "https://registry.example/v2/": dial tcp: lookup registry.example on 192.0.2.53:53: no such host',
    "manifest unknown: manifest tagged by \"13.9\" is not found",
    "pull access denied for gcm/nope, repository does not exist or may require 'docker login'",
    "unauthorized: authentication required",
    "no matching manifest for linux/riscv64 in the manifest list entries",
    "500 Server Error for http+docker://localhost/v1.41/images/create: Internal Server Error",  # the SDK's own wrapper
    "Error response from daemon: 503 Service Unavailable; no such host",  # a 5xx that still cannot work here
    "context deadline exceeded",
]


@pytest.mark.parametrize("text", RETRY)
def test_rate_limits_and_registry_server_errors_are_retried(text: str) -> None:
    assert pull_retry.retryable(text)


@pytest.mark.parametrize("text", KEEP)
def test_offline_missing_and_denied_are_not(text: str) -> None:
    assert not pull_retry.retryable(text)


class Flaky:
    """Fails with the given texts in order, then returns 'ok'."""

    def __init__(self, *texts: str) -> None:
        self.texts, self.calls = list(texts), 0

    def __call__(self) -> str:
        self.calls += 1
        if self.texts:
            raise docker.errors.APIError("500 Server Error", explanation=self.texts.pop(0))
        return "ok"


def run(flaky: Flaky, slept: list[float]) -> str:
    return pull_retry.with_retries(flaky, lambda e: str(getattr(e, "explanation", e)),
                                   retry_on=(docker.errors.APIError,), delays=(1.0, 2.0, 4.0), sleep=slept.append)


def test_backs_off_until_the_registry_answers() -> None:
    slept: list[float] = []
    flaky = Flaky(RETRY[0], RETRY[1])
    assert run(flaky, slept) == "ok"
    assert flaky.calls == 3 and slept == [1.0, 2.0]


def test_gives_up_after_the_last_delay_with_the_last_error() -> None:
    slept: list[float] = []
    flaky = Flaky(*[RETRY[0]] * 5)
    with pytest.raises(docker.errors.APIError, match="toomanyrequests"):
        run(flaky, slept)
    assert flaky.calls == 4 and slept == [1.0, 2.0, 4.0]


def test_a_permanent_failure_is_raised_at_once() -> None:
    slept: list[float] = []
    flaky = Flaky(KEEP[0])
    with pytest.raises(docker.errors.APIError, match="no such host"):
        run(flaky, slept)
    assert flaky.calls == 1 and slept == []


def test_images_pull_retries_and_says_how_many_attempts(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """runner.images._pull through a fake driver: the cell's reason names the attempts and the registry's words."""
    monkeypatch.setattr(pull_retry, "BACKOFF", (0.0, 0.0))
    monkeypatch.setattr(pull_retry.time, "sleep", lambda s: None)
    monkeypatch.setenv("GCM_CACHE_DIR", str(tmp_path))

    class Driver:
        engine = type("E", (), {"value": "docker"})()
        client = type("C", (), {"images": type("I", (), {"list": staticmethod(lambda **kw: [])})()})()
        calls = 0

        def pull(self, ref: str, arch: Arch) -> Any:
            Driver.calls += 1
            raise docker.errors.APIError("500 Server Error", explanation=RETRY[0])

        def image_attrs(self, ref: str) -> None:
            return None

    from tests.unit.test_images import CFG

    distro = next(d for d in CFG.distros.values() if d.id.startswith("debian"))
    monkeypatch.setattr(images, "_release_digest_name", lambda *a: None)
    with pytest.raises(images.ImageUnavailable, match=r"failed \(after 3 attempts\): toomanyrequests"):
        images._pull(Driver(), distro, Arch.AMD64)  # type: ignore[arg-type]
    assert Driver.calls == 3
