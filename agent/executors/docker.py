"""Docker implementation of :class:`agent.executors.base.Executor`.

One container per step, one named volume per attempt; all carry ``conveyor.*`` labels so they can be
found after a crash. Output: stderr is merged into stdout inside the container (two pipes cannot be
merged in exact order afterwards), log driver ``none`` and attach-before-start (the fastest path).
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from typing import TYPE_CHECKING

import docker
from docker.errors import APIError, DockerException, ImageNotFound, NotFound
from docker.types import LogConfig, Mount
from docker.utils import parse_repository_tag

from agent.config import Isolation
from agent.executors.base import (
    AttemptInfo,
    Executor,
    ExecutorError,
    StepControl,
    StepEnd,
    StepRequest,
    StepResult,
    WorkspaceReader,
)
from agent.executors.docker_isolation import (
    host_options,
    memory_text,
    name_part,
    privileged_refused,
)
from agent.executors.docker_network import AttemptNetworks
from agent.executors.docker_stream import close_socket, pump
from agent.executors.docker_workspace import DockerWorkspaceReader, helper_container, put_tar
from agent.executors.watchdog import TICK_S, Watchdog, early_end, unless_lapsed
from agent.watchdog import DOCKER
from agent.watchdog_link import WatchdogLink, shared

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

log = logging.getLogger(__name__)

WORKSPACE = "/workspace"
# `exec 2>&1` merges stderr into stdout at the source; the script travels as "$1", never re-quoted.
_LAUNCHER = ["sh", "-c", 'exec 2>&1; exec sh -e -c "$1"', "sh"]
_ATTACH_PARAMS = {"stdout": 1, "stderr": 1, "stream": 1, "logs": 0}
# requests' exceptions (raised for a dead socket or daemon) are OSErrors, not DockerExceptions.
_BACKEND_ERRORS = (DockerException, OSError)


def volume_name(attempt: AttemptInfo) -> str:
    return f"conveyor-ws-{name_part(attempt.agent_name)}-{attempt.attempt_id}"


def container_name(attempt: AttemptInfo, index: int) -> str:
    return f"conveyor-{name_part(attempt.agent_name)}-{attempt.attempt_id}-{index}"


def attempt_labels(attempt: AttemptInfo) -> dict[str, str]:
    return {
        "conveyor.agent": attempt.agent_name,
        "conveyor.attempt": str(attempt.attempt_id),
        "conveyor.build": str(attempt.build_id),
        "conveyor.job": attempt.job_name,
    }


def _describe(exc: BaseException) -> str:
    if isinstance(exc, APIError) and exc.explanation:
        return str(exc.explanation)
    return str(exc) or type(exc).__name__


def _error(message: str) -> StepResult:
    return StepResult(StepEnd.ERROR, None, message)


def _pull_failed(image: str, reason: str) -> StepResult:
    message = f"image {image!r} is not available locally and could not be pulled: {reason}"
    return StepResult(StepEnd.IMAGE_PULL_FAILED, None, message)


class _StepOver(Exception):
    """Ends run_step early with a ready result."""

    def __init__(self, result: StepResult) -> None:
        super().__init__(result.message)
        self.result = result


class DockerExecutor(Executor):
    """Runs steps with the local Docker engine; the contracts are :class:`Executor`'s."""

    def __init__(
        self,
        client: docker.DockerClient | None = None,
        *,
        pull_timeout_s: float = 60.0,
        isolation: Isolation | None = None,
        watchdog: WatchdogLink | None = None,
    ) -> None:
        """``isolation`` bounds every step container; its ``allow_privileged`` is the operator's
        opt-in to run the steps of jobs that ask for it as privileged containers."""
        self._api = (client or docker.from_env()).api
        self._watchdog = watchdog or shared()
        self._pull_timeout_s = pull_timeout_s
        self._isolation = isolation or Isolation()
        self._networks = AttemptNetworks(self._api, self._isolation.network)

    def prepare_attempt(self, attempt: AttemptInfo) -> None:
        self.cleanup_attempt(attempt)
        try:
            self._api.create_volume(volume_name(attempt), labels=attempt_labels(attempt))
            self._networks.claim(attempt.agent_name, attempt.attempt_id)
        except _BACKEND_ERRORS as exc:
            raise ExecutorError(
                f"could not create the workspace of attempt {attempt.attempt_id}: {_describe(exc)}"
            ) from exc

    def run_step(
        self,
        attempt: AttemptInfo,
        step: StepRequest,
        on_output: Callable[[bytes], None],
        control: StepControl,
    ) -> StepResult:
        early = early_end(control, "the step's container")
        if early is not None:
            return early
        if step.privileged and not self._isolation.allow_privileged:
            return _error(privileged_refused(attempt.job_name))
        try:
            container_id = self._create(attempt, step, control)
        except _StepOver as over:
            return over.result
        except _BACKEND_ERRORS as exc:
            return _error(f"could not create the container of step {step.index}: {_describe(exc)}")
        # Held before it starts: a frozen agent's container is killed when its lease lapses.
        target = (DOCKER, container_id)
        self._watchdog.hold(attempt.attempt_id, target)
        try:
            result = self._run_container(container_id, on_output, control)
        finally:
            self._remove_container(container_id)
            self._watchdog.drop(attempt.attempt_id, target)
        return unless_lapsed(self._watchdog, attempt.attempt_id, result)

    def cleanup_attempt(self, attempt: AttemptInfo) -> None:
        attempt_id = attempt.attempt_id
        selector = [f"conveyor.agent={attempt.agent_name}", f"conveyor.attempt={attempt_id}"]
        try:
            self._remove_containers(selector)
            self._remove_volume(volume_name(attempt))
            self._networks.release(attempt.agent_name, attempt_id)
        except _BACKEND_ERRORS as exc:
            raise ExecutorError(f"could not clean up attempt {attempt_id}: {exc}") from exc

    def remove_leftovers(self, agent_name: str) -> int:
        # Steps' and helpers' containers (they carry an attempt); the networks' holders go below.
        selector = [f"conveyor.agent={agent_name}", "conveyor.attempt"]
        try:
            removed = self._remove_containers(selector)
            volumes = self._api.volumes(filters={"label": selector[:1]}).get("Volumes") or []
            for volume in volumes:
                self._remove_volume(volume["Name"])
            self._networks.remove_all(agent_name)
        except _BACKEND_ERRORS as exc:
            raise ExecutorError(f"could not remove leftovers of {agent_name!r}: {exc}") from exc
        log.info("removed %d leftover containers of agent %r", removed, agent_name)
        return removed

    @contextlib.contextmanager
    def open_workspace(self, attempt: AttemptInfo) -> Iterator[WorkspaceReader]:
        volume = volume_name(attempt)
        with helper_container(self._api, attempt, volume, attempt_labels(attempt)) as helper:
            yield DockerWorkspaceReader(self._api, helper)

    def import_tar(self, attempt: AttemptInfo, chunks: Iterable[bytes]) -> None:
        volume = volume_name(attempt)
        with helper_container(self._api, attempt, volume, attempt_labels(attempt)) as helper:
            put_tar(self._api, helper, chunks)

    def _create(self, attempt: AttemptInfo, step: StepRequest, control: StepControl) -> str:
        try:
            return self._create_container(attempt, step)
        except ImageNotFound:
            log.info("image %r is not present; pulling it", step.image)
        self._pull(step.image, control)
        try:
            return self._create_container(attempt, step)
        except ImageNotFound as exc:
            raise _StepOver(_pull_failed(step.image, _describe(exc))) from exc

    def _create_container(self, attempt: AttemptInfo, step: StepRequest) -> str:
        name = container_name(attempt, step.index)
        try:
            return self._create_named(name, attempt, step)
        except APIError as exc:  # ImageNotFound (404) passes through to _create
            if exc.status_code == 400 and "reference format" in _describe(exc):
                raise _StepOver(_pull_failed(step.image, _describe(exc))) from exc
            if exc.status_code != 409:
                raise
        # Only a crashed earlier run of this very step can hold the name, so it is stale.
        log.warning("removing stale container %s", name)
        self._api.remove_container(name, v=True, force=True)
        return self._create_named(name, attempt, step)

    def _create_named(self, name: str, attempt: AttemptInfo, step: StepRequest) -> str:
        labels = attempt_labels(attempt)
        workspace = Mount(WORKSPACE, volume_name(attempt), labels=dict(labels))
        host_config = self._api.create_host_config(
            mounts=[workspace],
            # An init as PID 1 forwards SIGTERM to the script; PID 1 itself would ignore it.
            init=True,
            log_config=LogConfig(type=LogConfig.types.NONE),
            network_mode=self._networks.mode_of(attempt.agent_name, attempt.attempt_id),
            **host_options(self._isolation, step.privileged),
        )
        response = self._api.create_container(
            step.image,
            # Overriding the entrypoint keeps images that define their own one runnable.
            entrypoint=_LAUNCHER,
            command=[step.run],
            name=name,
            environment=dict(step.env),
            working_dir=WORKSPACE,
            user=step.user or None,
            labels={**labels, "conveyor.step": str(step.index)},
            host_config=host_config,  # no tty and no stdin: the SDK's defaults
        )
        return str(response["Id"])

    def _pull(self, image: str, control: StepControl) -> None:
        """Pulls ``image`` once, on a helper thread so that stop and deadlines stay responsive."""
        failure: list[str] = []
        done = threading.Event()
        args = (image, failure, done)
        threading.Thread(
            target=self._pull_worker, args=args, name="conveyor-pull", daemon=True
        ).start()
        give_up = time.monotonic() + self._pull_timeout_s
        while not done.wait(TICK_S):
            interrupted = early_end(control, "the step's container")
            if interrupted is not None:
                raise _StepOver(interrupted)
            if time.monotonic() >= give_up:
                reason = f"the pull did not finish within {self._pull_timeout_s:g} s"
                raise _StepOver(_pull_failed(image, reason))
        if failure:
            raise _StepOver(_pull_failed(image, failure[0]))

    def _pull_worker(self, image: str, failure: list[str], done: threading.Event) -> None:
        repository, tag = parse_repository_tag(image)
        try:
            # Without a tag the engine would pull every tag of the repository.
            events = self._api.pull(repository, tag=tag or "latest", stream=True, decode=True)
            failure.extend(str(e["error"]) for e in events if isinstance(e, dict) and "error" in e)
        except _BACKEND_ERRORS as exc:
            failure.append(_describe(exc))
        finally:
            done.set()

    def _run_container(
        self, container_id: str, on_output: Callable[[bytes], None], control: StepControl
    ) -> StepResult:
        sock: object = None
        try:
            # Attaching before start is the only way not to miss the first bytes without logs.
            sock = self._api.attach_socket(container_id, params=dict(_ATTACH_PARAMS))
            self._api.start(container_id)
        except _BACKEND_ERRORS as exc:
            close_socket(sock)
            return _error(f"could not start the step's container: {_describe(exc)}")
        watchdog = Watchdog(
            lambda signum: self._signal(container_id, signum),
            control,
            name=f"conveyor-watchdog-{container_id[:12]}",
            # The engine may fail to deliver a kill; repeated until the step is over.
            repeat_kill_s=1.0,
        )
        watchdog.start()
        try:
            read_error = pump(sock, on_output)
            if read_error is not None:
                return _error(read_error)
            exit_code, detail = self._wait_exit(container_id)
        finally:
            watchdog.finish()
            close_socket(sock)
        if watchdog.outcome is StepEnd.STOPPED:
            return StepResult(StepEnd.STOPPED, exit_code, f"stopped on request ({detail})")
        if watchdog.outcome is StepEnd.TIMEOUT:
            return StepResult(StepEnd.TIMEOUT, exit_code, f"deadline passed; killed ({detail})")
        if exit_code is None:
            return _error(detail)
        if exit_code != 0 and self._oom_killed(container_id):
            limit = memory_text(self._isolation.memory_bytes)
            message = f"out of memory: killed at the {limit} limit (agent --memory); {detail}"
            return StepResult(StepEnd.OOM_KILLED, exit_code, message)
        return StepResult(StepEnd.EXITED, exit_code, detail)

    def _oom_killed(self, container_id: str) -> bool:
        try:
            state = self._api.inspect_container(container_id)["State"]
        except _BACKEND_ERRORS as exc:
            log.warning("could not inspect %s: %s", container_id[:12], _describe(exc))
            return False
        return bool(state.get("OOMKilled"))

    def _wait_exit(self, container_id: str) -> tuple[int | None, str]:
        try:
            # No request timeout: the watchdog still ends a step that runs too long.
            status = self._api.wait(container_id, timeout=None)
        except _BACKEND_ERRORS as exc:
            return None, f"waiting for the step's container failed: {_describe(exc)}"
        code = int(status["StatusCode"])
        return code, f"exit code {code}"

    def _signal(self, container_id: str, signum: signal.Signals) -> None:
        try:
            self._api.kill(container_id, signal=signum.name)
        except _BACKEND_ERRORS as exc:
            # Most often the container has just exited by itself.
            log.debug("%s to %s failed: %s", signum.name, container_id[:12], _describe(exc))

    def _remove_container(self, container_id: str) -> None:
        try:
            self._api.remove_container(container_id, v=True, force=True)
        except NotFound:
            pass
        except _BACKEND_ERRORS as exc:
            # cleanup_attempt finds it again by its labels.
            log.warning("could not remove container %s: %s", container_id[:12], _describe(exc))

    def _remove_containers(self, label_selector: list[str]) -> int:
        found = self._api.containers(all=True, quiet=True, filters={"label": label_selector})
        for container in found:
            with contextlib.suppress(NotFound):
                self._api.remove_container(container["Id"], v=True, force=True)
        return len(found)

    def _remove_volume(self, name: str) -> None:
        with contextlib.suppress(NotFound):
            self._api.remove_volume(name, force=True)
