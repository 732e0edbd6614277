"""Work a test keeps going on a daemon thread while it does something else (traffic while a rollout bakes)."""

from __future__ import annotations

import threading
from typing import Self


class BackgroundLoop:
    """Runs `loop` on a daemon thread from the start of the `with` block to its end, when `stopped` is set."""

    def __init__(self, *, join_seconds: float = 30) -> None:
        self.stopped = threading.Event()
        self._join_seconds = join_seconds
        self._thread = threading.Thread(target=self.loop, daemon=True)

    def loop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stopped.set()
        self._thread.join(timeout=self._join_seconds)
