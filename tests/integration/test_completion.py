"""Shell completion: the scripts `conveyor completion bash|zsh|fish` print load in the real
shells and answer with the parser's commands and flags, and with build ids and job names from
a real coordinator (through `conveyor __complete`, which stays silent without one)."""

from __future__ import annotations

import argparse
import json
import os
import pty
import select
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conveyor.cli.parser import build_parser
from tests.harness import CLIENT_TOKEN, Cluster, write_pipeline

# The store is not what this exercises: the SQLite pass covers it.
pytestmark = pytest.mark.any_store

BIN = Path(sys.executable).parent  # where `conveyor` is installed, for the scripts to call
# Fills COMP_WORDS/COMP_CWORD as bash does for the line in $1 and prints _conveyor's answer.
BASH_QUERY = (
    'source <(conveyor completion bash) || exit 9; read -ra COMP_WORDS <<< "$1"; '
    '[[ $1 == *" " ]] && COMP_WORDS+=(""); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); '
    '_conveyor; printf "%s\\n" "${COMPREPLY[@]}"'
)


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
    path = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return {**env, "HOME": str(home), "PATH": path, **extra}


def _shell(argv: list[str], env: dict[str, str]) -> list[str]:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False, env=env)
    assert done.returncode == 0, done.stderr
    return [line.split("\t")[0] for line in done.stdout.splitlines() if line]


def bash(line: str, env: dict[str, str]) -> list[str]:
    return _shell(["bash", "-c", BASH_QUERY, "bash", line], env)


def fish(line: str, env: dict[str, str]) -> list[str]:
    script = "conveyor completion fish | source; or exit 9; complete -C $argv[1]"
    return _shell(["fish", "-c", script, line], env)


def zsh(keys: str, env: dict[str, str], scratch: Path) -> str:
    """The line zsh's editor holds after `keys` are typed (Tab included) on a terminal."""
    ready, buffer = scratch / "zsh-ready", scratch / "zsh-buffer.txt"
    ready.unlink(missing_ok=True)
    buffer.unlink(missing_ok=True)
    setup = (
        "autoload -U compinit; compinit -u -D; source <(conveyor completion zsh); "
        # Written aside and renamed: the test polls for the file, and `>|` creates it empty first.
        '_show() { print -r -- "$BUFFER" >| $PART_FILE; mv $PART_FILE $BUFFER_FILE }; '
        'zle -N _show; bindkey "^X" _show; '
        ": >| $READY_FILE\n"
    )
    master, slave = pty.openpty()
    shell = subprocess.Popen(
        ["zsh", "-f", "-i"],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env={
            **env,
            "BUFFER_FILE": str(buffer),
            "PART_FILE": f"{buffer}.part",
            "READY_FILE": str(ready),
            "PS1": "> ",
        },
        start_new_session=True,
    )
    os.close(slave)
    screen = bytearray()

    def read_until(done: Path) -> None:
        deadline = time.monotonic() + 60
        while not done.exists() and time.monotonic() < deadline:
            if select.select([master], [], [], 0.2)[0]:
                screen.extend(os.read(master, 65536))
        assert done.exists(), f"zsh did not write {done.name}: {bytes(screen)!r}"

    try:
        os.write(master, setup.encode())
        read_until(ready)  # keys typed before the script is loaded would go elsewhere
        # Ctrl-X, bound above, writes the line once the completion before it is done.
        os.write(master, (keys + "\x18").encode())
        read_until(buffer)
        return buffer.read_text().removesuffix("\n")
    finally:
        shell.kill()
        shell.wait(10)
        os.close(master)


def _need(shell: str) -> None:
    if shutil.which(shell) is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{shell} is not installed (scripts/setup.sh installs it)")
        pytest.skip(f"{shell} is not installed")


def test_bash_completes_what_the_parser_has(tmp_path: Path) -> None:
    env = _env(tmp_path)
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert sorted(bash("conveyor ", env)) == sorted(commands.choices)
    assert bash("conveyor lo", env) == ["logs"]
    assert bash("conveyor run --so", env) == ["--source"]
    assert set(bash("conveyor builds --", env)) >= {"--context", "--data-dir", "--limit"}
    assert bash("conveyor token ", env) == ["create", "list", "revoke"]
    assert bash("conveyor agent --executor ", env) == ["docker", "shell", "fake"]
    assert bash("conveyor completion ", env) == ["bash", "zsh", "fish"]


