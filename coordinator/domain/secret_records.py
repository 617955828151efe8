"""Plain records about secrets: what may be shown of one (never its value)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SecretRecord:
    name: str
    scope: str
    """"" for every job that names it, else the environment whose deployment jobs get it."""
    updated_at_ms: int
    updated_by: str
