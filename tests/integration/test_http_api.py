"""The HTTP API end to end: a real coordinator and shell agents, driven over /api/v1 only."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.harness import CLIENT_TOKEN, Cluster, wait_for

WAIT_S = 90.0
FINAL = ("succeeded", "failed", "canceled")


def gate_step(gate: Path) -> str:
    """Waits for `gate` to exist (two minutes at most, so a failed test leaves no endless step)."""
    return f"i=0; while [ ! -e {gate} ] && [ $i -lt 1200 ]; do sleep 0.1; i=$((i+1)); done"


def talking(gate: Path) -> str:
    """A job that prints, waits for `gate`, then prints more: a live log with a known end."""
    return f"""
name: talk
image: any
jobs:
  talk:
    labels: {{executor: shell}}
    steps:
      - name: speak
        run: |
          for i in 1 2 3 4 5; do echo "line $i before"; done
          {gate_step(gate)}
          for i in 1 2 3 4 5 6 7 8 9 10; do echo "line $i after"; sleep 0.05; done
  ship-it:
    needs: [talk]
    approval: {{prompt: "Ship it?"}}
  staging:
    needs: [ship-it]
    labels: {{executor: shell}}
    environment: staging
    steps: [{{run: "echo deployed"}}]
"""


DEPLOY = """
name: deploy
image: any
jobs:
  deploy:
    labels: {executor: shell}
    environment: production
    steps: [{run: "echo release $TAG"}]
