"""A tool's own virtual environment, built from its pinned requirements.

Tools whose pins conflict with the project's lock (checkov, the emulator, locust)
each get `.venv/<name>`; the tests and the load run share this one builder.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def tool_venv(name: str, requirements: Path, base_python: Path) -> Path:
    """The interpreter of `.venv/<name>`, a tool's own virtual environment built from its pinned requirements.

    Rebuilt only when the requirements or the base interpreter change (a stamp holds their hash).
    """
    venv = PROJECT_ROOT / ".venv" / name
    stamp = venv / ".requirements.sha256"
    digest = hashlib.sha256(requirements.read_bytes() + str(base_python).encode()).hexdigest()
    python = venv / "bin" / "python"
    if not (stamp.is_file() and stamp.read_text() == digest and python.exists()):
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([str(base_python), "-m", "venv", str(venv)], check=True, timeout=120)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r", str(requirements)],
            check=True, timeout=900,
        )  # fmt: skip
        stamp.write_text(digest)
    return python
