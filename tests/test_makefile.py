"""The Makefile's targets: each says what it does in `make help`, and `make test` lints first."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parent.parent


def test_make_help_lists_every_target_with_what_it_does() -> None:
    makefile = (ROOT / "Makefile").read_text()
    phony = re.search(r"^\.PHONY: (.+)$", makefile, re.MULTILINE)
    assert phony is not None
    listed = subprocess.run(["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    described = dict(re.findall(r"^  make (\S+) +(.+)$", listed, re.MULTILINE))
    assert set(phony.group(1).split()) == set(described)
    assert all(len(text) > 10 for text in described.values())


def test_make_test_runs_the_linters_first() -> None:
    dry = subprocess.run(["make", "-n", "-W", ".venv/.installed", "test"], cwd=ROOT, capture_output=True, text=True)
    commands = [line for line in dry.stdout.splitlines() if line.startswith(".venv/bin/")]
    assert [c.split()[0] for c in commands][:4] == [
        ".venv/bin/ruff", ".venv/bin/ruff", ".venv/bin/mypy", ".venv/bin/python",
    ], commands  # fmt: skip
