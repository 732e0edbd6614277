"""Zipped dependencies: unpacked once into the temp folder, importable, never half a tree."""

from __future__ import annotations

import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from functions.dependencies import DEPENDENCIES_ZIP, unpack

pytestmark = pytest.mark.unit


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    root = tmp_path / "package"
    root.mkdir()
    with zipfile.ZipFile(root / DEPENDENCIES_ZIP, "w") as bundle:
        bundle.writestr("zipped_only_module/__init__.py", "VALUE = 42\n")
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))
    monkeypatch.setattr("tempfile.tempdir", None)  # re-read TMPDIR
    saved = list(sys.path)
    yield root
    sys.path[:] = saved
    sys.modules.pop("zipped_only_module", None)


def test_a_package_with_its_dependencies_zipped_imports_them_after_unpacking(package: Path) -> None:
    target = unpack(package)

    assert target is not None and target.parent == package.parent / "tmp" and sys.path[0] == str(target)
    import zipped_only_module  # type: ignore[import-not-found]

    assert zipped_only_module.VALUE == 42


def test_a_warm_container_reuses_the_unpacked_folder(package: Path) -> None:
    first = unpack(package)
    assert first is not None
    (first / "marker").write_text("kept")

    assert unpack(package) == first and (first / "marker").read_text() == "kept"
    assert sys.path.count(str(first)) == 1


def test_a_failed_extraction_leaves_no_folder_behind(package: Path) -> None:
    (package / DEPENDENCIES_ZIP).write_bytes(b"not a zip")

    with pytest.raises(zipfile.BadZipFile):
        unpack(package)
    assert list((package.parent / "tmp").iterdir()) == []


def test_without_a_zip_nothing_happens(tmp_path: Path) -> None:
    saved = list(sys.path)
    assert unpack(tmp_path) is None and sys.path == saved
