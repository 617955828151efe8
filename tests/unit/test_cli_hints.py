"""The commands the CLI prints as hints (after Ctrl-C, with --no-follow) reach the coordinator
the user's own command line named: they carry its connection flags, never its token."""

from __future__ import annotations

import argparse

import pytest

from conveyor.cli.errors import EXIT_INTERRUPTED
from conveyor.cli.views import again, stopped_following


def test_a_hint_carries_the_connection_flags_given_and_not_the_token() -> None:
    args = argparse.Namespace(
        coordinator=None,
        context=None,
        data_dir="/srv/conveyor farm",
        token="s3cret",
        token_file=None,
        ca="ca.pem",
    )
    hint = again(args, "show 12 --follow")
    assert hint == "conveyor show 12 --follow --data-dir '/srv/conveyor farm' --ca ca.pem"
    assert "s3cret" not in hint


def test_ctrl_c_names_the_context_in_both_commands(capsys: pytest.CaptureFixture[str]) -> None:
    args = argparse.Namespace(context="farm")
    assert stopped_following(7, args) == EXIT_INTERRUPTED
    assert capsys.readouterr().err.splitlines()[1:] == [
        "stopped following build 7; it is still running.",
        "  follow again: conveyor show 7 --follow --context farm",
        "  cancel it:    conveyor cancel 7 --context farm",
    ]


def test_without_connection_flags_the_hint_is_the_bare_command() -> None:
    assert again(argparse.Namespace(), "cancel 3") == "conveyor cancel 3"
