"""The agent's own credential, kept in its work dir between runs (DESIGN §6.9).

The coordinator issues it at the agent's first registration and only keeps a hash; presenting
it again is how a restarted agent (after a crash, say) proves that it is the agent that holds
its name, which a live agent's name otherwise is not given to anybody else. The file is private
to the agent's user (0600) and names the agent, so that a work dir reused under another
``--name`` does not present a credential of a different agent.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from pathlib import Path
from typing import IO

LOGGER = logging.getLogger(__name__)
FILE_NAME = "agent-credential.json"
LOCK_NAME = "agent.lock"


class WorkDirBusyError(Exception):
    """Another agent process uses this work dir (and so would present the same credential)."""


def lock_work_dir(work_dir: Path) -> IO[bytes]:
    """Holds the work dir for this process until the returned file is closed (or it dies).

    Two processes on one work dir would be one agent twice: the second would present the
    first's credential and cut it off.
    """
    work_dir.mkdir(parents=True, exist_ok=True)
    handle = (work_dir / LOCK_NAME).open("ab")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise WorkDirBusyError(
            f"work dir {work_dir} is in use by another agent process; "
            "give each agent its own --work-dir"
        ) from None
    return handle


class CredentialFile:
    def __init__(self, work_dir: Path, name: str) -> None:
        self.path = work_dir / FILE_NAME
        self._name = name

    def load(self) -> str:
        """The credential kept for this agent's name; "" when there is none (a first run)."""
        try:
            document = json.loads(self.path.read_text())
        except FileNotFoundError:
            return ""
        except (OSError, ValueError) as error:
            LOGGER.warning("ignoring unreadable agent credential %s: %s", self.path, error)
            return ""
        if not isinstance(document, dict) or document.get("name") != self._name:
            return ""
        credential = document.get("credential")
        return credential if isinstance(credential, str) else ""

    def save(self, credential: str) -> None:
        """Keeps `credential` atomically, readable and writable only by this user."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(f".{FILE_NAME}.tmp")
        temporary.unlink(missing_ok=True)
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            json.dump({"name": self._name, "credential": credential}, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.path)
        LOGGER.info("agent credential kept in %s", self.path)
