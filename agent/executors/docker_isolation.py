"""How a step container is confined: capabilities, limits and privileges (its network is
:mod:`.docker_network`'s)."""

from __future__ import annotations

import re
from typing import Any

from agent.config import Isolation

# What ordinary builds need of root's powers inside their container (README: "Step isolation").
CAPABILITIES = (
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "SETUID",
    "SETGID",
    "KILL",
    "NET_BIND_SERVICE",
)


def privileged_refused(job_name: str) -> str:
    return (
        f"job '{job_name}' asks for privileged: true, but this agent was not started with "
        "--allow-privileged"
    )


def host_options(isolation: Isolation, privileged: bool) -> dict[str, Any]:
    """`create_host_config` arguments bounding one step container."""
    options: dict[str, Any] = {
        "mem_limit": isolation.memory_bytes,
        # Equal to the memory limit: no swap on top, so a hog ends at the limit, not in swap.
        "memswap_limit": isolation.memory_bytes,
        "nano_cpus": int(isolation.cpus * 1e9),
        "pids_limit": isolation.pids_limit,
    }
    if privileged:
        return {**options, "privileged": True}
    return {
        **options,
        "cap_drop": ["ALL"],
        "cap_add": list(CAPABILITIES),
        "security_opt": ["no-new-privileges"],
    }


def memory_text(size: int) -> str:
    return f"{size / 1024**2:g} MiB" if size < 1024**3 else f"{size / 1024**3:g} GiB"


def name_part(agent_name: str) -> str:
    # Attempt ids are only unique per coordinator, so names carry the agent too: two agents (or
    # two farms) sharing one Docker host never touch each other's containers or volumes.
    return re.sub(r"[^a-zA-Z0-9_.-]", "_", agent_name)[:64]
