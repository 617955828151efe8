"""The garbage collector while a command starts: off while its code loads, and what loaded is
then frozen (out of every later collection's reach).

Loading a command's code (gRPC, protobuf and the pipeline rules for `run`) creates tens of
thousands of objects that live as long as the process, and almost no garbage: the collections
that many allocations set off would each scan them in vain, and at exit the interpreter's own
final collections would walk them all again. Together that was about a fifth of `conveyor run`'s
time. Collections resume as usual once the command's code is loaded, so a long command (a
followed build, the server, an agent) collects what it makes, and skips only what never goes.
"""

from __future__ import annotations

import gc


class _State:
    paused = False


def pause() -> None:
    """No collections from now until `resume` (if the collector was on at all)."""
    if gc.isenabled():
        gc.disable()
        _State.paused = True


def resume() -> None:
    """Freeze what was loaded since `pause` and collect again as before it; once only."""
    if not _State.paused:
        return
    _State.paused = False
    gc.freeze()
    gc.enable()
