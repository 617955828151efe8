"""`conveyor exec`: a pipeline run on this machine with no coordinator, through the agent's own
attempt runner, executors, transfers and step environment (the coordinator's part, a build's
state, its logs and its artifacts, is kept in this process)."""
