"""The coordinator's domain: one object per concern, wired together; every edge calls these.

Everything here runs on the event loop; blocking work goes through `Runtime` (the store thread,
the file threads). The state the parts share in memory (leases, agent sessions, parked polls,
build versions) is made here and handed to the parts that need it, so no part reaches into
another. The store and the files come in as ports (`coordinator.domain.ports`), built by the
composition root (`coordinator.app`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from coordinator.config import CoordinatorConfig
from coordinator.domain.access import Access
from coordinator.domain.agents import Agents
from coordinator.domain.artifacts import Artifacts
from coordinator.domain.attempts import Attempts, Claims
from coordinator.domain.audit import AuditTrail
from coordinator.domain.builds import Builds
from coordinator.domain.deployments import Deployments
from coordinator.domain.dispatch import Dispatcher
from coordinator.domain.follow import Follow
from coordinator.domain.gates import Gates
from coordinator.domain.leases import LeaseTable
from coordinator.domain.loops import every, supervise
from coordinator.domain.metrics import Metrics, NoMetrics, Stats
from coordinator.domain.notify import BuildNotifier
from coordinator.domain.notify_prune import OutboxPruner
from coordinator.domain.notify_sender import NotifySender
from coordinator.domain.notify_targets import NotifyTargets
from coordinator.domain.ports import (
    AgentStore,
    ArtifactIndex,
    AttemptStore,
    BlobStorage,
    BuildStore,
    HttpPoster,
    LogStorage,
    SecretSealer,
    SecretStore,
    StateStore,
)
from coordinator.domain.registry import AgentRegistry
from coordinator.domain.repo_ports import GitRemote, NoGit
from coordinator.domain.repos import Repos
from coordinator.domain.rollbacks import Rollbacks
from coordinator.domain.runtime import Runtime
from coordinator.domain.secrets import Secrets
from coordinator.domain.watcher import Watcher
from coordinator.domain.webhooks import Webhooks

LOGGER = logging.getLogger(__name__)


class Coordinator:
    """`access` checks callers and keeps client tokens; `agents`, `attempts`, `builds`,
    `artifacts`, `follow`, `deployments`, `rollbacks`, `secrets`, `notify_targets`, `repos`,
    `watcher`, `webhooks`, `audit` and `stats` are the API the edges call; `metrics` hears what
    happens."""

    def __init__(
        self,
        config: CoordinatorConfig,
        *,
        store: StateStore,
        logs: LogStorage,
        blobs: BlobStorage,
        sealer: SecretSealer,
        metrics: Metrics | None = None,
        poster: HttpPoster | None = None,
        git: GitRemote | None = None,
    ) -> None:
        """Without a `poster` no notification is sent (their events wait in the outbox)."""
        self.config = config
        self._store = store
        self.metrics = metrics or NoMetrics()
        self._shared_state(store, sealer)
        self._build_api(store, logs, blobs, sealer)
        self._delivery_api(store, logs)
        self._notifications(store, sealer, poster)
        self._watch_repositories(store, git or NoGit(), sealer)

    def _shared_state(self, store: StateStore, sealer: SecretSealer) -> None:
        # Shared in memory by the parts of the API (each is handed only what it uses).
        self.runtime = Runtime()
        self.notifier = BuildNotifier()
        self.leases = LeaseTable(self.config.lease_ttl_s)
        self.registry = AgentRegistry(self.config.agent_offline_after_s)
        self.dispatcher = Dispatcher(
            Claims(self.runtime, store.attempts, self.leases, self.notifier, sealer, self.metrics)
        )

    def _build_api(
        self, store: StateStore, logs: LogStorage, blobs: BlobStorage, sealer: SecretSealer
    ) -> None:
        self.access = Access(
            agent_token=self.config.agent_token,
            client_token=self.config.client_token,
            runtime=self.runtime,
            tokens=store.tokens,
        )
        self.audit = AuditTrail(runtime=self.runtime, store=store.audit)
        self.attempts = self._attempts(store.attempts, logs)
        self.agents = self._agents(store.agents)
        self.builds = self._builds(store.builds, store.artifacts, store.secrets)
        self.secrets = Secrets(runtime=self.runtime, store=store.secrets, sealer=sealer)
        self.artifacts = Artifacts(
            config=self.config,
            runtime=self.runtime,
            index=store.artifacts,
            blobs=blobs,
            leases=self.leases,
        )

    def _delivery_api(self, store: StateStore, logs: LogStorage) -> None:
        self.gates = Gates(
            runtime=self.runtime,
            store=store.approvals,
            notifier=self.notifier,
            dispatcher=self.dispatcher,
        )
        self.follow = Follow(
            runtime=self.runtime, logs=logs, notifier=self.notifier, builds=self.builds
        )
        self.deployments = Deployments(runtime=self.runtime, store=store.deployments)
        self.rollbacks = Rollbacks(
            runtime=self.runtime, store=store.rollbacks, dispatcher=self.dispatcher
        )
        self.stats = Stats(runtime=self.runtime, store=store.stats)

    def _notifications(
        self, store: StateStore, sealer: SecretSealer, poster: HttpPoster | None
    ) -> None:
        self.notify_targets = NotifyTargets(
            runtime=self.runtime, store=store.notifications, sealer=sealer
        )
        self._poster = poster
        self._sender = None if poster is None else self._notify_sender(sealer, poster)
        # Pruned with or without a poster: coordinators sharing a database send for each other.
        self._pruner = OutboxPruner(
            runtime=self.runtime,
            store=store.notifications,
            retention_s=self.config.notify_retention_s,
        )

    def _watch_repositories(self, store: StateStore, git: GitRemote, sealer: SecretSealer) -> None:
        self.watcher = Watcher(
            runtime=self.runtime,
            store=store.repos,
            git=git,
            secrets=store.secrets,
            dispatcher=self.dispatcher,
            attempts=self.attempts,
            notifier=self.notifier,
        )
        self.repos = Repos(
            runtime=self.runtime,
            store=store.repos,
            git=git,
            sealer=sealer,
            prepare=self.watcher.with_schedules,
        )
        self.webhooks = Webhooks(runtime=self.runtime, repos=self.repos, watcher=self.watcher)

    def _notify_sender(self, sealer: SecretSealer, poster: HttpPoster) -> NotifySender:
        return NotifySender(
            runtime=self.runtime,
            store=self._store.notifications,
            sealer=sealer,
            poster=poster,
            backoff_initial_s=self.config.notify_backoff_initial_s,
            backoff_max_s=self.config.notify_backoff_max_s,
            max_tries=self.config.notify_max_tries,
        )

    def _attempts(self, store: AttemptStore, logs: LogStorage) -> Attempts:
        return Attempts(
            runtime=self.runtime,
            store=store,
            logs=logs,
            leases=self.leases,
            registry=self.registry,
            dispatcher=self.dispatcher,
            notifier=self.notifier,
            metrics=self.metrics,
        )

    def _agents(self, store: AgentStore) -> Agents:
        return Agents(
            config=self.config,
            runtime=self.runtime,
            store=store,
            access=self.access,
            registry=self.registry,
            leases=self.leases,
            dispatcher=self.dispatcher,
            attempts=self.attempts,
        )

    def _builds(self, store: BuildStore, index: ArtifactIndex, secrets: SecretStore) -> Builds:
        return Builds(
            runtime=self.runtime,
            store=store,
            index=index,
            secrets=secrets,
            notifier=self.notifier,
            dispatcher=self.dispatcher,
            attempts=self.attempts,
            agents=self.agents,
        )

    async def start(self) -> None:
        """Rebuilds the in-memory state from the store: leases of running attempts, agents."""
        running = await self.attempts.load()
        known = await self.agents.load()
        LOGGER.info(
            "coordinator state loaded: %d running attempts, %d known agents", running, known
        )

    async def reap_forever(self, stop: asyncio.Event) -> None:
        """Background upkeep until `stop` is set, each loop supervised: expired leases, approval
        gates past their timeout, watched repositories, agents' last-seen times, outgoing
        notifications and the outbox's old events. A failed pass is retried; a loop that keeps
        dying raises LoopDied."""
        async with asyncio.TaskGroup() as group:
            for name, loop in self._upkeep(stop).items():
                group.create_task(supervise(name, loop, stop))

    def _upkeep(self, stop: asyncio.Event) -> dict[str, Callable[[], Awaitable[None]]]:
        """Each background loop by name, as a function that runs it until `stop`."""
        period_s = self.config.reaper_period_s
        loops: dict[str, Callable[[], Awaitable[None]]] = {}
        sender = self._sender
        if sender is not None:
            loops["notification sender"] = lambda: sender.deliver_forever(stop)
        loops["lease reaper"] = lambda: self.attempts.reap_forever(stop, period_s)
        loops["approval gate timeouts"] = lambda: self.gates.expire_forever(stop, period_s)
        loops["repository watcher"] = lambda: self.watcher.watch_forever(stop)
        loops["agent last-seen writer"] = lambda: every(
            "agent last-seen writer", period_s, self.agents.persist_last_seen, stop
        )
        loops["notification outbox pruner"] = lambda: self._pruner.prune_forever(stop)
        return loops

    async def close(self) -> None:
        if self._poster is not None:
            await self._poster.close()
        self.runtime.close()
        self._store.close()
