"""`conveyor lint`: every problem of every file at once, exit 0 or 2, offline."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

CLI = [sys.executable, "-m", "conveyor.cli.main"]

VALID = (
    "name: ok\njobs:\n  a:\n    steps: [{run: 'true'}]\n"
    "  b:\n    needs: [a]\n    steps: [{run: 'true'}]\n"
)
# Problems in several jobs and at several levels: each must be reported, not just the first.
BROKEN = """\
name: shop
jobs:
  build:
    timout: 5m
    steps:
      - run: echo hi
        step: x
  test:
    needs: [buld]
    retry: {max: -1}
    steps:
      - run: 5
"""


def _lint(*args: str) -> subprocess.CompletedProcess[str]:
    # No coordinator anywhere: an address nothing listens on would fail any call to one.
    env = {"CONVEYOR_ADDR": "127.0.0.1:1", "PATH": ""}
    return subprocess.run(
        [*CLI, "lint", *args], capture_output=True, text=True, timeout=120, check=False, env=env
    )


def _files(tmp_path: Path) -> tuple[str, str]:
    (tmp_path / "ok.yml").write_text(VALID)
    (tmp_path / "broken.yml").write_text(BROKEN)
    return str(tmp_path / "ok.yml"), str(tmp_path / "broken.yml")


def test_valid_files_get_one_ok_line_each_and_exit_0(tmp_path: Path) -> None:
    ok, _ = _files(tmp_path)
    image_less = tmp_path / "image-less.yml"
    image_less.write_text("name: plain\njobs:\n  x:\n    steps: [{run: 'true'}]\n")
    done = _lint(ok, str(image_less))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"{ok}: OK (pipeline 'ok', 2 jobs)",
        f"{image_less}: OK (pipeline 'plain', 1 job)",
    ]


def test_every_problem_of_every_file_is_listed_and_exit_is_2(tmp_path: Path) -> None:
    ok, broken = _files(tmp_path)
    missing = str(tmp_path / "missing.yml")
    done = _lint(broken, ok, missing)
    assert done.returncode == 2, done.stderr
    assert done.stdout.splitlines() == [
        f"{broken}:4:5: jobs.build.timout: unknown key 'timout' in job 'build' "
        "(did you mean 'timeout'?)",
        f"{broken}:7:9: jobs.build.steps[0].step: unknown key 'step' in step 1 of job 'build' "
        "(allowed: name, run, image, env, timeout, user)",
        f"{broken}:9:13: jobs.test.needs[0]: unknown job 'buld' (did you mean 'build'?)",
        f"{broken}:10:18: jobs.test.retry.max: expected an integer from 0 to 10, got -1",
        f"{broken}:12:14: jobs.test.steps[0].run: expected a string, got an integer",
        f"{ok}: OK (pipeline 'ok', 2 jobs)",
        f"{missing}: cannot read: No such file or directory",
    ]


def test_a_yaml_syntax_error_names_its_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "syntax.yml"
    path.write_text("name: x\njobs:\n  a:\n    steps: [{run: 'true'}\n")
    done = _lint(str(path))
    assert done.returncode == 2
    (line,) = done.stdout.splitlines()
    assert line.startswith(f"{path}:5:1: invalid YAML: ")


def test_json_gives_a_document_per_file(tmp_path: Path) -> None:
    ok, broken = _files(tmp_path)
    done = _lint("--json", ok, broken)
    assert done.returncode == 2
    first, second = json.loads(done.stdout)
    assert first == {"file": ok, "valid": True, "name": "ok", "jobs": ["a", "b"], "problems": []}
    assert (second["file"], second["valid"], second["name"]) == (broken, False, None)
    assert len(second["problems"]) == 5
    assert second["problems"][2] == {
        "line": 9,
        "column": 13,
        "path": "jobs.test.needs[0]",
        "message": "unknown job 'buld' (did you mean 'build'?)",
    }
