"""`conveyor server`: settings from flags and environment, then serve until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
from pathlib import Path

from conveyor.allocator import tune_for_large_buffers
from conveyor.paths import parse_size
from conveyor.tokens import TokenFileError, read_token_file
from coordinator import config as defaults
from coordinator.config import CoordinatorConfig
from coordinator.domain.loops import LoopDied
from coordinator.edge.grpc_server import ListenError
from coordinator.server import DataDirInUse, ensure_token, lock_data_dir, make_private, serve
from coordinator.storage.secretbox import SecretKeyError
from coordinator.store.engine import DatabaseFileError, DatabaseUrlError
from coordinator.store.schema import SchemaError
from coordinator.tls import TlsError

LOGGER = logging.getLogger(__name__)


def data_dir_of(args: argparse.Namespace) -> Path:
    return Path(args.data_dir).expanduser() if args.data_dir else defaults.DEFAULT_DATA_DIR


def given_token(args: argparse.Namespace, name: str, env: str) -> str | None:
    """`--NAME-token`, `--NAME-token-file` or the environment; None: the data dir's."""
    path = getattr(args, f"{name}_token_file", None)
    if path:
        return read_token_file(path, f"--{name}-token-file")
    token: str | None = getattr(args, f"{name}_token", None) or os.environ.get(env)
    return token


def config_from_args(args: argparse.Namespace) -> CoordinatorConfig:
    data_dir = data_dir_of(args)
    agent_token, agent_path = ensure_token(
        data_dir, "agent-token", given_token(args, "agent", "CONVEYOR_AGENT_TOKEN")
    )
    client_token, client_path = ensure_token(
        data_dir, "client-token", given_token(args, "client", "CONVEYOR_CLIENT_TOKEN")
    )
    for what, path in (("agent join token", agent_path), ("client token", client_path)):
        if path is not None:
            LOGGER.info("%s is in %s", what, path)
    return CoordinatorConfig(
        data_dir=data_dir,
        agent_token=agent_token,
        client_token=client_token,
        listen=args.listen,
        http_listen=_http_listen(getattr(args, "http", None)),
        db_url=args.db,
        lease_ttl_s=args.lease_ttl or defaults.LEASE_TTL_S,
        renew_interval_s=args.renew_interval or defaults.RENEW_INTERVAL_S,
        reaper_period_s=args.reaper_period or defaults.REAPER_PERIOD_S,
        poll_timeout_s=args.poll_timeout or defaults.POLL_TIMEOUT_S,
        notify_backoff_initial_s=(
            getattr(args, "notify_backoff_initial", None) or defaults.NOTIFY_BACKOFF_INITIAL_S
        ),
        notify_backoff_max_s=getattr(args, "notify_backoff_max", None)
        or defaults.NOTIFY_BACKOFF_MAX_S,
        max_artifact_bytes=_size(args, "max_artifact_size", defaults.MAX_ARTIFACT_BYTES),
        max_build_artifact_bytes=_size(
            args, "max_build_artifacts_size", defaults.MAX_BUILD_ARTIFACT_BYTES
        ),
        max_source_bytes=_size(args, "max_source_size", defaults.MAX_SOURCE_BYTES),
        tls_cert=_path(getattr(args, "tls_cert", None)),
        tls_key=_path(getattr(args, "tls_key", None)),
        tls_auto=getattr(args, "tls", "off") == "auto",
        secret_key=os.environ.get(defaults.SECRET_KEY_ENV) or None,
    )


def _path(text: str | None) -> Path | None:
    return Path(text).expanduser() if text else None


def _http_listen(text: str | None) -> str | None:
    """`--http`: None for `off` (no HTTP listener), the default address when not given."""
    if text == defaults.HTTP_OFF:
        return None
    return text or defaults.DEFAULT_HTTP_LISTEN


def _size(args: argparse.Namespace, name: str, default: int) -> int:
    text = getattr(args, name, None)
    return parse_size(text) if text else default


def run(args: argparse.Namespace) -> int:
    tune_for_large_buffers()  # before any thread starts: log chunks of megabytes pass through
    data_dir = data_dir_of(args)
    make_private(data_dir)
    # First, before anything in the data dir is read or written: one coordinator per data dir.
    try:
        lock = lock_data_dir(data_dir)
    except DataDirInUse as error:
        LOGGER.error("%s", error)
        return 2
    with lock:
        return _run(args)


def tls_usage(args: argparse.Namespace) -> str | None:
    """What is wrong with the TLS flags together, if anything."""
    cert, key = getattr(args, "tls_cert", None), getattr(args, "tls_key", None)
    if bool(cert) != bool(key):
        return "--tls-cert and --tls-key go together: give both"
    if cert and getattr(args, "tls", "off") == "auto":
        return "--tls auto makes its own certificate: give it, or --tls-cert and --tls-key"
    return None


def _run(args: argparse.Namespace) -> int:
    problem = tls_usage(args)
    if problem:
        LOGGER.error("%s", problem)
        return 2
    try:
        config = config_from_args(args)
    except TokenFileError as error:
        LOGGER.error("%s", error)
        return 2
    if config.renew_interval_s >= config.lease_ttl_s:
        LOGGER.error(
            "--renew-interval (%ss) must be shorter than --lease-ttl (%ss)",
            config.renew_interval_s,
            config.lease_ttl_s,
        )
        return 2
    try:
        asyncio.run(serve(config))
        # Everything is closed. The interpreter's last collections would walk every object
        # left (over a second of a stopping server's time, measured); frozen, they are skipped.
        gc.freeze()
    except (
        SchemaError,
        DatabaseUrlError,
        DatabaseFileError,
        ListenError,
        TlsError,
        SecretKeyError,
    ) as error:
        # The operator's to fix (a database of another version, a wrong URL): say so, no traceback.
        LOGGER.error("%s", error)
        return 2
    except LoopDied as error:
        LOGGER.error("coordinator stopped: %s", error)
        return 1
    return 0
