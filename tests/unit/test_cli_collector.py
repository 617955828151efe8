"""The garbage collector while the CLI starts: off while a command's code loads, on again once
it runs, and what loaded frozen (out of every later collection's reach, the exit's too)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor.cli import collector
from conveyor.cli.errors import EXIT_UNAVAILABLE
from tests.unit.cli_probe import probed

# Runs the CLI in a fresh interpreter; at exit, says whether the collector is on, and whether
# the pipeline model's class (loaded by `run` before it starts) is out of its generations.
PROBE = (
    "import atexit, gc, sys\n"
    "def report():\n"
    "    model = sys.modules.get('conveyor.pipeline.model')\n"
    "    tracked = {id(o) for o in gc.get_objects()}\n"
    "    frozen = model is not None and id(model.Pipeline) not in tracked\n"
    "    sys.stderr.write(f'\\nCOLLECTOR {gc.isenabled()} {frozen}')\n"
    "atexit.register(report)\n"
    "from conveyor.cli.main import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def _collector_at_exit(*argv: str) -> tuple[int, str, tuple[bool, bool]]:
    done, state = probed(PROBE, "COLLECTOR", *argv)
    enabled, frozen = state.split()
    return done.returncode, done.stderr, (enabled == "True", frozen == "True")


def test_run_collects_again_once_loaded_and_its_code_is_frozen(tmp_path: Path) -> None:
    pipeline = tmp_path / "p.yml"
    pipeline.write_text("name: p\njobs:\n  a:\n    steps: [{run: 'true'}]\n")
    # Nothing listens on port 1: the submission fails, once `run` has loaded all it needs.
    code, err, state = _collector_at_exit(
        "run", str(pipeline), "--coordinator", "127.0.0.1:1", "--token", "t"
    )
    assert code == EXIT_UNAVAILABLE, err
    assert state == (True, True)


@pytest.mark.parametrize("argv", [("--help",), ("builds", "--limit", "0")])
def test_the_collector_is_on_again_when_no_command_ran(argv: tuple[str, ...]) -> None:
    code, err, (enabled, _) = _collector_at_exit(*argv)
    assert code in (0, 2), err
    assert enabled


@pytest.fixture
def collecting() -> Iterator[None]:
    """The collector on, and this process's objects out of the permanent generation after."""
    was = gc.isenabled()
    gc.enable()
    try:
        yield
    finally:
        gc.unfreeze()
        if not was:
            gc.disable()


def test_pause_then_resume_freezes_and_collects_again(collecting: None) -> None:
    collector.pause()
    assert not gc.isenabled()
    loaded = [object()]  # tracked: a list
    collector.resume()
    assert gc.isenabled()
    assert gc.get_freeze_count() > 0
    assert all(o is not loaded for o in gc.get_objects())
    frozen = gc.get_freeze_count()
    collector.resume()  # once only: a second call freezes nothing more
    assert gc.get_freeze_count() <= frozen


def test_a_collector_already_off_is_left_off_and_nothing_frozen(collecting: None) -> None:
    gc.disable()
    frozen = gc.get_freeze_count()
    collector.pause()
    collector.resume()
    assert not gc.isenabled()
    assert gc.get_freeze_count() == frozen
