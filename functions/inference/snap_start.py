"""Lambda SnapStart: what a container restored from its version's snapshot makes afresh.

With SnapStart (stage setting `inference.snap_start`) Lambda runs the handler module's
init once, when a version is published, and snapshots the container: imports, the
live model's ONNX Runtime session, the resolver. A cold start then restores that
snapshot, possibly days later and in many containers at once. What belongs to one
moment or one container must not survive the restore:

- AWS clients: their pooled connections were open when the snapshot was taken, and
  the botocore session resolved its credentials then;
- the random state: every container restored from one snapshot would otherwise draw
  the same canary split and capture sample;
- the live pointer: a promotion made since the snapshot is read at the first request,
  not one refresh interval later.

The hook is registered with `snapshot_restore_py`, which Lambda's python3.12+ managed
runtimes provide; where it is absent (local runs) nothing is ever restored.
"""

from __future__ import annotations

import random

from functions.adapters import factory
from functions.core.telemetry import service_logger
from functions.inference.live_model import LiveModel


def after_restore(live_model: LiveModel) -> None:
    """Make the restored container's own clients and random state, and re-read the pointer at the next request."""
    factory.reset_clients()
    random.seed()  # from os.urandom: a different sequence in every restored container
    live_model.expire()
    service_logger(__name__).info("restored from a snapshot: new clients and random state; the pointer is re-read")


def register(live_model: LiveModel) -> bool:
    """Run `after_restore` when Lambda restores this container from a snapshot; False where nothing restores."""
    try:
        from snapshot_restore_py import register_after_restore
    except ModuleNotFoundError:
        return False
    register_after_restore(after_restore, live_model)
    return True