def test_fish_loads_its_script_and_completes(tmp_path: Path) -> None:
    _need("fish")
    env = _env(tmp_path)
    assert fish("conveyor lo", env) == ["logs"]
    assert fish("conveyor token ", env) == ["create", "list", "revoke"]
    assert "--data-dir" in fish("conveyor builds --", env)
    assert sorted(fish("conveyor agent --executor ", env)) == ["docker", "fake", "shell"]


def test_zsh_loads_its_script_and_defines_the_completer(tmp_path: Path) -> None:
    _need("zsh")
    script = (
        "autoload -U compinit && compinit -u -D; source <(conveyor completion zsh) || exit 9; "
        "whence -w _conveyor; [[ $_comps[conveyor] == _conveyor ]] && echo registered; "
        '__conveyor_words=(conveyor token ""); (emulate ksh; __conveyor_candidates 2)'
    )
    out = _shell(["zsh", "-f", "-c", script], _env(tmp_path))
    assert out == ["_conveyor: function", "registered", "words", "create", "list", "revoke"]
    # And on a terminal, Tab completes through it.
    assert zsh("conveyor tok\t", _env(tmp_path), tmp_path) == "conveyor token "
    assert zsh("conveyor run --so\t", _env(tmp_path), tmp_path) == "conveyor run --source "


def test_build_ids_and_job_names_come_from_the_coordinator(
    cluster: Cluster, tmp_path: Path
) -> None:
    pipeline = write_pipeline(
        tmp_path,
        "p.yml",
        "name: p\nimage: conveyor/busybox\njobs:\n"
        "  compile:\n    steps: [{run: 'true'}]\n"
        "  unit-tests:\n    needs: [compile]\n    steps: [{run: 'true'}]\n",
    )
    ids = []
    for _ in range(2):  # no agent: they stay queued, which is all completion needs
        result = cluster.cli("run", str(pipeline), "--no-follow", "--json")
        assert result.returncode == 0, result.stderr.decode()
        ids.append(str(json.loads(result.stdout)["id"]))
    # A loaded machine takes longer than the second a Tab press is given to start Python.
    patient = {"CONVEYOR_COMPLETE_LIMIT": "60"}
    env = _env(tmp_path, CONVEYOR_ADDR=cluster.address, CONVEYOR_TOKEN=CLIENT_TOKEN, **patient)
    assert sorted(bash("conveyor logs ", env)) == sorted(ids)
    assert bash(f"conveyor logs {ids[0]} ", env) == ["compile", "unit-tests"]
    assert bash(f"conveyor retry {ids[1]} un", env) == ["unit-tests"]
    # The connection flags typed on the line are the ones asked with.
    elsewhere = _env(tmp_path, **patient)
    line = f"conveyor show --coordinator {cluster.address} --token {CLIENT_TOKEN} "
    assert sorted(bash(line, elsewhere)) == sorted(ids)
    if shutil.which("zsh"):
        typed = zsh(f"conveyor logs {ids[0]} un\t", env, tmp_path)
        assert typed == f"conveyor logs {ids[0]} unit-tests "
    if shutil.which("fish"):
        assert sorted(fish("conveyor show ", env)) == sorted(ids)
        assert fish(f"conveyor approve {ids[0]} ", env) == ["compile", "unit-tests"]


def test_complete_gives_up_silently_on_a_server_that_never_answers(tmp_path: Path) -> None:
    # Accepts connections (the kernel's backlog) and never speaks: a call would hang.
    with socket.socket() as mute:
        mute.bind(("127.0.0.1", 0))
        mute.listen(8)
        address = f"127.0.0.1:{mute.getsockname()[1]}"
        started = time.monotonic()
        done = subprocess.run(
            ["conveyor", "__complete", "builds", "--coordinator", address, "--token", "t"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env=_env(tmp_path),
        )
        took = time.monotonic() - started
    assert (done.returncode, done.stdout, done.stderr) == (1, "", "")
    # Far above its one-second limit, far below gRPC's own connect timeout (20 s).
    assert took < 15, took
    assert bash("conveyor logs ", _env(tmp_path, CONVEYOR_ADDR=address)) == []
