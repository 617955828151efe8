"""The agent: takes work from the coordinator and runs its steps in containers."""
