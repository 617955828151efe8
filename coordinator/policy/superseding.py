"""Superseded builds (issue 13): an `interruptible: true` job gives way to a newer push.

Such a job ends `canceled` with reason `superseded` (`Reason.SUPERSEDED`, the code
`concurrency: newest_first` also skips waiting jobs with) and these words.
"""

from __future__ import annotations


def superseded_message(branch: str, newer_build_id: int) -> str:
    """The words `show` gives for a job canceled because `newer_build_id` was pushed after it."""
    return f"canceled: a newer push to {branch} superseded this build (build {newer_build_id})"
