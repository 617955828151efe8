"""The coordinator's durable state: SQLAlchemy lives here and nowhere else in the coordinator.

`Store` is a composition of one component per domain; each component's public methods are one
transaction each and return plain records (`coordinator.domain.records`).
"""

from __future__ import annotations

from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from coordinator.domain.notify_records import EventRenderer
from coordinator.store import schema
from coordinator.store.agents import AgentStore
from coordinator.store.approvals import ApprovalStore
from coordinator.store.artifacts import ArtifactStore
from coordinator.store.attempts import AttemptStore
from coordinator.store.audit import AuditStore
from coordinator.store.builds import BuildStore
from coordinator.store.deployments import DeploymentStore
from coordinator.store.engine import corrupt_file_error, make_engine
from coordinator.store.notifications import NotificationStore
from coordinator.store.repos import RepoStore
from coordinator.store.rollbacks import RollbackStore
from coordinator.store.secrets import SecretStore
from coordinator.store.stats import StatsStore
from coordinator.store.tokens import TokenStore


class Store:
    def __init__(self, url: str, events: EventRenderer | None = None) -> None:
        """`events` renders the notification bodies the transactions write (None: a store
        that writes none, such as one a test opens)."""
        self._engine = make_engine(url)
        try:
            schema.migrate(self._engine)
        except DBAPIError as error:
            corrupt = corrupt_file_error(url, error)
            if corrupt is None:
                raise
            self._engine.dispose()
            raise corrupt from error
        self.builds = BuildStore(self._engine, events)
        self.agents = AgentStore(self._engine, events)
        self.attempts = AttemptStore(self._engine, events)
        self.artifacts = ArtifactStore(self._engine)
        self.approvals = ApprovalStore(self._engine, events)
        self.deployments = DeploymentStore(self._engine, events)
        self.rollbacks = RollbackStore(self._engine, events)
        self.tokens = TokenStore(self._engine, events)
        self.audit = AuditStore(self._engine, events)
        self.secrets = SecretStore(self._engine, events)
        self.stats = StatsStore(self._engine, events)
        self.notifications = NotificationStore(self._engine, events)
        self.repos = RepoStore(self._engine, events)

    @property
    def engine(self) -> Engine:
        return self._engine

    def close(self) -> None:
        self._engine.dispose()


__all__ = ["Store"]
