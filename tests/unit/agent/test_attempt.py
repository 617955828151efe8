"""One attempt through its seams: an in-memory Peer and the fake executor, no gRPC, no process."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import replace
from pathlib import Path

from agent.attempt import AttemptRunner
from agent.executors.fake import FakeExecutor
from agent.peer import ArtifactFile, Assignment, Inputs, Lease, PeerError, StepSpec, Verdict
from conveyor.states import Outcome, Reason
from tests.harness import wait_for
from tests.unit.agent.memory_peer import MemoryPeer, as_peer


def _assignment(*scripts: str, timeout_s: float | None = None) -> Assignment:
    steps = tuple(
        StepSpec(f"s{i}", "any", run, {"WHO": "fake"}, None) for i, run in enumerate(scripts)
    )
    return Assignment(Lease(7, "token"), 3, "job", 1, steps, timeout_s)


def _runner(peer: MemoryPeer, tmp_path: Path, assignment: Assignment) -> AttemptRunner:
    executor = FakeExecutor(tmp_path / "workspaces")
    return AttemptRunner(
        assignment, as_peer(peer), executor, "agent", tmp_path / "spool", 1.0, 1024 * 1024
    )


def test_steps_logs_and_the_result_are_reported_in_order(tmp_path: Path) -> None:
    peer = MemoryPeer()
    assignment = _assignment('echo "hi $WHO" > f; cat f', "echo two; exit 3", "echo never")
    _runner(peer, tmp_path, assignment).run()
    assert bytes(peer.logs[0]) == b"hi fake\n"
    assert bytes(peer.logs[1]) == b"two\n"
    assert 2 not in peer.logs
    assert [(r.index, r.verdict.outcome, r.exit_code, r.log_length) for r in peer.steps] == [
        (0, Outcome.SUCCEEDED, 0, 8),
        (1, Outcome.FAILED, 3, 4),
    ]
    assert peer.finished == [
        Verdict(Outcome.FAILED, Reason.EXIT_CODE, "step 's1' exited with code 3", 3)
    ]
    assert peer.calls[0] == "get_inputs"
    assert peer.calls[-1] == "finish_attempt"
    assert not (tmp_path / "workspaces" / "7").exists()  # cleaned up


def test_a_cancel_stops_the_running_step_and_the_attempt_ends_canceled(tmp_path: Path) -> None:
    peer = MemoryPeer()
    runner = _runner(peer, tmp_path, _assignment("echo up; sleep 300", "echo never"))
    thread = threading.Thread(target=runner.run)
    thread.start()
    wait_for(lambda: bytes(peer.logs.get(0, b"")) == b"up\n", 10, "the step to run")
    runner.cancel()
    thread.join(10)
    assert not thread.is_alive()
    assert [(r.verdict.outcome, r.exit_code) for r in peer.steps] == [(Outcome.CANCELED, 143)]
    assert [(v.outcome, v.reason) for v in peer.finished] == [(Outcome.CANCELED, Reason.CANCELED)]


def test_a_timeout_fails_the_attempt(tmp_path: Path) -> None:
    peer = MemoryPeer()
    _runner(peer, tmp_path, _assignment("echo up; sleep 300", timeout_s=0.3)).run()
    assert [(v.outcome, v.reason, v.exit_code) for v in peer.finished] == [
        (Outcome.FAILED, Reason.TIMEOUT, 137)
    ]


def test_a_fenced_attempt_stops_without_reporting_more(tmp_path: Path) -> None:
    peer = MemoryPeer(fenced={"finish_step"})
    _runner(peer, tmp_path, _assignment("echo one", "echo two")).run()
    assert "finish_attempt" not in peer.calls
    assert peer.calls.count("start_step") == 1
    assert not (tmp_path / "workspaces" / "7").exists()


def test_a_lost_lease_kills_the_step_and_reports_nothing(tmp_path: Path) -> None:
    peer = MemoryPeer()
    runner = _runner(peer, tmp_path, _assignment("trap '' TERM; echo up; sleep 300"))
    thread = threading.Thread(target=runner.run)
    thread.start()
    wait_for(lambda: bytes(peer.logs.get(0, b"")) == b"up\n", 10, "the step to run")
    runner.lose()  # no grace: the trapped step is killed at once
    thread.join(5)
    assert not thread.is_alive()
    assert "finish_step" not in peer.calls
    assert "finish_attempt" not in peer.calls


def test_unmatched_artifact_globs_end_the_log_of_the_step_that_ran_last(tmp_path: Path) -> None:
    peer = MemoryPeer(inputs=Inputs(artifact_paths=("f", "none/**"), artifacts_always=True))
    _runner(peer, tmp_path, _assignment("echo a > f", "echo two; exit 3", "echo never")).run()
    assert 0 not in peer.logs  # not the last to run (and silent): nothing said there
    notice = b"conveyor: artifact pattern 'none/**' matched no file\n"
    assert bytes(peer.logs[1]) == b"two\n" + notice
    assert [r.log_length for r in peer.steps] == [0, 4 + len(notice)]


def test_a_failed_attempt_without_always_says_nothing_about_artifacts(tmp_path: Path) -> None:
    peer = MemoryPeer(inputs=Inputs(artifact_paths=("none",)))
    _runner(peer, tmp_path, _assignment("echo two; exit 3")).run()
    assert bytes(peer.logs[0]) == b"two\n"


def _ends(peer: MemoryPeer) -> list[str]:
    return [c for c in peer.calls if c in ("finish_step", "upload_artifact", "finish_attempt")]


def test_the_step_that_ran_last_ends_inside_the_attempts_finish(tmp_path: Path) -> None:
    peer = MemoryPeer()
    _runner(peer, tmp_path, _assignment("echo a", "echo b")).run()
    assert _ends(peer) == ["finish_step", "finish_attempt"]  # one call for two ends
    assert [(r.index, r.verdict.outcome, r.log_length) for r in peer.steps] == [
        (0, Outcome.SUCCEEDED, 2),
        (1, Outcome.SUCCEEDED, 2),
    ]


def test_a_step_followed_by_uploads_is_reported_before_them(tmp_path: Path) -> None:
    peer = MemoryPeer(inputs=Inputs(artifact_paths=("f",)))
    _runner(peer, tmp_path, _assignment("echo a > f")).run()
    assert _ends(peer) == ["finish_step", "upload_artifact", "finish_attempt"]


def test_inputs_sent_with_the_assignment_are_used_without_asking(tmp_path: Path) -> None:
    peer = MemoryPeer()  # would answer get_inputs with no artifact rule at all
    sent = replace(_assignment("echo hi"), inputs=Inputs(artifact_paths=("none",)))
    _runner(peer, tmp_path, sent).run()
    assert "get_inputs" not in peer.calls
    assert bytes(peer.logs[0]) == b"hi\nconveyor: artifact pattern 'none' matched no file\n"


class _CutUploads(MemoryPeer):
    """Every upload is cut by an outage after the file was read whole; each try re-opens it."""

    def __init__(self, tries: int) -> None:
        super().__init__(inputs=Inputs(artifact_paths=("out.txt",)))
        self.tries = tries
        self.reads: list[bytes] = []

    def upload_artifact(
        self,
        lease: Lease,
        artifact: ArtifactFile,
        open_chunks: Callable[[], AbstractContextManager[Iterable[bytes]]],
        *,
        give_up: threading.Event,
    ) -> None:
        self._record("upload_artifact")
        for _ in range(self.tries):
            with open_chunks() as chunks:
                self.reads.append(b"".join(chunks))
        raise PeerError("Stream removed (Socket closed)", code="UNAVAILABLE", transient=True)


def test_an_upload_that_keeps_failing_names_the_artifact_and_the_cause(tmp_path: Path) -> None:
    peer = _CutUploads(tries=3)
    _runner(peer, tmp_path, _assignment("echo kept > out.txt")).run()
    assert peer.reads == [b"kept\n"] * 3  # every try reads the whole file again
    [verdict] = peer.finished
    assert (verdict.outcome, verdict.reason) == (Outcome.FAILED, Reason.ARTIFACTS_FAILED)
    assert verdict.message == (
        "artifact 'out.txt' could not be uploaded (the coordinator stayed unreachable): "
        "UNAVAILABLE: Stream removed (Socket closed)"
    )


def test_every_step_gets_the_build_variables_over_its_own_env(tmp_path: Path) -> None:
    script = (
        'echo "$CI|$CONVEYOR_BUILD_ID|$CONVEYOR_JOB|$CONVEYOR_ATTEMPT|$CONVEYOR_EVENT|'
        '$CONVEYOR_BRANCH|$CONVEYOR_TAG|$CONVEYOR_COMMIT|$CONVEYOR_ENVIRONMENT|$WHO"'
    )
    # Only a hand-made spec can carry such names (the pipeline format refuses them).
    steps = (StepSpec("s0", "any", script, {"WHO": "fake", "CI": "no", "CONVEYOR_JOB": "x"}, None),)
    assignment = Assignment(
        Lease(7, "token"),
        3,
        "deploy",
        2,
        steps,
        None,
        secrets={"CONVEYOR_EVENT": "secret"},
        event="push",
        branch="main",
        environment="staging",
    )
    peer = MemoryPeer()
    _runner(peer, tmp_path, assignment).run()
    assert bytes(peer.logs[0]) == b"true|3|deploy|2|push|main|||staging|fake\n"
