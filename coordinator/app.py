"""The composition root: concrete store and files, handed to the domain. No transport here.

The gRPC server (`coordinator.server`) calls this, and so would an HTTP server beside it: both
edges then share the one `Coordinator`.
"""

from __future__ import annotations

from coordinator.config import GIT_TIMEOUT_S, CoordinatorConfig
from coordinator.domain.coordinator import Coordinator
from coordinator.domain.metrics import Metrics
from coordinator.domain.notify_records import EventRenderer
from coordinator.domain.ports import HttpPoster
from coordinator.storage.blobs import BlobStore
from coordinator.storage.git import GitCache
from coordinator.storage.logs import LogStore
from coordinator.storage.secretbox import SecretBox
from coordinator.store import Store
from coordinator.store.engine import check_sqlite_file


def build_coordinator(
    config: CoordinatorConfig,
    metrics: Metrics | None = None,
    *,
    events: EventRenderer | None = None,
    poster: HttpPoster | None = None,
) -> Coordinator:
    """A coordinator over the configured database and the data dir's log and blob files; the
    server hands in how notification bodies are rendered (`events`) and sent (`poster`)."""
    config.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    # Here, not in Store: a coordinator starting finds a 0-byte file only if something lost its
    # database, while Stores opened together on a new file see it 0 bytes while it is being made.
    check_sqlite_file(config.database_url)
    return Coordinator(
        config,
        store=Store(config.database_url, events),
        logs=LogStore(config.log_dir),
        blobs=BlobStore(config.blob_dir),
        sealer=SecretBox(config.secret_key_path, config.secret_key),
        metrics=metrics,
        poster=poster,
        git=GitCache(config.git_cache_dir, GIT_TIMEOUT_S),
    )
