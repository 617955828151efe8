"""Upper bounds on a pipeline document.

A pipeline arrives over the network from anyone holding a token, so parsing must stay cheap and
bounded whatever it contains. Every bound sits far above what a real pipeline needs; hitting one
means a generated or hostile document, and the error names the bound that was crossed.
"""

from __future__ import annotations

from typing import Final

KIB: Final = 1024
MIB: Final = 1024 * KIB

MAX_TEXT_BYTES: Final = 1 * MIB
"""Size of the whole document, in UTF-8 bytes."""

MAX_JOBS: Final = 200
MAX_STEPS_PER_JOB: Final = 100

MAX_RUN_BYTES: Final = 64 * KIB
"""Size of one step's `run` script, in UTF-8 bytes."""

MAX_ENV_VARS: Final = 200
"""Variables per `env` mapping (each of pipeline, job and step has its own)."""

MAX_LABELS: Final = 50
MAX_NEEDS: Final = 50

MAX_YAML_NODES: Final = 20_000
"""YAML nodes visited while reading, aliases counted at every use (see "billion laughs")."""

MAX_DEPTH: Final = 20
"""Nesting of YAML collections; the format itself never needs more than 7."""

MAX_RETRIES: Final = 10

MAX_DURATION_S: Final = 7 * 24 * 3600.0
"""Longest accepted `timeout`: 7 days."""

MAX_LABEL_VALUE_CHARS: Final = 63

MAX_ISSUES: Final = 100
"""Problems reported before giving up: past this, more detail helps nobody and costs time."""

MAX_PROMPT_CHARS: Final = 1000
"""Length of an approval gate's `prompt`: a question shown to a person, not a document."""

MAX_CONDITION_GLOBS: Final = 50
"""Patterns in one `when` list (`branch`, `tag` or `event`)."""

MAX_GLOB_CHARS: Final = 255
"""Length of one `when` pattern; git refuses longer ref names on most file systems anyway."""
MAX_URL_CHARS: Final = 2048
"""Length of an environment's `url`."""
MAX_SECRETS_PER_JOB: Final = 50
"""Secrets one job may name (`secrets: [NAME, ...]`)."""
MAX_SECRET_NAME_CHARS: Final = 128
"""Length of a secret's name: an environment variable's name, so short."""
MAX_SCHEDULES: Final = 20
"""Entries in `on: schedule:`."""
MAX_CRON_CHARS: Final = 255
"""Length of one `cron` expression."""