"""


@pytest.fixture
def shell_cluster(tmp_path: Path) -> Iterator[Cluster]:
    (tmp_path / "cluster").mkdir()
    created = Cluster(tmp_path / "cluster", executor="shell")
    created.start_server()
    created.start_agent("h1", labels="executor=shell", concurrency=2)
    try:
        yield created
    finally:
        created.close()


@pytest.fixture
def api(shell_cluster: Cluster) -> Iterator[httpx.Client]:
    base = f"http://{shell_cluster.http_address}/api/v1"
    headers = {"Authorization": f"Bearer {CLIENT_TOKEN}"}
    with httpx.Client(base_url=base, headers=headers, timeout=60.0) as client:
        yield client


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, (response.status_code, response.text)
    return response.json()


def wait_build(api: httpx.Client, build_id: int, what: str, test: Any) -> dict[str, Any]:
    found: dict[str, Any] = wait_for(
        lambda: (doc := ok(api.get(f"/builds/{build_id}"))) and test(doc) and doc,
        WAIT_S,
        what,
        every_s=0.2,
    )
    return found


def job_of(doc: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(j for j in doc["jobs"] if j["name"] == name)
    return found


def events(response: httpx.Response) -> Iterator[tuple[str, str | None, Any]]:
    """(event, id, data) of a Server-Sent Events stream."""
    kind, event_id, data = "message", None, ""
    for line in response.iter_lines():
        if not line:
            yield kind, event_id, json.loads(data) if data else None
            kind, event_id, data = "message", None, ""
        elif line.startswith("event: "):
            kind = line[7:]
        elif line.startswith("id: "):
            event_id = line[4:]
        elif line.startswith("data: "):
            data += line[6:]


def read_live(
    api: httpx.Client,
    path: str,
    headers: dict[str, str],
    stop_after: int | None = None,
    start: int = 0,
) -> tuple[bytes, str | None, bool]:
    """Log bytes from the live stream (resuming at `start`), the last event id, and whether it
    reached `end`; after `stop_after` events it hangs up early (a client that went away)."""
    got = b""
    last: str | None = None
    with api.stream("GET", path, headers=headers) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        for count, (kind, event_id, data) in enumerate(events(response), start=1):
            if kind == "end":
                return got, last, True
            assert kind == "log", (kind, data)
            chunk = base64.b64decode(data["data_b64"])
            assert data["offset"] == start + len(got)
            assert event_id is not None and int(event_id) == data["offset"] + len(chunk)
            got += chunk
            last = event_id
            if stop_after is not None and count >= stop_after:
                return got, last, False
    return got, last, False


def test_a_pipeline_over_http_submit_follow_logs_gate_and_deployment(
    shell_cluster: Cluster, api: httpx.Client, tmp_path: Path
) -> None:
    gate = tmp_path / "go"
    build_id = ok(api.post("/builds", json={"pipeline": talking(gate)}), 201)["id"]
    listed = ok(api.get("/builds", params={"status": "running"}))
    wait_build(api, build_id, "the job to print", lambda d: job_of(d, "talk")["steps"])
    log = f"/builds/{build_id}/jobs/talk/steps/0/log"
    wait_for(lambda: api.get(log).content.count(b"\n") >= 5, WAIT_S, "the first lines")

    # Live: a first stream hangs up after its first event; the second resumes from its id.
    first, last_id, ended = read_live(api, log + "/live", {}, stop_after=1)
    assert first.startswith(b"line 1 before\n") and not ended and last_id == str(len(first))
    gate.touch()
    rest, _, ended = read_live(api, log + "/live", {"Last-Event-ID": last_id}, start=len(first))
    assert ended
    whole = api.get(log)
    assert whole.status_code == 200 and whole.headers["x-log-length"] == str(len(whole.content))
    assert first + rest == whole.content  # no gap, no repeat
    assert whole.content.endswith(b"line 10 after\n")
    # ... and `?offset=` resumes the same way.
    again, _, ended = read_live(api, f"{log}/live?offset={len(first)}", {}, start=len(first))
    assert ended and again == rest

    # Any slice by range: exact bytes and the total.
    part = api.get(log, headers={"Range": "bytes=5-9"})
    assert part.status_code == 206 and part.content == whole.content[5:10]
    assert part.headers["content-range"] == f"bytes 5-9/{len(whole.content)}"
    tail = api.get(log, params={"offset": len(whole.content) - 14, "limit": 100})
    assert tail.content == b"line 10 after\n"
    past = api.get(log, headers={"Range": f"bytes={len(whole.content) + 1}-"})
    assert past.status_code == 416 and "past the end" in past.json()["error"]

    # The approval gate, then the deployment it lets through.
    wait_build(
        api,
        build_id,
        "the gate",
        lambda d: job_of(d, "ship-it")["status"] == "waiting_for_approval",
    )
    decided = ok(api.post(f"/builds/{build_id}/jobs/ship-it/approve", json={"comment": "go"}))
    assert (decided["decision"], decided["by"], decided["comment"]) == ("approved", "admin", "go")
    done = wait_build(api, build_id, "the build to end", lambda d: d["status"] in FINAL)
    assert done["status"] == "succeeded", done
    # The documents are the CLI's, by construction.
    assert done == shell_cluster.show(build_id)
    assert ok(api.get(f"/builds/{build_id}/jobs")) == done["jobs"]
    assert ok(api.get(f"/builds/{build_id}/jobs/staging")) == job_of(done, "staging")
    assert any(b["id"] == build_id for b in listed + ok(api.get("/builds")))
    assert ok(api.get("/builds", params={"status": "succeeded", "limit": 1}))[0]["id"] == build_id
    assert "jobs" not in ok(api.get("/builds"))[0]

    envs = ok(api.get("/environments"))
    assert envs == shell_cluster.json("envs")
    assert envs["environments"][0]["current"]["build"] == build_id
    history = ok(api.get("/environments/staging/deployments"))
    assert history == shell_cluster.json("deployments", "staging")
    assert history["deployments"][0]["approvals"][0]["by"] == "admin"
    figures = ok(api.get("/dora", params={"env": "staging"}))
    assert figures["deployments"] == 1 and figures["environment"] == "staging"


def test_cancel_retry_rollback_and_agents_over_http(api: httpx.Client, tmp_path: Path) -> None:
    never = tmp_path / "never"
    waiting = talking(never).split("  ship-it:")[0]
    build_id = ok(api.post("/builds", json={"pipeline": waiting}), 201)["id"]
    wait_build(api, build_id, "the job to run", lambda d: job_of(d, "talk")["status"] == "running")
    ok(api.post(f"/builds/{build_id}/cancel"))
    canceled = wait_build(api, build_id, "the cancel", lambda d: d["status"] in FINAL)
    assert canceled["status"] == "canceled"
    never.touch()
    retried = ok(api.post(f"/builds/{build_id}/retry", json={"job": "talk"}))
    assert job_of(retried, "talk")["status"] in ("queued", "running")
    again = wait_build(api, build_id, "the retry", lambda d: d["status"] in FINAL)
    assert job_of(again, "talk")["attempts"] == 2 and job_of(again, "talk")["status"] == "succeeded"

    # Two releases, then a rollback to the first.
    for tag in ("v1", "v2"):
        body = {"pipeline": DEPLOY, "env": {"TAG": tag}}
        release = ok(api.post("/builds", json=body), 201)["id"]
        assert (
            wait_build(api, release, tag, lambda d: d["status"] in FINAL)["status"] == "succeeded"
        )
    first = ok(api.get("/environments/production/deployments"))["deployments"][-1]
    started = ok(api.post("/environments/production/rollback", json={"to": first["id"]}), 201)
    assert started["redeploys"] == first["id"]
    back = wait_build(api, started["id"], "the rollback", lambda d: d["status"] in FINAL)
    assert back["status"] == "succeeded" and back["redeploys"] == first["id"]

    (agent,) = ok(api.get("/agents"))
    assert ok(api.post(f"/agents/{agent['name']}/pause"))["state"] == "paused"
    assert ok(api.get("/agents"))[0]["state"] == "paused"
    assert ok(api.post(f"/agents/{agent['name']}/resume"))["state"] == "online"


def test_the_api_refuses_without_the_token_and_says_why_in_json(
    shell_cluster: Cluster, tmp_path: Path
) -> None:
    base = f"http://{shell_cluster.http_address}"
    with httpx.Client(base_url=base, timeout=30.0) as plain:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic x"}):
            refused = plain.get("/api/v1/builds", headers=headers)
            assert refused.status_code == 401, refused.text
            assert refused.json()["error"].endswith("client token"), refused.text
            refused = plain.post("/api/v1/builds", headers=headers, json={"pipeline": DEPLOY})
            assert refused.status_code == 401
        # A token whose role may not: 403 naming the token, its role and who may; nothing made.
        made = shell_cluster.json("token", "create", "reader", "--role", "viewer")
        reader = {"Authorization": f"Bearer {made['token']}"}
        assert plain.get("/api/v1/builds", headers=reader).status_code == 200
        for path, body in (("/api/v1/builds", {"pipeline": DEPLOY}),
                           ("/api/v1/environments/production/rollback", {})):  # fmt: skip
            refused = plain.post(path, headers=reader, json=body)
            assert refused.status_code == 403, refused.text
            assert "token 'reader' (role viewer) may not" in refused.json()["error"]
        assert shell_cluster.json("builds") == []
        allowed = plain.get("/api/v1/builds", headers={"Authorization": f"Bearer {CLIENT_TOKEN}"})
        # Allowed, and nothing was submitted by the refused calls.
        assert ok(allowed) == [] == shell_cluster.json("builds")
        # What needs no token.
        assert plain.get("/healthz").status_code == 200
        assert plain.get("/metrics").status_code == 200
        assert plain.get("/api/v1/openapi.json").json()["openapi"].startswith("3.")


def test_domain_errors_have_their_statuses_and_words(api: httpx.Client) -> None:
    missing = api.get("/builds/999")
    assert missing.status_code == 404 and "999" in missing.json()["error"]
    # Past what an id column holds (PostgreSQL's INTEGER): out of range, not a database error.
    for path in ("/builds/205146920481", "/builds/205146920481/jobs/a", "/builds/2147483648"):
        huge = api.get(path)
        assert huge.status_code == 400 and "out of range" in huge.json()["error"], huge.text
    assert api.post("/builds/205146920481/cancel").status_code == 400
    assert api.post("/builds/205146920481/retry").status_code == 400
    assert api.post("/builds/205146920481/jobs/a/approve").status_code == 400
    rollback = api.post("/environments/production/rollback", json={"to": 205146920481})
    assert rollback.status_code == 400
    invalid = api.post("/builds", json={"pipeline": "name: x\njobs:\n  a:\n    needs: [b]\n"})
    assert invalid.status_code == 400 and "jobs.a" in invalid.json()["error"]
    assert api.post("/builds", content=b"{not json").status_code == 400
    assert api.post("/builds", json=[1]).status_code == 400
    assert api.get("/builds", params={"limit": "-1"}).status_code == 400
    assert api.get("/builds", params={"status": "nope"}).status_code == 400
    assert api.get("/builds", params={"limit": "x"}).status_code == 400
    assert api.get("/nowhere").json() == {"error": "Not Found"}
    huge = api.post("/builds", content=b" " * (16 * 1024 * 1024 + 1))
    assert huge.status_code == 413
    assert shell_builds(api) == []


def shell_builds(api: httpx.Client) -> list[Any]:
    found: list[Any] = ok(api.get("/builds"))
    return found


BIG_LOG_BYTES = 6_000_000  # past one range answer's 4 MiB


def test_any_slice_of_a_log_larger_than_one_answer(api: httpx.Client) -> None:
    pipeline = f"""
