"""MiniStack, the Docker-free AWS emulator the emulator tier deploys onto, as one process we own.

`emulator_python` builds the emulator's own virtual environment (Python 3.12, the
functions' runtime, where the machine has it) from the pinned requirements;
`Emulator` starts it on 127.0.0.1 at a free port with every temporary file in one
folder of its own, waits until it answers, and stops it by its pid (SIGTERM, then
SIGKILL), removing that folder, after success, failure or Ctrl-C alike.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from infra.bundling import find_runtime_interpreter
from tests.assembly import PROJECT_ROOT, tool_venv

REQUIREMENTS = Path(__file__).with_name("emulator-requirements.txt")
RUNTIME_PYTHON = "3.12"
START_TIMEOUT_SECONDS = 60
STOP_TIMEOUT_SECONDS = 10
# What the emulator passes on to the functions it runs: nothing of this machine's Python setup.
_KEPT_ENVIRONMENT = ("PATH", "HOME", "LANG", "LC_ALL")


def emulator_python() -> tuple[Path, str]:
    """The emulator venv's interpreter (built when its requirements changed) and its Python version."""
    base = find_runtime_interpreter(RUNTIME_PYTHON) or Path(shutil.which("python3") or "python3")
    python = tool_venv("emulator", REQUIREMENTS, base)
    version = subprocess.run(
        [str(python), "-c", "import platform; print(platform.python_version())"],
        capture_output=True, text=True, check=True, timeout=30,
    ).stdout.strip()  # fmt: skip
    return python, version


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class EmulatorError(RuntimeError):
    """The emulator did not start or answer; the message carries its last log lines."""


class Emulator:
    """One MiniStack process on 127.0.0.1, its log and temporary files under one folder."""

    def __init__(self, python: Path) -> None:
        self.python = python
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.workdir = Path(tempfile.mkdtemp(prefix="slipway-emulator-"))
        self.log_path = self.workdir / "emulator.log"
        self._process: subprocess.Popen[bytes] | None = None
        self.stopped_group: int | None = None

    def start(self) -> None:
        tmp = self.workdir / "tmp"
        tmp.mkdir()
        env = {key: os.environ[key] for key in _KEPT_ENVIRONMENT if key in os.environ}
        env.update(
            BIND_HOST="127.0.0.1",
            GATEWAY_PORT=str(self.port),
            TMPDIR=str(tmp),
            S3_DATA_DIR=str(tmp / "s3"),
            # CDK's Node custom resource (bucket auto-delete) needs the AWS SDK the Lambda Node runtime has.
            NODE_PATH=str(PROJECT_ROOT / "node_modules"),
            AWS_ACCESS_KEY_ID="test",
            AWS_SECRET_ACCESS_KEY="test",
            AWS_DEFAULT_REGION="us-east-1",
            POWERTOOLS_TRACE_DISABLED="1",
        )
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                [str(self.python), "-m", "ministack"], env=env, cwd=self.workdir,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        atexit.register(self.stop)
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise EmulatorError(f"the emulator exited with {self._process.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.endpoint}/_ministack/health", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                time.sleep(0.25)
        raise EmulatorError(f"the emulator did not answer within {START_TIMEOUT_SECONDS} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 40, containing: str | None = None) -> str:
        """The emulator's last log lines (those `containing` a text, if given)."""
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no emulator log)"
        if containing:
            text = [line for line in text if containing in line]
        return "\n".join(text[-lines:])

    def stop(self) -> None:
        """Stop the emulator's whole process group by its pid and remove its folder; safe to call twice."""
        process, self._process = self._process, None
        if process is not None:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=STOP_TIMEOUT_SECONDS)
            # Whatever of its group is left (the workers running functions, or a main process held by a
            # pending custom-resource wait) goes now.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=STOP_TIMEOUT_SECONDS)
            self.stopped_group = process.pid
        shutil.rmtree(self.workdir, ignore_errors=True)

    def left_running(self, grace_seconds: float = 10.0) -> bool:
        """Whether a process of the stopped emulator's group is still alive after `grace_seconds`.

        SIGKILL is delivered asynchronously: on a loaded machine the group's last workers can take a
        moment to die and be reaped, so the check waits for them (bounded) before it says they outlived it.
        """
        if self.stopped_group is None:
            return False
        deadline = time.monotonic() + grace_seconds
        while True:
            try:
                os.killpg(self.stopped_group, 0)
            except ProcessLookupError:
                return False
            if time.monotonic() >= deadline:
                return True
            time.sleep(0.1)
