"""deploys: builds racing for one environment's deploy lock on several shell agents.

Reads the coordinator's own deployment records: how long a freed lock takes to reach the next
build's job (the previous deployment's end to the next one's start), and that no two overlapped.
"""

from __future__ import annotations

import itertools
from pathlib import Path

from benchkit import builds
from benchkit.config import BUSYBOX, DEPLOY_HANDOVER_MAX_S, Sizes
from benchkit.figures import Figure, at_most, median, percentile
from benchkit.procs import Farm

ENVIRONMENT = "bench"
PIPELINE = f"""\
name: deploys
image: {BUSYBOX}
jobs:
  deploy:
    labels: {{executor: shell}}
    environment: {ENVIRONMENT}
    steps: [{{run: "sleep 0.05"}}]
"""


def run(root: Path, sizes: Sizes) -> list[Figure]:
    farm = Farm(root)
    try:
        farm.start_coordinator()
        farm.start_agents(sizes.deploy_agents, "shell", concurrency=2)
        client = farm.client()
        ids = builds.submit_many(client, PIPELINE, sizes.deploy_builds)
        failed = builds.wait_all(client, ids)
        listed = client.deployments(ENVIRONMENT, 1000).deployments
        client.close()
    finally:
        farm.stop()
    spans = sorted((d.started_at_ms / 1000, d.finished_at_ms / 1000) for d in listed)
    gaps = [later[0] - earlier[1] for earlier, later in itertools.pairwise(spans)]
    overlaps = sum(1 for gap in gaps if gap < 0)
    handovers = [gap for gap in gaps if gap >= 0]
    what = f"{len(ids)} builds, {sizes.deploy_agents} agents"
    value = median(handovers)
    return [
        Figure("deploys", f"{what}: deployments overlapping", float(overlaps), "deployments",
               "== 0", overlaps == 0 and failed == 0 and len(listed) == len(ids)),
        Figure("deploys", f"{what}: lock handover, median", value, "s",
               f"<= {DEPLOY_HANDOVER_MAX_S:.3f}", at_most(value, DEPLOY_HANDOVER_MAX_S)),
        Figure("deploys", f"{what}: lock handover, p95", percentile(handovers, 0.95), "s"),
    ]  # fmt: skip
