"""The coordinator's durable state: SQLAlchemy lives here and nowhere else in the coordinator."""

from coordinator.store.builds import Store

__all__ = ["Store"]
