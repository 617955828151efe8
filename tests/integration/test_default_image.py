"""Pipelines that name no image run on the agent's `--default-image` (conveyor/busybox unless
the operator says otherwise), and the step's log says which image that was."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from tests.harness import Cluster, job, write_pipeline

pytestmark = [pytest.mark.docker, pytest.mark.any_store]

# Made from conveyor/busybox with a marker file, offline: a step can tell it runs in this one.
MARKED_IMAGE = "conveyor/busybox-marked:default-image-test"

IMAGELESS = """
name: no-image
jobs:
  plain:
    labels: {pool: plain}
    steps:
      - run: test ! -e /marker && echo plain box
  marked:
    labels: {pool: marked}
    steps:
      - run: cat /marker
"""


@pytest.fixture(scope="module")
def marked_image(docker_ready: None) -> Iterator[str]:
    client = docker.from_env()
    container = client.containers.run(
        "conveyor/busybox", ["sh", "-c", "echo marked box > /marker"], detach=True
    )
    try:
        container.wait(timeout=60)
        container.commit(*MARKED_IMAGE.split(":"))
    finally:
        container.remove(force=True)
    yield MARKED_IMAGE
    client.images.remove(MARKED_IMAGE, force=True)


def test_an_imageless_pipeline_runs_on_each_agents_default_image(
    tmp_path: Path, marked_image: str
) -> None:
    cluster = Cluster(tmp_path, executor="docker")
    try:
        cluster.start_server()
        cluster.start_agent("plain", labels="pool=plain")
        cluster.start_agent("marked", labels="pool=marked", extra=("--default-image", marked_image))
        path = write_pipeline(tmp_path, "no-image.yml", IMAGELESS)
        result = cluster.cli("run", str(path), "--json")
        assert result.returncode == 0, result.stderr.decode() + result.stdout.decode()
        doc = json.loads(result.stdout)
        assert {job(doc, name)["agent"] for name in ("plain", "marked")} == {"plain", "marked"}
        for name, image, printed in (
            ("plain", "conveyor/busybox", "plain box"),
            ("marked", marked_image, "marked box"),
        ):
            logs = cluster.cli("logs", str(doc["id"]), name)
            assert logs.returncode == 0, logs.stderr.decode()
            assert logs.stdout.decode().splitlines() == [
                f"conveyor: no image named; using this agent's default {image}",
                printed,
            ]
    finally:
        cluster.close()
