"""isolation: what a network of its own per attempt adds to a one-step job's latency.

Two Docker agents on one coordinator, one with `--network per-attempt` (the default) and one with
`--network bridge`; builds alternate between them so that drift in the machine's load hits both
alike. The figure is the difference of the medians, beside its limit.
"""

from __future__ import annotations

from pathlib import Path

from benchkit import builds
from benchkit.config import BUSYBOX, NETWORK_OVERHEAD_MAX_S, Sizes
from benchkit.figures import Figure, at_most, median
from benchkit.procs import Farm

MODES = ("per-attempt", "bridge")


def pipeline(mode: str) -> str:
    return (
        f"name: isolation\nimage: {BUSYBOX}\njobs:\n  one:\n    labels: {{net: {mode}}}\n"
        "    steps:\n      - run: 'true'\n"
    )


def run(root: Path, sizes: Sizes, docker: bool) -> list[Figure]:
    if not docker:
        return []
    n = sizes.latency_runs
    farm = Farm(root)
    samples: dict[str, list[float]] = {mode: [] for mode in MODES}
    try:
        farm.start_coordinator()
        for mode in MODES:
            farm.start_agents(1, "docker", stem=f"net-{mode}",
                              extra=("--labels", f"net={mode}", "--network", mode))  # fmt: skip
        client = farm.client()
        for _ in range(sizes.latency_warm_ups):
            for mode in MODES:
                builds.run_timed(client, pipeline(mode))
        for _ in range(n):
            for mode in MODES:
                samples[mode].append(builds.run_timed(client, pipeline(mode)))
        client.close()
    finally:
        farm.stop()
    own, shared = median(samples["per-attempt"]), median(samples["bridge"])
    # Clamped: on a noisy machine the per-attempt median can come out below the bridge's.
    added = max(own - shared, 0.0)
    return [
        Figure("isolation", f"per-attempt network: added latency, medians of {n}", added, "s",
               f"<= {NETWORK_OVERHEAD_MAX_S:.3f}", at_most(added, NETWORK_OVERHEAD_MAX_S),
               shared, "--network bridge"),
        Figure("isolation", f"per-attempt network: submit to final, median of {n}", own, "s",
               limit=shared, limit_name="--network bridge"),
    ]  # fmt: skip
