"""Coordinator settings: one frozen dataclass, defaults with their units and reasons."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_LISTEN = "127.0.0.1:7420"
# The HTTP listener (REST API, metrics, health); `--http off` has none.
DEFAULT_HTTP_LISTEN = "127.0.0.1:7421"
HTTP_OFF = "off"
# A request body the HTTP API reads at most: a pipeline with its env, as large as SubmitBuild
# takes over gRPC (16 MiB, the message limit); a larger one is refused before it is read whole.
MAX_HTTP_BODY_BYTES = 16 * 1024 * 1024
# An HTTP connection that sends nothing for this long is closed (idle keep-alive sockets).
HTTP_KEEPALIVE_S = 30.0
# How long the web view's sign-in cookie lasts; the token itself is checked on every call.
WEB_SESSION_MAX_AGE_S = 7 * 24 * 3600
# The sign-in form holds one token (and the page to go back to): more is not read.
MAX_SIGNIN_FORM_BYTES = 16 * 1024
DEFAULT_DATA_DIR = Path.home() / ".conveyor" / "server"

# An agent renews every RENEW_INTERVAL; three missed renewals in a row lose the lease.
LEASE_TTL_S = 30.0
RENEW_INTERVAL_S = 10.0
# How often expired leases are looked for; adds at most this much to TTL before a re-queue.
REAPER_PERIOD_S = 2.0
# A pass of a long-lived loop (the reaper) that fails is logged and tried again after a backoff:
# this long at first, doubling on each failure in a row up to the max, with up to this jitter
# fraction added (so coordinators sharing a struggling database do not retry in step).
LOOP_RETRY_INITIAL_S = 0.5
LOOP_RETRY_MAX_S = 10.0
LOOP_RETRY_JITTER = 0.2
# A loop that dies anyway (a bug outside its pass) is restarted after LOOP_RETRY_INITIAL_S; more
# than this many deaths within the window and the server stops rather than run on without it.
LOOP_RESTARTS_MAX = 5
LOOP_RESTART_WINDOW_S = 60.0
# A long-poll returns empty after this long, so dead connections are noticed and freed.
POLL_TIMEOUT_S = 30.0
# An agent unheard of for this long is shown offline (and matches no waiting job's reason).
AGENT_OFFLINE_AFTER_S = 45.0
# WatchBuild re-reads the build at least this often even without a change notification.
WATCH_REFRESH_S = 5.0
# Watchers of a build share one snapshot of it, read again on each change and, without one, once
# it is this old (a change made by another coordinator sharing the database is not notified).
WATCH_SNAPSHOT_MAX_AGE_S = WATCH_REFRESH_S / 2
# Followers of a build's logs woken for new bytes wait this long per follower (at most the max)
# before the next wake: a thousand followers of a step printing without pause get about two
# messages a second each instead of one per chunk the agent sends; one follower, no wait. A
# spacing under the min is none (a timer would cost more than it saves).
FOLLOWER_WAKE_SPACING_S = 0.0005
FOLLOWERS_WAKE_SPACING_MAX_S = 0.5
FOLLOWERS_WAKE_SPACING_MIN_S = 0.005
# Watch and follow streams (WatchBuild, ReadLogs) one client may hold open at once; the next
# is answered RESOURCE_EXHAUSTED. A client is its network address without the port (the client
# token is shared, so there is no finer identity): one host's dashboards and terminals together.
MAX_STREAMS_PER_CLIENT = 1024
# Largest log chunk sent to a client in one message.
LOG_READ_CHUNK_BYTES = 256 * 1024
# Encoded stream messages kept for the other followers of the same chunk or snapshot: at most
# this many times LOG_READ_CHUNK_BYTES of memory (and far less: most chunks are small).
SHARED_ENCODINGS_KEPT = 64
# Most bytes of a log one HTTP range request answers (a client reads a huge log slice by slice).
LOG_RANGE_MAX_BYTES = 4 * 1024 * 1024
# Queued jobs examined per claim, oldest first; a label mismatch moves on to the next.
CLAIM_SCAN_LIMIT = 500
# ... read this many at a time, so the common case (the first queued job matches) reads a few rows.
CLAIM_PAGE_ROWS = 16
# A claim whose candidates another coordinator took first looks again, at most this many times
# in all: a bound on the work one claim does when many coordinators share a database.
CLAIM_ROUNDS = 3
# Threads writing log files (fsync each append before acknowledging it).
LOG_IO_THREADS = 4
# A pipeline up to this size is parsed on the event loop (about 0.1 ms for a small one, less
# than handing it to a file thread and back costs); a larger one, up to 1 MiB, on a file thread.
INLINE_PIPELINE_MAX_BYTES = 4 * 1024
# A job as handed to an agent (steps with env merged) must fit well inside one gRPC message.
MAX_JOB_SPEC_BYTES = 4 * 1024 * 1024
# An attempt lost before any step started is re-queued for free this many times, then the job
# fails: something (too large? an agent crashing on it?) keeps it from ever being delivered.
MAX_UNSTARTED_REQUEUES = 3
# Env overrides given at submission (`run --env K=V`), checked on the server as the CLI checks
# them: names like MY_VAR, no NUL in values, and these bounds (a count, then bytes in UTF-8).
MAX_ENV_OVERRIDES = 200
MAX_ENV_NAME_BYTES = 256
MAX_ENV_VALUE_BYTES = 64 * 1024
MAX_COMMENT_CHARS = 2000
"""Length of an approval's or a rejection's `--comment`: a sentence or two for the record."""
MAX_REF_NAME_BYTES = 255
"""Length of a build's branch or tag name, in UTF-8 bytes (git's own limit on most systems)."""
MAX_ENV_OVERRIDES_BYTES = 256 * 1024  # all names and values together
# An attempt's result as an agent reports it: a reason code and a message, kept per attempt.
MAX_REASON_CHARS = 64
MAX_MESSAGE_CHARS = 64 * 1024
# An error's details as a status carries them (a header: UTF-8 outside ASCII is sent
# percent-encoded, up to 3 bytes a byte, and clients refuse headers past 8 KiB in all).
MAX_STATUS_DETAILS_BYTES = 2 * 1024
# `CollectGarbage`: ages from 0 up to a century (seconds); a negative age would be a cutoff in
# the future, dropping every build's artifacts.
MAX_GC_AGE_S = 100 * 365 * 86400
# Queued label sets /metrics reports one by one (the largest); a farm has a handful, and a
# bound keeps a runaway of distinct label sets from flooding the scrape.
METRICS_MAX_LABEL_SETS = 100
# /metrics reads the farm's counts from the store at most this often; scrapes in between get
# the last counts (many scrapers cost the store one read per period).
METRICS_COUNTS_MAX_AGE_S = 2.0
# Largest row id (builds, deployments) a request may name: ids are INTEGER columns on
# PostgreSQL, which refuses a larger number with an error of its own.
MAX_ROW_ID = 2**31 - 1
# Builds returned by ListBuilds when the client sets no limit.
DEFAULT_LIST_LIMIT = 20
# ... and the most it returns whatever the client asks for.
MAX_LIST_LIMIT = 1000
# Deployments of one environment the delivery figures read (its whole history, in practice).
MAX_FIGURES_DEPLOYMENTS = 100_000
# The window of the delivery figures over HTTP when the caller names none (as `dora --since`).
DEFAULT_FIGURES_WINDOW_S = 30 * 86400.0
# An environment's name in ListDeployments: as long as the pipeline format allows (characters).
MAX_ENVIRONMENT_CHARS = 64
# Largest byte offset into a step's log a request may name (2**53 - 1: exact as a JSON number);
# no log comes near it, so a larger one is a client's mistake, answered OUT_OF_RANGE.
MAX_LOG_OFFSET_BYTES = 2**53 - 1
# Largest count of log bytes an agent may report as lost for one step (same bound, same reason).
MAX_LOST_LOG_BYTES = MAX_LOG_OFFSET_BYTES
# Bytes per message when streaming a blob out; the agent and CLI send the same size in.
BLOB_CHUNK_BYTES = 1024 * 1024
# Largest single artifact file, all artifacts of one build, and one source snapshot (bytes).
MAX_ARTIFACT_BYTES = 4 * 1024**3
MAX_BUILD_ARTIFACT_BYTES = 20 * 1024**3
MAX_SOURCE_BYTES = 2 * 1024**3
# Most artifact files one build may keep; each is a row and a file.
MAX_BUILD_ARTIFACTS = 10_000
# What an agent may say about itself at registration (characters unless said otherwise). Its
# name: letters, digits, '.', '_' and '-' (host names fit), starting with a letter or digit.
# Labels: at most this many; keys of letters, digits, '.', '_', '/' and '-'; values without
# control characters, ',' or '=' (which --labels could not express). Every agent is in every
# ListAgents answer, so these bound that message too (1000 agents stay far below 16 MiB).
MAX_AGENT_NAME_CHARS = 128
MAX_AGENT_LABELS = 32
MAX_LABEL_KEY_CHARS = 64
MAX_LABEL_VALUE_CHARS = 256
# Attempts an agent runs at once (its capacity, and so the leases it may re-present).
MAX_AGENT_CAPACITY = 256
# An agent credential as issued is 43 characters; anything much longer is not one.
MAX_AGENT_CREDENTIAL_CHARS = 256
# Characters in an agent's own account of why it takes no work (PollWork `held`).
MAX_AGENT_HELD_CHARS = 512
# `--tls auto` keeps its CA and server certificate in DATA_DIR/tls. The CA lasts ten years (every
# client trusts it: replacing it means copying it again); the server certificate a year, and
# a start within 30 days of its end makes a new one from the same CA.
TLS_DIR = "tls"
TLS_CA_VALIDITY_DAYS = 3650
TLS_SERVER_VALIDITY_DAYS = 365
TLS_RENEW_BEFORE_DAYS = 30

# Named client tokens (`conveyor token create`): a name like an agent's, this long at most.
MAX_TOKEN_NAME_CHARS = 64
# Random bytes in a token's secret (URL-safe base64 on the wire, about 43 characters).
TOKEN_SECRET_BYTES = 32
# A presented token longer than this is not one of ours: refused before it is hashed.
MAX_PRESENTED_TOKEN_CHARS = 512
# A token's "last used" time is written at most this often (seconds): a call only reads.
TOKEN_TOUCH_INTERVAL_S = 60.0
# `conveyor audit`: events returned when the client sets no limit, and the most it returns.
DEFAULT_AUDIT_LIMIT = 100
MAX_AUDIT_LIMIT = 10_000
# An audit event's detail (a comment, a job name) is kept up to this many characters.
MAX_AUDIT_DETAIL_CHARS = 2000
# A secret's value, in UTF-8 bytes: a token or a key file fits; a value shorter than the minimum
# is refused, because masking it would mask ordinary words in every log.
MAX_SECRET_VALUE_BYTES = 64 * 1024
MIN_SECRET_VALUE_BYTES = 4
# The key that encrypts secrets at rest: a file in the data dir (made on first use, mode 0600)
# unless CONVEYOR_SECRET_KEY gives it (32 bytes, URL-safe base64).
SECRET_KEY_FILE = "secret.key"
SECRET_KEY_ENV = "CONVEYOR_SECRET_KEY"

# Outgoing notifications (`conveyor notify`). A failed try is tried again after a backoff: this
# long at first, doubling each time up to `--notify-backoff-max` (default 5 min), each wait cut
# by up to this jitter fraction (targets failing together do not all retry in step). After this
# many tries in all an event is given up and shown as failed: at the default maximum they span
# five to six hours (9 tries to reach 5 min, then 5 min apart less jitter): a long outage.
NOTIFY_BACKOFF_INITIAL_S = 1.0
NOTIFY_BACKOFF_MAX_S = 300.0
NOTIFY_BACKOFF_JITTER = 0.2
NOTIFY_MAX_TRIES = 80
# How often the sender looks for events due (seconds): the most a new event waits to leave.
NOTIFY_POLL_S = 0.5
# One try: connecting, then the whole request and response (a receiver that hangs is a failure).
NOTIFY_CONNECT_TIMEOUT_S = 5.0
NOTIFY_REQUEST_TIMEOUT_S = 15.0
# Targets sent to at once; each target's events go one at a time, in order.
NOTIFY_CONCURRENCY = 8
# A sender claims an event for this long before trying it (longer than a try can take), so
# coordinators sharing a database never send it side by side; one that dies holding a claim
# leaves the event to the others once it runs out (one that stops releases its claims).
NOTIFY_CLAIM_S = 60.0
# Delivered and given-up events (with their tries) are kept this long after their last try, then
# deleted: otherwise the outbox grows by every build's events for ever. `notify list` counts
# what is kept. Pending events stay however old they are.
NOTIFY_RETENTION_S = 7 * 86400.0
# How often events past their retention are looked for (seconds), and the most one transaction
# deletes (a backlog, as on the first start after an upgrade, goes in several).
NOTIFY_PRUNE_PERIOD_S = 3600.0
NOTIFY_PRUNE_BATCH = 1000
# What a try records of a failure: the error or the response's first characters.
MAX_NOTIFY_ERROR_CHARS = 300
# A target's URL, and the token or secret it is given (characters).
MAX_NOTIFY_URL_CHARS = 2000
MAX_NOTIFY_SECRET_CHARS = 4096
# Watched repositories (`conveyor repo add`). A name goes into the webhook's URL path: letters,
# digits, '.', '_' and '-', starting with a letter or digit, this long at most.
MAX_REPO_NAME_CHARS = 64
MAX_REPO_URL_CHARS = 2048
DEFAULT_REPO_PIPELINE = ".conveyor.yml"
MAX_REPO_PIPELINE_PATH_CHARS = 1024
# How often a repository is polled (seconds): the default, and the bounds `--poll` accepts (a
# webhook makes polling a fallback, so a slow poll is fine; under a second would hammer a forge).
DEFAULT_REPO_POLL_S = 60.0
MIN_REPO_POLL_S = 1.0
MAX_REPO_POLL_S = 7 * 86400.0
# Checks (`git ls-remote` and what follows) running at once, whatever the number of repositories.
REPO_CHECKS_AT_ONCE = 4
# The watcher looks for due repositories this often (seconds; one small indexed query); a
# webhook wakes it at once.
REPO_WATCH_TICK_S = 0.25
# One git command (ls-remote, fetch, show) may take this long (seconds) before it is killed.
GIT_TIMEOUT_S = 120.0
# A repository whose check fails is tried again after its poll interval doubled per failure in a
# row, up to this (seconds); `repo list` shows the error and the next check.
REPO_BACKOFF_MAX_S = 3600.0
# A failed check's error as `repo list` shows it (characters).
MAX_REPO_ERROR_CHARS = 1000
# Heads (branches and tags) one repository may have recorded; more is an error shown in `repo
# list` (a bound on the row and on the builds one check may start).
MAX_REPO_HEADS = 10_000
# New heads one check builds at most; the rest wait for the next check.
MAX_BUILDS_PER_CHECK = 50
# The commit message a trigger keeps: its first line, this long at most (characters).
MAX_TRIGGER_MESSAGE_CHARS = 200
MAX_TRIGGER_AUTHOR_CHARS = 200
# A pipeline file read from a commit larger than this gives a failed build saying so.
MAX_REPO_PIPELINE_BYTES = 1024 * 1024
# The bare clones the coordinator reads pipeline files from, under the data dir.
GIT_CACHE_DIR = "git"
# A webhook's body (a push of many commits is a few hundred KiB); more is answered 413.
MAX_WEBHOOK_BODY_BYTES = 4 * 1024 * 1024
# A webhook secret, in UTF-8 bytes.
MIN_WEBHOOK_SECRET_BYTES = 8
MAX_WEBHOOK_SECRET_BYTES = 256


@dataclass(frozen=True)
class CoordinatorConfig:
    data_dir: Path
    agent_token: str
    client_token: str
    listen: str = DEFAULT_LISTEN
    # None: no HTTP listener (in-process tests; the command line's default is DEFAULT_HTTP_LISTEN).
    http_listen: str | None = None
    db_url: str | None = None
    lease_ttl_s: float = LEASE_TTL_S
    renew_interval_s: float = RENEW_INTERVAL_S
    reaper_period_s: float = REAPER_PERIOD_S
    poll_timeout_s: float = POLL_TIMEOUT_S
    agent_offline_after_s: float = AGENT_OFFLINE_AFTER_S
    max_artifact_bytes: int = MAX_ARTIFACT_BYTES
    max_build_artifact_bytes: int = MAX_BUILD_ARTIFACT_BYTES
    max_source_bytes: int = MAX_SOURCE_BYTES
    # TLS on the listeners: the operator's certificate and key, or one made in the data dir
    # (`tls_auto`); neither means plaintext.
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_auto: bool = False
    # From CONVEYOR_SECRET_KEY; None: the key file in the data dir. Never shown.
    secret_key: str | None = field(default=None, repr=False)
    # Outgoing notifications' retry waits (seconds): the first, and the most one grows to.
    notify_backoff_initial_s: float = NOTIFY_BACKOFF_INITIAL_S
    notify_backoff_max_s: float = NOTIFY_BACKOFF_MAX_S
    notify_max_tries: int = NOTIFY_MAX_TRIES
    # How long finished events stay in the outbox (seconds).
    notify_retention_s: float = NOTIFY_RETENTION_S

    @property
    def database_url(self) -> str:
        return self.db_url or f"sqlite:///{self.data_dir / 'conveyor.db'}"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    @property
    def git_cache_dir(self) -> Path:
        return self.data_dir / GIT_CACHE_DIR

    @property
    def secret_key_path(self) -> Path:
        return self.data_dir / SECRET_KEY_FILE


# Requests one agent's session stream may have in hand at once; past it the coordinator stops
# reading that stream until one is answered (an agent has one request in flight per thread, so
# a well-behaved one never comes near it).
AGENT_STREAM_MAX_IN_FLIGHT = 64
