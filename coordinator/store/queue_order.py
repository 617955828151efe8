"""Queue positions drawn from the database, so every coordinator on one database agrees on order.

PostgreSQL draws from a real sequence (no row lock, so concurrent claims and submissions never
wait on each other); SQLite, whose writers are serialised anyway, increments a counter row inside
the caller's transaction. Either way a later queueing gets a larger number than every earlier one,
whatever the clocks of the machines say.
"""

from __future__ import annotations

from sqlalchemy import Sequence, select, update
from sqlalchemy.orm import Session
from sqlmodel import Field, SQLModel

from coordinator.store.coltypes import BigInt
from coordinator.store.prepared import Prepared

# Created by migration 0002 on PostgreSQL only.
JOB_QUEUE_SEQUENCE = Sequence("job_queue_seq", metadata=SQLModel.metadata)
COUNTER_NAME = "jobs"


class QueueCounterRow(SQLModel, table=True):
    """SQLite only (migration 0002): one row per counter, holding the last number handed out."""

    __tablename__ = "queue_counter"
    # Read by schema.include_object: compared with the database on these dialects only.
    __table_args__ = {"info": {"dialects": ("sqlite",)}}

    name: str = Field(primary_key=True)
    value: int = Field(sa_type=BigInt)


def next_queue_seq(session: Session) -> int:
    """The next queue position, taken inside `session`'s transaction."""
    if session.get_bind().dialect.name == "postgresql":
        return int(_NEXT_IN_SEQUENCE.run(session).scalar_one())
    return int(_BUMP_COUNTER.run(session).scalar_one())


_COUNTER = QueueCounterRow.__table__  # type: ignore[attr-defined]
# Built once: it runs for every job queued.
_BUMP_COUNTER = Prepared(
    update(_COUNTER)
    .where(_COUNTER.c.name == COUNTER_NAME)
    .values(value=_COUNTER.c.value + 1)
    .returning(_COUNTER.c.value)
)
_NEXT_IN_SEQUENCE = Prepared(select(JOB_QUEUE_SEQUENCE.next_value()))
