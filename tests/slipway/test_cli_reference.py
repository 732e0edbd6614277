"""docs/cli.md is the command's own parser, rendered."""

from __future__ import annotations

import pytest

from slipway.cli_reference import REFERENCE, render

pytestmark = pytest.mark.unit


def test_the_command_reference_is_generated_from_the_parser() -> None:
    assert REFERENCE.read_text() == render(), "docs/cli.md is stale: run python -m slipway.cli_reference"


def test_each_command_has_its_section_with_its_options() -> None:
    page = render()
    assert "| [`erase-key`](#erase-key) |" in page and "\n## erase-key\n" in page
    train = page.split("\n## train\n")[1].split("\n## ")[0]
    assert "| `--out DIR` |  |" in train and "| `--reason REASON` | `trained by hand` |" in train
