"""The README's demo commands, run as a reader would: the shop pipeline, and the delivery demo
from a git push to production and back."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

pytestmark = [pytest.mark.docker, pytest.mark.any_store]

ROOT = Path(__file__).resolve().parents[2]


def demo(*args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "demo.sh"), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**env, "NO_COLOR": "1"},
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    return done.stdout


def test_the_demo_runs_the_shop_pipeline() -> None:
    out = demo()
    assert "making 2 scoops of pumpkin (small batch)" in out
    assert "build 1 (shop): succeeded" in out


def test_the_delivery_demo_goes_to_production_and_back() -> None:
    out = demo("--delivery")
    before, _, after = out.partition("conveyor rollback production")
    # Each release reaches the farm by git push alone (the forge's signed webhook), built as the
    # commit it pushed: nobody typed conveyor run.
    assert "repository shop added (1 head recorded, not built)" in before
    assert before.count("demo: the push started build") == 2
    assert "conveyor run" not in out
    for version in ("v1", "v2"):
        assert f"by demo <demo@example.com>: shop {version}" in before  # the build's trigger
        assert f"production now runs shop {version}" in before
    assert "redeploys deployment" in after
    # Back to the first release's very bytes, with nothing built.
    assert "production now runs shop v1" in after
    assert "built shop" not in after
    digest_v1 = next(
        line.split()[0] for line in before.splitlines() if line.endswith("dist/shop.tar")
    )
    assert f"{digest_v1}  dist/shop.tar" in after
    assert "change failure rate            33.3% (1 of 3)" in out
