"""The network of an attempt's step containers.

With ``--network per-attempt`` each attempt gets a bridge network of its own, so steps of
different jobs on one host cannot reach each other. The network is held by a small idle
*holder* container on it, and the attempt's steps join the holder's network namespace
(``container:HOLDER``): connecting a fresh container to a user-defined network costs far more
than joining a namespace that is already set up, and that cost would be paid by every step.

Networks and their holders are made ahead in a small pool per agent, refilled in the background
as attempts end (never while a step starts: the engine serialises network changes); the first
attempt after a start makes its own. Each serves one attempt only and is removed when it ends.
All carry ``conveyor.agent``, so an agent's start removes what a crash left.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import uuid
from dataclasses import dataclass

from docker.api import APIClient
from docker.errors import APIError, NotFound
from docker.types import LogConfig

from agent.config import HELPER_IMAGE, NETWORK_POOL_SIZE, NETWORK_REFILL_WAIT_S
from agent.executors.docker_isolation import name_part

log = logging.getLogger(__name__)

NETWORK_LABEL = "conveyor.network"
# The holder only sleeps, but the runtime's own init (a Go program, several threads) starts
# inside the same limits: with 4 pids and 8 MiB it failed now and then on a loaded machine
# ("cannot start a stopped process"). These leave it room and still bound the holder.
_HOLDER_MEMORY_BYTES = 32 * 1024 * 1024
_HOLDER_PIDS = 64
_HOLDER_COMMAND = ["sleep", "2147483647"]


@dataclass(frozen=True)
class _Sandbox:
    name: str  # of both the network and its holder container
    holder_id: str


class AttemptNetworks:
    """One fresh network per attempt (or Docker's `bridge` or `none` for every step)."""

    def __init__(self, api: APIClient, mode: str) -> None:
        self._api = api
        self._mode = mode
        self._lock = threading.Lock()
        self._spare: dict[str, list[_Sandbox]] = {}  # agent name -> unused
        self._in_use: dict[tuple[str, int], _Sandbox] = {}  # (agent, attempt id) -> its own
        self._refills: dict[str, threading.Thread] = {}  # agent name -> pool refill

    def claim(self, agent_name: str, attempt_id: int) -> None:
        """Gives the attempt its own network (per-attempt mode); raises Docker's errors."""
        if self._mode != "per-attempt":
            return
        with self._lock:
            spare = self._spare.get(agent_name) or []
            sandbox = spare.pop() if spare else None
        if sandbox is None:
            sandbox = self._create(agent_name)
        with self._lock:
            self._in_use[(agent_name, attempt_id)] = sandbox

    def mode_of(self, agent_name: str, attempt_id: int) -> str:
        """The `network_mode` of the attempt's step containers."""
        if self._mode != "per-attempt":
            return self._mode
        with self._lock:
            sandbox = self._in_use.get((agent_name, attempt_id))
        if sandbox is None:
            raise RuntimeError(f"attempt {attempt_id} has no network: prepare it first")
        return f"container:{sandbox.holder_id}"

    def release(self, agent_name: str, attempt_id: int) -> None:
        """Removes the attempt's network once its steps are gone; starts a pool refill."""
        with self._lock:
            sandbox = self._in_use.pop((agent_name, attempt_id), None)
        if sandbox is None:
            return
        self._remove(sandbox.name)
        with self._lock:
            if agent_name in self._refills:
                return
            refill = threading.Thread(
                target=self._refill, args=(agent_name,), name="conveyor-netpool", daemon=True
            )
            self._refills[agent_name] = refill
        refill.start()

    def remove_all(self, agent_name: str) -> None:
        """Removes every network and holder this agent name made (none may be in use)."""
        with self._lock:
            refill = self._refills.get(agent_name)
        if refill is not None:
            # Else what it is making now would outlive this clean-up.
            refill.join(NETWORK_REFILL_WAIT_S)
        with self._lock:
            self._spare.pop(agent_name, None)
            for key in [key for key in self._in_use if key[0] == agent_name]:
                del self._in_use[key]
        selector = {"label": [f"conveyor.agent={agent_name}", NETWORK_LABEL]}
        for holder in self._api.containers(all=True, quiet=True, filters=selector):
            with contextlib.suppress(NotFound):
                self._api.remove_container(holder["Id"], force=True)
        for network in self._api.networks(filters=selector):
            self._remove(str(network["Name"]))

    def _create(self, agent_name: str) -> _Sandbox:
        name = f"conveyor-net-{name_part(agent_name)}-{uuid.uuid4().hex[:12]}"
        labels = {"conveyor.agent": agent_name, NETWORK_LABEL: "attempt"}
        self._api.create_network(name, driver="bridge", labels=labels, check_duplicate=True)
        try:
            holder = self._api.create_container(
                HELPER_IMAGE,
                command=_HOLDER_COMMAND,
                name=name,
                labels=labels,
                host_config=self._api.create_host_config(
                    network_mode=name,
                    log_config=LogConfig(type=LogConfig.types.NONE),
                    read_only=True,
                    cap_drop=["ALL"],
                    security_opt=["no-new-privileges"],
                    mem_limit=_HOLDER_MEMORY_BYTES,
                    memswap_limit=_HOLDER_MEMORY_BYTES,
                    pids_limit=_HOLDER_PIDS,
                ),
            )
            self._api.start(holder["Id"])
        except BaseException:
            self._remove(name)
            raise
        return _Sandbox(name, str(holder["Id"]))

    def _refill(self, agent_name: str) -> None:
        # One-shot: tops the pool up and ends; the next release starts another.
        try:
            while len(self._spare.get(agent_name) or []) < NETWORK_POOL_SIZE:
                made = self._create(agent_name)
                with self._lock:
                    self._spare.setdefault(agent_name, []).append(made)
        except (APIError, OSError) as exc:
            # The next attempt makes its own network then.
            log.warning("could not make a spare network for %r: %s", agent_name, exc)
        finally:
            with self._lock:
                self._refills.pop(agent_name, None)

    def _remove(self, name: str) -> None:
        """Removes the holder called `name`, then the network (a network in use stays)."""
        try:
            with contextlib.suppress(NotFound):
                self._api.remove_container(name, force=True)
            with contextlib.suppress(NotFound):
                self._api.remove_network(name)
        except APIError as exc:
            log.warning("could not remove network %s: %s", name, exc)
