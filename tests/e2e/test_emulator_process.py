"""The emulator process itself: it binds 127.0.0.1 only, and nothing of it outlives `stop`, started or not."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.e2e.emulator import Emulator, EmulatorError, emulator_python


def test_the_emulator_answers_on_loopback_only_and_leaves_nothing_behind() -> None:
    python, _ = emulator_python()
    emulator = Emulator(python)
    try:
        emulator.start()
        with socket.create_connection(("127.0.0.1", emulator.port), timeout=5):
            pass
        listening = Path("/proc/net/tcp").read_text().splitlines()[1:]
        ours = [line.split()[1] for line in listening if line.split()[1].endswith(f":{emulator.port:04X}")]
        assert ours and all(address.startswith("0100007F:") for address in ours), ours  # 127.0.0.1
    finally:
        emulator.stop()
    assert not emulator.workdir.exists()
    assert not emulator.left_running()


def test_an_emulator_that_dies_at_start_is_reported_with_its_log_and_cleaned_up(tmp_path: Path) -> None:
    broken = tmp_path / "python"
    broken.write_text("#!/bin/sh\necho 'cannot start' >&2\nexit 3\n")
    broken.chmod(0o755)
    emulator = Emulator(broken)
    with pytest.raises(EmulatorError, match="exited with 3") as failure:
        emulator.start()
    assert "cannot start" in str(failure.value)
    emulator.stop()
    assert not emulator.workdir.exists()
    assert not emulator.left_running()
