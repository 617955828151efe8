"""Agents over fake ports: joining, re-presenting running attempts, renewals, operator modes."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Sequence
from typing import Any

import pytest

from conveyor import PROTOCOL_VERSION
from conveyor.states import Outcome, Reason
from coordinator.config import (
    MAX_AGENT_CAPACITY,
    MAX_AGENT_LABELS,
    MAX_AGENT_NAME_CHARS,
    MAX_LABEL_KEY_CHARS,
    MAX_LABEL_VALUE_CHARS,
)
from coordinator.domain.agents import Registration, check_registration
from coordinator.domain.errors import AlreadyExistsError, AuthError, ConflictError
from coordinator.domain.leases import LeaseState
from coordinator.domain.registry import session_hash
from tests.unit.coordinator.fakes import Harness, coordinator


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(coro)


async def register(
    h: Harness,
    name: str = "n",
    *,
    capacity: int = 2,
    join_token: str = "a",
    protocol_version: int = PROTOCOL_VERSION,
    running: Sequence[tuple[int, str]] = (),
    credential: str = "",
    new_process: bool = False,
) -> Registration:
    return await h.core.agents.register(
        join_token=join_token,
        name=name,
        labels={"os": "linux"},
        capacity=capacity,
        protocol_version=protocol_version,
        running=running,
        agent_credential=credential,
        new_process=new_process,
    )


def test_joining_needs_the_token_the_protocol_and_a_capacity() -> None:
    async def main() -> None:
        h = coordinator()
        with pytest.raises(AuthError):
            await register(h, join_token="wrong")
        with pytest.raises(ConflictError, match="upgrade the older side"):
            await register(h, protocol_version=PROTOCOL_VERSION + 1)
        with pytest.raises(ValueError, match="capacity"):
            await register(h, capacity=0)
        assert h.state.agents.rows == {}
        await h.core.close()

    run(main())


def test_a_session_token_names_its_agent_and_a_replaced_one_says_why() -> None:
    async def main() -> None:
        h = coordinator()
        first = await register(h)
        assert h.core.agents.session(first.session_token) is first.agent
        assert first.lease_ttl_s == h.core.config.lease_ttl_s
        # The same agent again (it presents its credential): the first session is cut off.
        second = await register(h, credential=first.agent_credential)
        assert second.agent.id == first.agent.id
        with pytest.raises(AuthError, match="session replaced"):
            h.core.agents.session(first.session_token)
        with pytest.raises(AuthError):
            h.core.agents.session(None)
        await h.core.close()

    run(main())


def test_a_live_agents_name_is_refused_to_a_newcomer() -> None:
    async def main() -> None:
        h = coordinator()
        first = await register(h)
        assert first.agent_credential  # issued at the first registration, stored as a hash only
        stored = h.state.agents.rows["n"].credential_hash
        assert stored and first.agent_credential not in stored
        for credential in ("", "someone-elses"):
            with pytest.raises(AlreadyExistsError, match="'n' is in use by a live agent"):
                await register(h, credential=credential)
        # The running agent is untouched: its session still works.
        assert h.core.agents.session(first.session_token) is first.agent
        assert [s.state for s in await h.core.agents.list()] == ["online"]
        await h.core.close()

    run(main())


def test_a_restarted_agent_is_recognised_and_keeps_its_credential() -> None:
    async def main() -> None:
        h = coordinator()
        first = await register(h)
        again = await register(h, credential=first.agent_credential, new_process=True)
        assert again.agent.id == first.agent.id
        assert again.agent_credential == ""  # nothing new to keep
        assert h.state.agents.rows["n"].credential_hash == session_hash(first.agent_credential)
        await h.core.close()

    run(main())


def test_a_clean_exit_is_offline_at_once_and_frees_the_name() -> None:
    async def main() -> None:
        h = coordinator()
        first = await register(h)
        await h.core.agents.sign_off(first.agent)
        assert [s.state for s in await h.core.agents.list()] == ["offline"]
        with pytest.raises(AuthError):
            h.core.agents.session(first.session_token)
        # Offline and holding nothing: a new agent may take the name, with a new credential.
        newcomer = await register(h)
        assert newcomer.agent.id == first.agent.id
        assert newcomer.agent_credential not in ("", first.agent_credential)
        await h.core.close()

    run(main())


def test_a_name_holding_a_lease_is_not_free_though_silent() -> None:
    async def main() -> None:
        h = coordinator()
        first = await register(h)
        h.state.attempts.queued.append(("a", {}))
        assert (await h.core.agents.poll(first.agent, 1, draining=False)).assignments
        await h.core.agents.sign_off(first.agent)  # offline, but it still holds a lease
        with pytest.raises(AlreadyExistsError):
            await register(h)
        await h.core.close()

    run(main())


def test_a_restart_ends_a_drain_but_not_a_pause() -> None:
    async def main() -> None:
        h = coordinator()
        joined = await register(h)
        credential = joined.agent_credential
        await h.core.agents.set_mode("n", "draining")
        # A reconnect of the same process (the coordinator restarted) keeps draining.
        await register(h, credential=credential)
        assert h.state.agents.rows["n"].mode == "draining"
        # A new process: the drain it was asked for is over.
        again = await register(h, credential=credential, new_process=True)
        assert (again.agent.mode, h.state.agents.rows["n"].mode) == ("active", "active")
        await h.core.agents.set_mode("n", "paused")
        again = await register(h, credential=credential, new_process=True)
        assert again.agent.mode == "paused"
        await h.core.close()

    run(main())


def test_re_registering_keeps_the_attempts_re_presented_and_ends_the_rest() -> None:
    async def main() -> None:
        h = coordinator()
        joined = await register(h)
        h.state.attempts.queued.extend([("a", {}), ("b", {})])
        kept, lost = (await h.core.agents.poll(joined.agent, 2, draining=False)).assignments
        await register(
            h, running=[(kept.attempt_id, kept.lease_token)], credential=joined.agent_credential
        )
        assert h.state.attempts.finished() == [
            ("finish", lost.attempt_id, Outcome.FAILED, Reason.AGENT_LOST)
        ]
        assert h.core.leases.check_any(kept.attempt_id) is not None
        assert h.core.leases.check_any(lost.attempt_id) is None
        await h.core.close()

    run(main())


def test_renewal_says_active_cancel_or_lost() -> None:
    async def main() -> None:
        h = coordinator()
        joined = await register(h)
        h.state.attempts.queued.extend([("a", {}), ("b", {})])
        one, two = (await h.core.agents.poll(joined.agent, 2, draining=False)).assignments
        h.core.leases.mark_cancel(two.attempt_id)
        states = h.core.agents.renew(
            joined.agent,
            [(one.attempt_id, one.lease_token), (two.attempt_id, two.lease_token), (99, "x")],
        )
        assert states == [
            (one.attempt_id, LeaseState.ACTIVE),
            (two.attempt_id, LeaseState.CANCEL),
            (99, LeaseState.LOST),
        ]
        await h.core.close()

    run(main())


def test_a_paused_agent_claims_nothing_and_a_draining_one_is_told_so() -> None:
    async def main() -> None:
        h = coordinator(poll_timeout_s=0.05)
        joined = await register(h)
        h.state.attempts.queued.append(("a", {}))
        paused = await h.core.agents.set_mode("n", "paused")
        assert paused.state == "paused"
        assert (await h.core.agents.poll(joined.agent, 1, draining=False)).assignments == []
        assert [c for c in h.state.attempts.calls if c[0] == "claim"] == []
        await h.core.agents.set_mode("n", "draining")
        assert (await h.core.agents.poll(joined.agent, 1, draining=False)).drain
        with pytest.raises(ValueError, match="unknown agent mode"):
            await h.core.agents.set_mode("n", "asleep")
        await h.core.agents.set_mode("n", "active")
        # The mode change first ends (or pre-empts) the agent's poll, empty; the next one claims.
        polls = [await h.core.agents.poll(joined.agent, 1, draining=False) for _ in range(2)]
        assert [len(p.assignments) for p in polls] == [0, 1]
        await h.core.close()

    run(main())


def test_agents_known_before_a_restart_are_offline_until_heard_from() -> None:
    async def main() -> None:
        h = coordinator()
        joined = await register(h)
        await h.core.agents.persist_last_seen()
        assert list(h.state.agents.touched[-1]) == [joined.agent.id]

        restarted = coordinator(h.state)
        await restarted.core.start()
        assert [s.state for s in await restarted.core.agents.list()] == ["offline"]
        restarted.core.agents.session(joined.session_token)  # heard from again
        assert [s.state for s in await restarted.core.agents.list()] == ["online"]
        await h.core.close()
        await restarted.core.close()

    run(main())


def test_registration_bounds_accept_the_limits_and_refuse_one_more() -> None:
    ok_labels = {f"k{i}": "v" * MAX_LABEL_VALUE_CHARS for i in range(MAX_AGENT_LABELS)}
    check_registration("a" * MAX_AGENT_NAME_CHARS, ok_labels, MAX_AGENT_CAPACITY, [], "")
    too_many = {**ok_labels, "one-more": ""}
    refused: list[tuple[str, dict[str, str], int, str]] = [
        ("a" * (MAX_AGENT_NAME_CHARS + 1), {}, 1, "name:"),
        ("-leading", {}, 1, "name:"),
        ("n", too_many, 1, "labels:"),
        ("n", {"k" * (MAX_LABEL_KEY_CHARS + 1): ""}, 1, "labels:"),
        ("n", {"k": "a=b"}, 1, "labels.k:"),
        ("n", {}, MAX_AGENT_CAPACITY + 1, "capacity:"),
        ("n", {}, 0, "capacity:"),
    ]
    for name, labels, capacity, field in refused:
        with pytest.raises(ValueError, match=f"^{field}"):
            check_registration(name, labels, capacity, [], "")
