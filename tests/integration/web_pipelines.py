"""The pipelines the web view's browser tests run (all on shell agents)."""

from __future__ import annotations

from pathlib import Path

HUGE_BYTES = 100_000_000

HUGE = f"""
name: huge
image: any
jobs:
  flood:
    labels: {{executor: shell}}
    steps: [{{name: flood, run: "yes line | head -c {HUGE_BYTES}"}}]
"""


def waits_for(gate: Path) -> str:
    """Waits for `gate` to exist (two minutes at most, so a failed test leaves no endless step)."""
    return f"i=0; while [ ! -e {gate} ] && [ $i -lt 1200 ]; do sleep 0.1; i=$((i+1)); done"


def talking(gate: Path) -> str:
    return f"""
name: talk
image: any
jobs:
  talk:
    labels: {{executor: shell}}
    steps:
      - name: speak
        run: |
          printf '\\033[31mred alert\\033[0m plain \\033[1;92mbright\\033[0m\\n'
          for i in 1 2 3 4 5; do echo "line $i before"; done
          {waits_for(gate)}
          for i in 1 2 3 4 5 6 7 8 9 10; do echo "line $i after"; sleep 0.05; done
"""


def diamond(gate: Path) -> str:
    return f"""
name: diamond
image: any
jobs:
  compile:
    labels: {{executor: shell}}
    steps: [{{run: "{waits_for(gate)}"}}]
  unit:
    needs: [compile]
    labels: {{executor: shell}}
    steps: [{{run: "echo unit"}}]
  lint:
    needs: [compile]
    labels: {{executor: shell}}
    steps: [{{run: "echo lint"}}]
  package:
    needs: [unit, lint]
    labels: {{executor: shell}}
    steps: [{{run: "echo package"}}]
"""


GATED = """
name: release
image: any
jobs:
  build:
    labels: {executor: shell}
    steps: [{run: "echo built"}]
  ship-it:
    needs: [build]
    approval: {prompt: "Ship to staging?"}
  staging:
    needs: [ship-it]
    labels: {executor: shell}
    environment: staging
    steps: [{run: "echo deployed"}]
"""

DEPLOY = """
name: deploy
image: any
jobs:
  deploy:
    labels: {executor: shell}
    environment: production
    steps: [{run: "echo release"}]
"""
