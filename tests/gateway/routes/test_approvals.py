"""gateway/routes/approvals.py under attack: the key is checked before a body is read, and bodies
are capped (real `warden gateway serve`, raw sockets for the requests a client library won't send)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import httpx
import pytest

from tests.gateway.harness import Gateway, NotesUpstream, fixture_policy_dir, run_gateway, upstreams_yaml
from tests.gateway.wire import declare_body, peak_rss_kib, stream_body

HUNDRED_MB = 100 * 1024 * 1024


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, notes: NotesUpstream) -> Iterator[Gateway]:
    tmp = tmp_path_factory.mktemp("approvals-routes")
    with run_gateway(tmp, fixture_policy_dir(tmp), upstreams_yaml(notes.url), ["writer-agent", "alice"]) as gateway:
        yield gateway


@pytest.mark.parametrize("verdict", ["approve", "deny"])
@pytest.mark.parametrize("authorization", [None, "Bearer not-a-key", "Basic YWxpY2U6eA=="])
def test_an_unauthenticated_body_is_refused_before_it_is_sent(
    gw: Gateway, verdict: str, authorization: str | None
) -> None:
    # a body under the cap that never comes: only a server that answers before reading it answers at all
    headers = {"Content-Type": "application/json", **({"Authorization": authorization} if authorization else {})}
    answer = declare_body(gw.port, "POST", f"/approvals/some-id/{verdict}", 60_000, headers)
    assert answer.status == 401, answer.body
    assert declare_body(gw.port, "POST", f"/approvals/some-id/{verdict}", HUNDRED_MB, headers).status in (401, 413)


def test_concurrent_unauthenticated_streams_do_not_grow_the_gateway(gw: Gateway) -> None:
    before = peak_rss_kib(gw.process.pid)
    answers: list[int] = []

    def attack(n: int) -> None:
        path = f"/approvals/id-{n}/{('approve', 'deny')[n % 2]}"
        answer = stream_body(gw.port, "POST", path, 25 * 1024 * 1024, {"Content-Type": "application/json"})
        answers.append(answer.status)

    threads = [threading.Thread(target=attack, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert answers == [401] * 4
    grown_mib = (peak_rss_kib(gw.process.pid) - before) / 1024
    assert grown_mib < 20, f"peak RSS grew {grown_mib:.0f} MiB for 100 MiB of unauthenticated bodies"


def test_an_authenticated_body_over_the_cap_is_refused_unread(gw: Gateway) -> None:
    auth = {"Authorization": f"Bearer {gw.keys['alice']}", "Content-Type": "application/json"}
    declared = declare_body(gw.port, "POST", "/approvals/some-id/approve", HUNDRED_MB, auth)
    assert declared.status == 413 and "at most 65536 bytes" in declared.json()["detail"]
    streamed = stream_body(gw.port, "POST", "/approvals/some-id/deny", 64 * 1024 * 1024, auth)
    assert streamed.status == 413 and streamed.sent < 16 * 1024 * 1024, streamed  # stopped; the rest is socket buffers


def test_a_small_authenticated_body_is_still_read_and_checked(gw: Gateway) -> None:
    auth = {"Authorization": f"Bearer {gw.keys['alice']}"}
    unknown = httpx.post(f"{gw.url}/approvals/no-such-id/approve", json={"reason": "fine"}, headers=auth)
    assert unknown.status_code == 404
    malformed = httpx.post(f"{gw.url}/approvals/no-such-id/approve", content=b"{not json", headers=auth)
    assert malformed.status_code == 422 and "{not json" not in malformed.text
    extra = httpx.post(f"{gw.url}/approvals/no-such-id/deny", json={"reason": "x", "also": 1}, headers=auth)
    assert extra.status_code == 422