name: big
image: any
jobs:
  big:
    labels: {{executor: shell}}
    steps:
      - run: "head -c {BIG_LOG_BYTES} /dev/zero | tr '\\\\0' x; echo; echo the end"
"""
    build_id = ok(api.post("/builds", json={"pipeline": pipeline}), 201)["id"]
    done = wait_build(api, build_id, "the big log", lambda d: d["status"] in FINAL)
    assert done["status"] == "succeeded", done
    total = BIG_LOG_BYTES + len("\nthe end\n")
    log = f"/builds/{build_id}/jobs/big/steps/0/log"
    first = api.get(log, headers={"Range": "bytes=0-"})
    assert first.status_code == 206 and len(first.content) == 4 * 1024 * 1024
    assert first.headers["content-range"] == f"bytes 0-{4 * 1024 * 1024 - 1}/{total}"
    rest = api.get(log, params={"offset": len(first.content), "limit": 4 * 1024 * 1024})
    assert rest.headers["x-log-length"] == str(total)
    assert len(first.content) + len(rest.content) == total
    assert rest.content.endswith(b"x\nthe end\n")
    last = api.get(log, headers={"Range": f"bytes={total - 8}-{total - 1}"})
    assert last.content == b"the end\n"
    at_end = api.get(log, params={"offset": total})
    assert at_end.status_code == 200 and at_end.content == b""
    assert api.get(log, params={"limit": 4 * 1024 * 1024 + 1}).status_code == 400
