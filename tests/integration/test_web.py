"""The web view in a real browser (Chromium driven by Playwright) against a real coordinator and
shell agents: sign-in, the live builds list, the graph, live logs, a 100 MB log, gates and
roles, environments and agents. Each page's screenshot is kept (the directory is printed)."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.gitrepo import GitRepo
from tests.harness import CLIENT_TOKEN, Cluster, wait_for
from tests.integration.web_pipelines import DEPLOY, GATED, HUGE, HUGE_BYTES, diamond, talking

# The pages read through the HTTP API, whose store paths test_http_api runs on both backends.
pytestmark = pytest.mark.any_store

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 60_000
WAIT_S = 120.0
# Generous for a loaded 2-core machine: every expectation waits this long, not Playwright's 5 s.
expect.set_options(timeout=WAIT_MS)
HUGE_LINES = HUGE_BYTES // len("line\n")
HUGE_LAST_LINE_AT = HUGE_BYTES - len("line\n")
# "Within a few seconds" on an idle machine; the bound is generous for a loaded CI runner
# (the measured times are printed and kept with the screenshots).
HUGE_JUMP_BOUND_S = 30.0


@pytest.fixture(scope="module")
def chromium_path() -> Path:
    if CHROMIUM.exists():
        return CHROMIUM
    problem = f"{CHROMIUM} is missing (apt-get install chromium; see scripts/setup.sh)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{problem}: under CI the browser tests must run")
    pytest.skip(problem)


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chosen = os.environ.get("CONVEYOR_SCREENSHOTS")
    directory = Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")
    directory.mkdir(parents=True, exist_ok=True)
    print(f"\nweb view screenshots: {directory}")
    return directory


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    created = Cluster(tmp_path_factory.mktemp("web-cluster"), executor="shell")
    created.start_server()
    created.start_agent("w1", labels="executor=shell", concurrency=4)
    try:
        yield created
    finally:
        created.close()


@pytest.fixture(scope="module")
def api(cluster: Cluster) -> Iterator[httpx.Client]:
    base = f"http://{cluster.http_address}/api/v1"
    headers = {"Authorization": f"Bearer {CLIENT_TOKEN}"}
    with httpx.Client(base_url=base, headers=headers, timeout=60.0) as client:
        yield client


@pytest.fixture(scope="module")
def huge_build(api: httpx.Client) -> int:
    """Only the 100 MB test asks for it: test processes that do not run it never write it."""
    return submit(api, HUGE)


@pytest.fixture(scope="module")
def browser(chromium_path: Path) -> Iterator[Browser]:
    with sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=str(chromium_path), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


def submit(api: httpx.Client, pipeline: str) -> int:
    reply = api.post("/builds", json={"pipeline": pipeline})
    assert reply.status_code == 201, reply.text
    build_id: int = reply.json()["id"]
    return build_id


def build_of(api: httpx.Client, build_id: int) -> dict[str, Any]:
    reply = api.get(f"/builds/{build_id}")
    assert reply.status_code == 200, reply.text
    doc: dict[str, Any] = reply.json()
    return doc


def wait_status(api: httpx.Client, build_id: int, status: str) -> dict[str, Any]:
    found: dict[str, Any] = wait_for(
        lambda: (doc := build_of(api, build_id))["status"] == status and doc,
        WAIT_S,
        f"build {build_id} to be {status}",
        every_s=0.2,
    )
    return found


def signed_in(browser: Browser, cluster: Cluster, token: str) -> Page:
    """A fresh browser context signed in through the form on `/`."""
    page = browser.new_context(viewport={"width": 1280, "height": 860}).new_page()
    page.set_default_timeout(WAIT_MS)
    page.goto(f"http://{cluster.http_address}/")
    page.fill("form#signin input[name=token]", token)
    page.click("form#signin button[type=submit]")
    expect(page.locator("#who")).not_to_be_empty()
    return page


def shoot(page: Page, directory: Path, name: str) -> None:
    page.screenshot(path=str(directory / f"{name}.png"), full_page=False)


def mark_page(page: Page) -> None:
    """A mark a reload would wipe: what changes after it changed without a reload."""
    page.evaluate("window.__conveyorMark = 'kept'")


def assert_not_reloaded(page: Page) -> None:
    assert page.evaluate("window.__conveyorMark") == "kept"


def test_sign_in_then_builds_appear_and_change_live(
    browser: Browser,
    cluster: Cluster,
    api: httpx.Client,
    screenshots: Path,
    tmp_path: Path,
) -> None:
    page = browser.new_context(color_scheme="light").new_page()
    page.set_default_timeout(WAIT_MS)
    page.goto(f"http://{cluster.http_address}/")
    expect(page.locator("form#signin input[name=token]")).to_be_visible()
    shoot(page, screenshots, "01-sign-in")
    page.fill("input[name=token]", "not-a-token")
    page.click("form#signin button[type=submit]")
    expect(page.locator("#signin-error")).to_contain_text("refused")
    page.fill("input[name=token]", CLIENT_TOKEN)
    page.click("form#signin button[type=submit]")
    expect(page.locator("#who")).to_contain_text("admin")
    cookie = next(c for c in page.context.cookies() if c["name"] == "conveyor_token")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    mark_page(page)

    gate = tmp_path / "go"
    build_id = submit(api, diamond(gate))
    row = page.locator(f"tr[data-build='{build_id}'] [data-status]")
    expect(row).to_have_attribute("data-status", "running")
    gate.touch()
    expect(row).to_have_attribute("data-status", "succeeded")
    assert_not_reloaded(page)
    shoot(page, screenshots, "02-builds")

    page.reload()  # the sign-in lasts across page loads
    expect(page.locator(f"tr[data-build='{build_id}']")).to_be_visible()
    expect(page.locator("form#signin")).to_have_count(0)
    # The theme follows the system until the toggle picks one, which then outlasts a reload.
    root = page.locator("html")
    expect(root).to_have_attribute("data-theme", "light")
    page.click("#theme")
    expect(root).to_have_attribute("data-theme", "dark")
    page.reload()
    expect(root).to_have_attribute("data-theme", "dark")
    expect(page.locator(f"tr[data-build='{build_id}']")).to_be_visible()
    shoot(page, screenshots, "02-builds-dark")


def test_build_page_draws_the_graph_live(
    browser: Browser, cluster: Cluster, api: httpx.Client, screenshots: Path, tmp_path: Path
) -> None:
    page = signed_in(browser, cluster, CLIENT_TOKEN)
    gate = tmp_path / "go"
    build_id = submit(api, diamond(gate))
    page.goto(f"http://{cluster.http_address}/builds/{build_id}")
    graph = page.locator("#graph svg")
    expect(graph.locator(".node")).to_have_count(4)
    expect(graph.locator(".edge")).to_have_count(4)
    expect(graph.locator(".node[data-job=compile]")).to_have_attribute("data-status", "running")
    expect(graph.locator(".node[data-job=package]")).to_have_attribute("data-status", "waiting")
    # A waiting job says what it waits for.
    expect(page.locator("tr[data-job=package] .why")).to_contain_text("waits for unit, lint")
    edges = {
        (e.get_attribute("data-from"), e.get_attribute("data-to"))
        for e in graph.locator(".edge").all()
    }
    assert edges == {
        ("compile", "unit"),
        ("compile", "lint"),
        ("unit", "package"),
        ("lint", "package"),
    }
    # Laid out by depth: compile, then unit and lint side by side, then package.
    xs = {
        job: graph.locator(f".node[data-job={job}] rect").first.get_attribute("x")
        for job in ("compile", "unit", "lint", "package")
    }
    assert xs["unit"] == xs["lint"] and len({xs["compile"], xs["unit"], xs["package"]}) == 3
    shoot(page, screenshots, "03-build-running")
    mark_page(page)
    gate.touch()
    expect(graph.locator(".node[data-job=package]")).to_have_attribute("data-status", "succeeded")
    assert_not_reloaded(page)
    shoot(page, screenshots, "04-build-graph")


def test_log_page_follows_a_running_job(
    browser: Browser, cluster: Cluster, api: httpx.Client, screenshots: Path, tmp_path: Path
) -> None:
    page = signed_in(browser, cluster, CLIENT_TOKEN)
    gate = tmp_path / "go"
    build_id = submit(api, talking(gate))
    wait_for(
        lambda: build_of(api, build_id)["jobs"][0]["status"] == "running",
        WAIT_S,
        "the job to run",
    )
    page.goto(f"http://{cluster.http_address}/builds/{build_id}/jobs/talk")
    log = page.locator("#log")
    expect(log.locator(".log-line", has_text="line 5 before")).to_be_visible()
    expect(log.locator(".log-line", has_text="line 10 after")).to_have_count(0)
    # ANSI colours as classes, escape codes gone; each line numbered with its own link.
    red = log.locator(".log-line[data-line='1'] .a-31")
    expect(red).to_have_text("red alert")
    expect(log.locator(".log-line[data-line='1'] .a-92.a-b")).to_have_text("bright")
    expect(log.locator(".log-line[data-line='1']")).not_to_contain_text("[31m")
    expect(log.locator(".log-line[data-line='3'] a.ln")).to_have_attribute("href", "#L3")
    mark_page(page)
    gate.touch()
    expect(log.locator(".log-line", has_text="line 10 after")).to_be_visible()
    expect(log.locator(".log-line[data-line='16']")).to_contain_text("line 10 after")
    assert_not_reloaded(page)
    page.fill("#log-search", "line 7 after")
    page.press("#log-search", "Enter")
    expect(page.locator("#log-status")).to_contain_text("line 13")
    expect(log.locator("mark.hit")).to_have_text("line 7 after")
    shoot(page, screenshots, "05-log-live")


def test_a_100_mb_log_opens_at_its_last_line_within_seconds(
    browser: Browser, cluster: Cluster, api: httpx.Client, huge_build: int, screenshots: Path
) -> None:
    doc = wait_status(api, huge_build, "succeeded")
    assert doc["jobs"][0]["steps"][0]["log_bytes"] == HUGE_BYTES
    page = signed_in(browser, cluster, CLIENT_TOKEN)
    log = page.locator("#log")
    started = time.monotonic()
    page.goto(f"http://{cluster.http_address}/builds/{huge_build}/jobs/flood")
    last = log.locator(f".log-line[data-line='{HUGE_LINES}']")
    expect(log.locator(f".log-line[data-offset='{HUGE_LAST_LINE_AT}']")).to_be_visible()
    shown_s = time.monotonic() - started
    expect(last).to_be_visible()
    numbered_s = time.monotonic() - started
    expect(page.locator("#log-status")).to_contain_text(f"{HUGE_LINES:,} lines")
    shoot(page, screenshots, "06-log-100mb-end")

    page.click("#log-top")
    expect(log.locator(".log-line[data-line='1']")).to_be_visible()
    started = time.monotonic()
    page.click("#log-end")
    expect(last).to_be_visible()
    jump_s = time.monotonic() - started
    # Halfway down the scrollbar is halfway through the bytes, each line with its own number.
    log.evaluate("view => { view.scrollTop = (view.scrollHeight - view.clientHeight) / 2; }")
    page.wait_for_function(
        "([half, slack]) => Math.abs(Number(document.getElementById('log').dataset.top) - half)"
        " < slack",
        arg=[HUGE_BYTES // 2, HUGE_BYTES // 100],
    )
    middle = log.locator(".log-line").first
    top = int(middle.get_attribute("data-offset") or "0")
    assert abs(top - HUGE_BYTES / 2) < HUGE_BYTES / 100, top
    expect(middle).to_have_attribute("data-line", str(top // len("line\n") + 1))
    # Only what is on screen is in the page, whatever the log's size.
    assert log.locator(".log-line").count() < 200
    page.goto(f"http://{cluster.http_address}/builds/{huge_build}/jobs/flood#L12345678")
    expect(log.locator(".log-line.target[data-line='12345678']")).to_be_visible()
    shoot(page, screenshots, "07-log-100mb-line-link")
    timings = {"last_line_shown_s": shown_s, "numbered_s": numbered_s, "jump_to_end_s": jump_s}
    (screenshots / "huge-log-timings.json").write_text(json.dumps(timings, indent=2))
    print(f"\n100 MB log: {json.dumps(timings)}")
    assert numbered_s < HUGE_JUMP_BOUND_S and jump_s < HUGE_JUMP_BOUND_S, timings


def test_gate_buttons_follow_the_role_and_approve(
    browser: Browser, cluster: Cluster, api: httpx.Client, screenshots: Path
) -> None:
    made = cluster.cli("token", "create", "watcher", "--role", "viewer", "--json")
    assert made.returncode == 0, made.stderr.decode()
    viewer_token = json.loads(made.stdout)["token"]
    build_id = submit(api, GATED)
    wait_for(
        lambda: (
            next(j for j in build_of(api, build_id)["jobs"] if j["name"] == "ship-it")["status"]
            == "waiting_for_approval"
        ),
        WAIT_S,
        "the gate to wait",
    )
    waiting = next(j for j in build_of(api, build_id)["jobs"] if j["name"] == "ship-it")
    assert waiting["approval"]["roles"] == ["deployer"] and waiting["needs"] == ["build"]
    viewer = signed_in(browser, cluster, viewer_token)
    viewer.goto(f"http://{cluster.http_address}/builds/{build_id}")
    expect(viewer.locator("tr[data-job=ship-it] .why")).to_contain_text("Ship to staging?")
    expect(viewer.locator("[data-action=approve]")).to_have_count(0)
    expect(viewer.locator("[data-action=reject]")).to_have_count(0)
    shoot(viewer, screenshots, "08-gate-viewer")

    admin = signed_in(browser, cluster, CLIENT_TOKEN)
    admin.goto(f"http://{cluster.http_address}/builds/{build_id}")
    expect(admin.locator("[data-action=reject]")).to_be_visible()
    shoot(admin, screenshots, "09-gate-deployer")
    admin.fill("tr[data-job=ship-it] input[name=comment]", "looks good")
    admin.click("[data-action=approve]")
    expect(admin.locator("tr[data-job=ship-it] .why")).to_contain_text("approved by admin")
    done = wait_status(api, build_id, "succeeded")
    gate = next(j for j in done["jobs"] if j["name"] == "ship-it")
    assert gate["approval"]["decision"] == "approved"
    assert gate["approval"]["by"] == "admin" and gate["approval"]["comment"] == "looks good"

    admin.goto(f"http://{cluster.http_address}/environments/staging")
    expect(admin.locator("#deployments tr").first).to_contain_text(f"#{build_id}")
    expect(admin.locator("#rollback")).to_be_visible()
    shoot(admin, screenshots, "10-environment")
    viewer.goto(f"http://{cluster.http_address}/environments/staging")
    expect(viewer.locator("#deployments tr").first).to_contain_text(f"#{build_id}")
    expect(viewer.locator("#rollback")).to_have_count(0)

    admin.goto(f"http://{cluster.http_address}/agents")
    expect(admin.locator("tr[data-agent=w1]")).to_contain_text("executor=shell")
    shoot(admin, screenshots, "11-agents")


def test_rollback_from_the_environment_page(
    browser: Browser, cluster: Cluster, api: httpx.Client
) -> None:
    first, second = (wait_status(api, submit(api, DEPLOY), "succeeded")["id"] for _ in range(2))
    history = api.get("/environments/production/deployments").json()["deployments"]
    assert [d["build"] for d in history] == [second, first]
    page = signed_in(browser, cluster, CLIENT_TOKEN)
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(f"http://{cluster.http_address}/environments/production")
    expect(page.locator("#deployments tr")).to_have_count(2)
    expect(page.locator("#rollback")).to_be_visible()
    # Both ran the same thing, so the default (the last good one that differs) has none: the
    # page says why, then the older one is chosen by its own button.
    page.click("#rollback")
    expect(page.locator("#rollback-note")).to_contain_text("no earlier successful deployment")
    page.click(f"tr[data-deployment='{history[1]['id']}'] button")
    page.wait_for_url(re.compile(r"/builds/\d+$"))
    rollback = int(page.url.rsplit("/", 1)[1])
    assert rollback not in (first, second)
    done = wait_status(api, rollback, "succeeded")
    assert done["redeploys"] == history[1]["id"]


def test_the_cookie_changes_nothing_without_the_page_header(cluster: Cluster) -> None:
    base = f"http://{cluster.http_address}"
    with httpx.Client(base_url=base, timeout=60.0) as client:
        refused = client.post("/signin", data={"token": "wrong"})
        assert refused.status_code == 303 and "refused" in refused.headers["location"]
        assert "conveyor_token" not in client.cookies
        foreign = client.post(
            "/signin", data={"token": CLIENT_TOKEN}, headers={"Origin": "http://elsewhere"}
        )
        assert foreign.status_code == 403
        elsewhere = client.post("/signin", data={"token": CLIENT_TOKEN, "next": "//elsewhere/x"})
        assert elsewhere.status_code == 303 and elsewhere.headers["location"] == "/"
        client.cookies.clear()
        taken = client.post("/signin", data={"token": CLIENT_TOKEN, "next": "/agents"})
        assert taken.status_code == 303 and taken.headers["location"] == "/agents"
        assert "httponly" in taken.headers["set-cookie"].lower()
        assert client.get("/api/v1/whoami").json() == {"name": "admin", "role": "admin"}
        bare = client.post("/api/v1/agents/w1/pause")
        assert bare.status_code == 403, bare.text
        assert "x-conveyor-request" in bare.json()["error"]
        page_call = client.post("/api/v1/agents/w1/resume", headers={"X-Conveyor-Request": "1"})
        assert page_call.status_code == 200, page_call.text
        out = client.post("/signout")
        assert out.status_code == 303
        assert client.get("/api/v1/whoami").status_code == 401


def test_a_repository_build_whose_pipeline_is_invalid_shows_why_on_its_page(
    browser: Browser, cluster: Cluster, api: httpx.Client, screenshots: Path, tmp_path: Path
) -> None:
    repo = GitRepo.create(tmp_path / "web-repo", {".conveyor.yml": "name: ok\n"})
    added = cluster.cli("repo", "add", "web-repo", str(repo.path), "--poll", "1s")
    assert added.returncode == 0, added.stderr
    commit = repo.commit({".conveyor.yml": "name: broken\njobs:\n  x:\n    stepz: []\n"}, "Oops")
    build = wait_for(
        lambda: next((b for b in api.get("/builds").json()
                      if (b["trigger"] or {}).get("commit") == commit), None),
        WAIT_S,
        "the repository's failed build",
    )  # fmt: skip
    page = signed_in(browser, cluster, CLIENT_TOKEN)
    row = page.locator(f"tr[data-build='{build['id']}']")
    expect(row.locator(".error")).to_contain_text(".conveyor.yml:3:3:")
    page.goto(f"http://{cluster.http_address}/builds/{build['id']}")
    expect(page.locator("#build-error")).to_contain_text(".conveyor.yml:4:5: jobs.x.stepz")
    expect(page.locator("dl.kv")).to_contain_text(commit[:12])
    expect(page.locator("dl.kv")).to_contain_text("Oops")
    shoot(page, screenshots, "09-invalid-pipeline")
