"""Dependencies shipped zipped: unpacked once per container to the temp folder, then importable.

A package whose installed requirements exceed Lambda's 250 MB unzipped limit (the
training steps: scikit-learn, SciPy, pandas, skl2onnx, ONNX Runtime) carries them as
`dependencies.zip` at its root; Lambda counts the zip's compressed bytes. The first
import of `functions` in a container extracts it to `<temp>/slipway-dependencies-<hash>`
(into a fresh folder, renamed when complete, so a crash mid-way never leaves half a
tree) and puts it first on `sys.path`. A warm container, whose /tmp survives, finds it
there. Without the zip (local runs, tests, the other functions) nothing happens.

Standard library only: it runs before anything else can be imported.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path

DEPENDENCIES_ZIP = "dependencies.zip"
_PACKAGE_ROOT = Path(__file__).resolve().parent.parent


def unpack(root: Path = _PACKAGE_ROOT) -> Path | None:
    """Make the zipped dependencies under `root` importable; their folder, or None without a zip."""
    archive = root / DEPENDENCIES_ZIP
    if not archive.is_file():
        return None
    stat = archive.stat()
    stamp = hashlib.sha256(f"{archive}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    target = Path(tempfile.gettempdir()) / f"slipway-dependencies-{stamp}"
    if not target.is_dir():
        partial = Path(tempfile.mkdtemp(prefix=f"{target.name}.", dir=target.parent))
        try:
            with zipfile.ZipFile(archive) as bundle:
                bundle.extractall(partial)
            os.replace(partial, target)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            if not target.is_dir():  # else another process finished first: use its folder
                raise
    if str(target) not in sys.path:
        sys.path.insert(0, str(target))
    return target
