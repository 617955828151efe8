"""The CLI's config file and where a client command's address, token and CA come from: flags,
then the environment, then --context / --data-dir, then $CONVEYOR_CONTEXT, then the current
context, then the local server. Real files in a temp dir; no server (the integration tests
dial one)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pytest

from conveyor.cli import contexts
from conveyor.cli.connection import resolve
from conveyor.cli.contexts import Config, Context
from conveyor.cli.errors import CliError
from coordinator.tls import ensure_auto


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No variable of the caller's leaks in; the config and the local server are the test's."""
    for name in ("CONVEYOR_ADDR", "CONVEYOR_TOKEN", "CONVEYOR_CA", "CONVEYOR_CONTEXT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CONVEYOR_CONFIG", str(tmp_path / "conf" / "config.toml"))
    local = tmp_path / "local-server"
    local.mkdir()
    (local / "server.addr").write_text("0.0.0.0:7500\n")
    (local / "client-token").write_text("local-token\n")
    monkeypatch.setattr("conveyor.local.DEFAULT_SERVER_DIR", local)
    return tmp_path


def _token(home: Path, name: str) -> str:
    path = home / f"{name}.token"
    path.write_text(f"{name}-token\n")
    return str(path)


def _contexts(home: Path, current: str | None = "a") -> None:
    contexts.save(
        Config(
            contexts.config_path(),
            current,
            {
                "a": Context("a", "a.example:7420", _token(home, "a")),
                "b": Context("b", "b.example:7420", _token(home, "b")),
            },
        )
    )


def _resolved(**flags: str) -> tuple[str, str, str | None]:
    args = argparse.Namespace(
        coordinator=None, token=None, token_file=None, ca=None, context=None, data_dir=None
    )
    for key, value in flags.items():
        setattr(args, key, value)
    found = resolve(args)
    return found.address, found.token, found.context


def test_without_contexts_the_local_server_is_used(home: Path) -> None:
    assert _resolved() == ("127.0.0.1:7500", "local-token", None)


def test_the_current_context_then_the_variable_then_the_flag(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _contexts(home)
    assert _resolved() == ("a.example:7420", "a-token", "a")
    monkeypatch.setenv("CONVEYOR_CONTEXT", "b")
    assert _resolved() == ("b.example:7420", "b-token", "b")
    assert _resolved(context="a") == ("a.example:7420", "a-token", "a")


def test_flags_and_variables_win_over_any_context(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _contexts(home)
    monkeypatch.setenv("CONVEYOR_ADDR", "env.example:1")
    assert _resolved(context="b") == ("env.example:1", "b-token", None)
    assert _resolved(context="b", coordinator="flag.example:2")[0] == "flag.example:2"
    monkeypatch.setenv("CONVEYOR_TOKEN", "env-token")
    assert _resolved(context="b")[1] == "env-token"
    assert _resolved(context="b", token="flag-token")[1] == "flag-token"


def test_an_unknown_context_is_refused_naming_the_config(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _contexts(home)
    with pytest.raises(CliError, match=r"--context names context 'c', which .*config.toml"):
        _resolved(context="c", coordinator="h:1", token="t")
    monkeypatch.setenv("CONVEYOR_CONTEXT", "zz")
    with pytest.raises(CliError, match=r"CONVEYOR_CONTEXT names context 'zz'.*contexts: a, b"):
        _resolved()


def test_a_data_dir_gives_address_token_and_ca(home: Path) -> None:
    data = home / "srv"
    ensure_auto(data, "127.0.0.1:0")
    (data / "server.addr").write_text("0.0.0.0:7600\n")
    (data / "client-token").write_text("srv-token\n")
    _contexts(home)  # a current context, which --data-dir overrides
    args = argparse.Namespace(coordinator=None, token=None, ca=None, data_dir=str(data))
    found = resolve(args)
    assert (found.address, found.token) == ("127.0.0.1:7600", "srv-token")
    assert found.ca is not None and found.ca.path == data / "tls" / "ca.pem"
    # An address given otherwise is another server: the data dir's CA says nothing about it.
    assert resolve(argparse.Namespace(**{**vars(args), "coordinator": "h:1"})).ca is None


def test_a_data_dir_without_server_files_is_named(home: Path) -> None:
    with pytest.raises(CliError, match=rf"--data-dir {home}: no coordinator's files there"):
        _resolved(data_dir=str(home))


def test_the_config_is_written_whole_private_and_read_back_exactly(home: Path) -> None:
    odd = 'C:\\dir "quoted"\n\x7fé'
    config = Config(contexts.config_path(), "x", {"x": Context("x", "h:1", odd, "/ca.pem")})
    contexts.save(config)
    path = contexts.config_path()
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
    assert os.listdir(path.parent) == ["config.toml"]  # no temp file left behind
    again = contexts.load()
    assert (again.current, again.contexts) == ("x", config.contexts)


def test_the_config_path_follows_the_variables(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert contexts.config_path() == home / "conf" / "config.toml"
    monkeypatch.delenv("CONVEYOR_CONFIG")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "xdg"))
    assert contexts.config_path() == home / "xdg" / "conveyor" / "config.toml"
    monkeypatch.setenv("XDG_CONFIG_HOME", "relative")  # ignored, as XDG says
    monkeypatch.setenv("HOME", str(home))
    assert contexts.config_path() == Path.home() / ".config" / "conveyor" / "config.toml"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            '[contexts.a]\ncoordinator = "h:1"\nadress = "x"\n',
            "line 3, key contexts.a.adress: unknown",
        ),
        ('current = "a"\n[contexts.b]\ncoordinator = "h:1"\n', "line 1, key current: names no"),
        ("[contexts.a]\ncoordinator = 7420\n", "line 2, key contexts.a.coordinator: not a"),
        ('[contexts.a]\ntoken_file = "/t"\n', "line 1, key contexts.a: no coordinator"),
        ("[contexts.a]\ncoordinator = h:1\n", "line 2, key coordinator: not valid TOML"),
        ('contexts = "a"\n', "line 1, key contexts: not a table"),
        ('[context.a]\ncoordinator = "h:1"\n', "line 1, key context: unknown key"),
    ],
)
def test_a_bad_config_names_its_file_line_and_key(home: Path, text: str, problem: str) -> None:
    path = contexts.config_path()
    path.parent.mkdir()
    path.write_text(text)
    with pytest.raises(CliError, match="config ") as raised:
        contexts.load()
    assert str(raised.value).startswith(f"config {path}: ")
    assert problem in str(raised.value)
    assert raised.value.exit_code == 2
