"""`--logs`: which lines of a followed build's steps are shown, held or folded, and what a line
redrawn with carriage returns shows."""

from __future__ import annotations

from conveyor.cli.bounds import AUTO_ALL_MAX_RUNNING_JOBS
from conveyor.cli.fold import HELD_LINES_PER_STEP, StepLogs

Shown = list[tuple[str, str, list[bytes], str]]


def _logs(mode: str, carriage: bool = False) -> tuple[StepLogs, Shown]:
    shown: Shown = []
    return StepLogs(mode, lambda *line: shown.append(line), carriage), shown


def _lines(shown: Shown) -> list[bytes]:
    return [line for _, _, lines, _ in shown for line in lines]


def test_all_shows_lines_as_they_complete_and_the_rest_at_the_end() -> None:
    logs, shown = _logs("all")
    logs.chunk(("a", 1, 0), "s", b"one\ntw", running_jobs=1)
    assert _lines(shown) == [b"one"]
    logs.chunk(("a", 1, 0), "s", b"o\nthree", running_jobs=1)
    logs.ended(("a", 1, 0), "s", failed=False)
    assert _lines(shown) == [b"one", b"two", b"three"]


def test_failed_folds_a_succeeded_step_and_shows_a_failed_one_capped() -> None:
    logs, shown = _logs("failed")
    logs.chunk(("ok", 1, 0), "s", b"x\n" * 1234, running_jobs=1)
    logs.ended(("ok", 1, 0), "s", failed=False)
    assert shown == [("ok", "s", [], "… 1234 lines")]
    shown.clear()
    total = HELD_LINES_PER_STEP + 50
    logs.chunk(("bad", 1, 0), "s", b"".join(b"%d\n" % i for i in range(total)), running_jobs=1)
    assert shown == []
    logs.ended(("bad", 1, 0), "s", failed=True)
    assert shown[0] == ("bad", "s", [], "… 50 earlier lines not kept")
    assert _lines(shown) == [b"%d" % i for i in range(50, total)]


def test_none_shows_nothing_and_auto_holds_past_the_limit() -> None:
    logs, shown = _logs("none")
    logs.chunk(("a", 1, 0), "s", b"x\n", running_jobs=1)
    logs.ended(("a", 1, 0), "s", failed=True)
    assert shown == []
    logs, shown = _logs("auto")
    logs.chunk(("few", 1, 0), "s", b"x\n", running_jobs=AUTO_ALL_MAX_RUNNING_JOBS)
    logs.chunk(("many", 1, 0), "s", b"y\n", running_jobs=AUTO_ALL_MAX_RUNNING_JOBS + 1)
    assert _lines(shown) == [b"x"]
    logs.close()  # the build ended without saying how `many` went: what it holds is shown
    assert _lines(shown) == [b"x", b"y"]


def test_carriage_returns_keep_the_last_state_of_a_line() -> None:
    logs, shown = _logs("all", carriage=True)
    logs.chunk(("a", 1, 0), "s", b"10%\r50%\r100%\r\nwindows\r\nplain\n", running_jobs=1)
    logs.chunk(("a", 1, 0), "s", b"tail 1\rtail 2", running_jobs=1)
    logs.ended(("a", 1, 0), "s", failed=False)
    assert _lines(shown) == [b"100%", b"windows", b"plain", b"tail 2"]
