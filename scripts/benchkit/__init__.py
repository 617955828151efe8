"""Conveyor's benchmark suite, run by `scripts/bench` (see the README's Benchmark section)."""
