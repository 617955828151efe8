#!/usr/bin/env python3
"""Generates conveyor/v1 from proto/conveyor/v1/*.proto; `--check` fails if committed code is stale.

The only way conveyor/v1 changes. The generator versions are pinned in pyproject's `dev` extra.
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "proto"
OUT_PACKAGE = Path("conveyor") / "v1"
INIT_TEXT = '"""Generated gRPC code for conveyor.v1 (scripts/gen_protos.py); do not edit."""\n'


def generate(out_root: Path) -> None:
    bin_dir = Path(sys.executable).parent
    protos = sorted(
        str(p.relative_to(PROTO_DIR)) for p in (PROTO_DIR / "conveyor" / "v1").glob("*.proto")
    )
    command = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"-I{PROTO_DIR}",
        f"--plugin=protoc-gen-mypy={bin_dir / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={bin_dir / 'protoc-gen-mypy_grpc'}",
        f"--python_out={out_root}",
        f"--grpc_python_out={out_root}",
        f"--mypy_out={out_root}",
        f"--mypy_grpc_out={out_root}",
        *protos,
    ]
    # protoc-gen-mypy reports each file it writes on stderr; keep only real errors.
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.stderr.write(result.stderr)
        raise SystemExit(f"gen_protos: protoc failed with exit code {result.returncode}")
    (out_root / OUT_PACKAGE / "__init__.py").write_text(INIT_TEXT)


def generated_files(root: Path) -> set[str]:
    return {p.name for p in (root / OUT_PACKAGE).iterdir() if p.suffix in {".py", ".pyi"}}


def check() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp)
        generate(fresh)
        expected, actual = generated_files(fresh), generated_files(ROOT)
        stale = sorted(expected ^ actual)
        for name in sorted(expected & actual):
            if not filecmp.cmp(
                fresh / OUT_PACKAGE / name, ROOT / OUT_PACKAGE / name, shallow=False
            ):
                stale.append(name)
    if stale:
        print(
            f"gen_protos: stale generated code in {OUT_PACKAGE}: {', '.join(stale)}",
            file=sys.stderr,
        )
        print(
            "gen_protos: run `python scripts/gen_protos.py` and commit the result", file=sys.stderr
        )
        return 1
    print("gen_protos: generated code is up to date")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if the committed code is stale")
    args = parser.parse_args()
    if args.check:
        return check()
    target = ROOT / OUT_PACKAGE
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    generate(ROOT)
    print(f"gen_protos: wrote {OUT_PACKAGE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
