"""The coordinator: keeps builds, schedules their jobs on agents.

`edge` (gRPC) translates and calls `domain`, which decides with `policy` and keeps its state
through ports implemented by `store` (SQL) and `storage` (files); `app` wires them together.
"""
