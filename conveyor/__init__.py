"""Conveyor: what the coordinator, the agent and the CLI share."""

__version__ = "0.1.0"

# Bumped on every incompatible change to proto/conveyor/v1; checked at agent registration.
PROTOCOL_VERSION = 1
