"""Status details stay within what a gRPC header carries, cut at whole lines."""

from __future__ import annotations

from coordinator.config import MAX_STATUS_DETAILS_BYTES
from coordinator.edge.errors import details


def test_a_short_message_is_kept_whole() -> None:
    assert details("a\nb") == "a\nb"


def test_many_lines_are_cut_at_a_line_and_say_how_many_are_left_out() -> None:
    message = "\n".join(f"problem {i}: {'é' * 40}" for i in range(200))
    cut = details(message)
    assert len(cut.encode()) <= MAX_STATUS_DETAILS_BYTES + 100
    lines = cut.splitlines()
    assert lines[0] == message.splitlines()[0]
    assert all(line in message.splitlines() for line in lines[:-1])
    assert lines[-1] == f"… and {200 - len(lines) + 1} more lines not shown"


def test_one_long_line_is_cut_at_a_character_boundary() -> None:
    cut = details("é" * 5000)
    assert cut.startswith("é" * 100)
    assert cut.endswith("… (cut: 10000 bytes in all)")
    assert len(cut.encode()) <= MAX_STATUS_DETAILS_BYTES + 100
