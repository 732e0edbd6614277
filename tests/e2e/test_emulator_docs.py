"""What the emulator tier cannot cover is listed in docs/deploy.md, the same list its summary prints."""

from __future__ import annotations

from tests.assembly import PROJECT_ROOT
from tests.e2e.tier import LIMITS


def test_every_limit_of_the_summary_is_in_the_deploy_docs() -> None:
    section = (PROJECT_ROOT / "docs" / "deploy.md").read_text().split("## What the emulator tier proves", 1)[1]
    for name in LIMITS:
        assert f"**{name}**" in section, f"docs/deploy.md does not list {name!r}"
