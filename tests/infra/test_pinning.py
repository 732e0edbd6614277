"""Requirements files carry the sha256 of every file pip may install, and builds refuse anything else.

The rewriting and the wheel filter run against a stub index; the build tests run the real
pip on a one-package spec, recording the commands the build runs.
"""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path
from typing import Any

import pytest

from infra.bundling import INFERENCE_PACKAGE, BundlingError, PackageSpec, build_package
from infra.monitoring import MONITOR_PACKAGE
from infra.pinning import (
    DEPENDENCIES_MARKER,
    PINNED_FILES,
    Index,
    PinError,
    lambda_tags,
    pin_file,
    pin_recipe,
    read_pins,
    require_hashes,
)
from infra.retrain import CONTROL_PACKAGE, TRAINING_PACKAGE
from infra.rollout import ROLLOUT_PACKAGE
from infra.sagemaker import REQUIREMENTS as SAGEMAKER_REQUIREMENTS

pytestmark = pytest.mark.infra

PACKAGES = (INFERENCE_PACKAGE, MONITOR_PACKAGE, ROLLOUT_PACKAGE, TRAINING_PACKAGE, CONTROL_PACKAGE)
SIX = "six==1.17.0"
# The sha256 of six 1.17.0's one wheel (py2.py3-none-any), as the index lists it.
SIX_WHEEL = "4721f391ed90541fddacab5acf947aa0d3dc7d27b2e1e8eda2be8970586c3274"


class StubIndex(Index):
    """An index whose projects are the given (file name, sha256) lists."""

    def __init__(self, projects: dict[str, list[tuple[str, str]]]) -> None:
        super().__init__("https://index.invalid/simple")
        self.projects = projects

    def files(self, name: str) -> list[tuple[str, str]]:
        return self.projects[name]


def _digest(character: str) -> str:
    return character * 64


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


NUMPY_FILES = [
    ("numpy-2.4.6-cp312-cp312-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl", _digest("a")),
    ("numpy-2.4.6-cp313-cp313-manylinux_2_27_aarch64.manylinux_2_28_aarch64.whl", _digest("b")),
    ("numpy-2.4.6-cp312-cp312-macosx_14_0_arm64.whl", _digest("c")),
    ("numpy-2.4.6-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl", _digest("d")),
    ("numpy-2.4.6-cp314-cp314t-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl", _digest("e")),
    ("numpy-2.4.6-cp312-cp312-musllinux_1_2_x86_64.whl", _digest("f")),
    ("numpy-2.4.6.tar.gz", _digest("0")),
    ("numpy-2.4.5-cp312-cp312-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl", _digest("1")),
]
STUB = StubIndex({
    "numpy": NUMPY_FILES,
    "six": [("six-1.17.0-py2.py3-none-any.whl", _digest("2")), ("six-1.17.0.tar.gz", _digest("3"))],
    "pyarrow": [("pyarrow-26.0.1-cp313-abi3-manylinux_2_28_aarch64.whl", _digest("4"))],
})  # fmt: skip


def test_only_the_wheels_lambda_can_install_are_pinned_and_the_file_keeps_its_comments(tmp_path: Path) -> None:
    path = tmp_path / "requirements.txt"
    path.write_text("# Slipway's set\nnumpy==2.4.6  # arrays\n\nsix==1.17.0\npyarrow==26.0.1\n")

    assert pin_file(path, STUB, tags=lambda_tags()) == ["numpy==2.4.6", "six==1.17.0", "pyarrow==26.0.1"]

    assert path.read_text() == (
        "# Slipway's set\n# arrays\nnumpy==2.4.6 \\\n"
        f"    --hash=sha256:{_digest('a')} \\\n    --hash=sha256:{_digest('b')}\n\n"
        f"six==1.17.0 \\\n    --hash=sha256:{_digest('2')}\n"
        f"pyarrow==26.0.1 \\\n    --hash=sha256:{_digest('4')}\n"
    ), "CPython 3.12-3.14 manylinux wheels, pure and abi3 ones; not macOS, musl, 3.11, free-threaded or the sdist"
    assert pin_file(path, STUB, tags=lambda_tags()) == [], "pinning again changes nothing"
    assert [(pin.name, pin.version, len(pin.hashes)) for pin in read_pins(path)] == [
        ("numpy", "2.4.6", 2), ("six", "1.17.0", 1), ("pyarrow", "26.0.1", 1),
    ]  # fmt: skip


def test_a_recipe_s_file_pins_every_file_of_a_release_and_its_dependencies_below_the_marker(tmp_path: Path) -> None:
    path = tmp_path / "requirements.txt"
    path.write_text(f"numpy==2.4.6\n\n{DEPENDENCIES_MARKER}\nsix==1.16.0 \\\n    --hash=sha256:{_digest('9')}\n")
    [six] = read_pins(_write(tmp_path / "six.txt", "six==1.17.0\n"))

    pin_file(path, STUB, tags=None, dependencies=[six])

    pins = read_pins(path)
    assert [(pin.name, pin.version) for pin in pins] == [("numpy", "2.4.6"), ("six", "1.17.0")], "the old section goes"
    assert len(pins[0].hashes) == 7 and _digest("0") in pins[0].hashes, "every file of 2.4.6, the sdist included"


def test_a_requirement_that_is_not_one_exact_version_cannot_be_pinned(tmp_path: Path) -> None:
    path = tmp_path / "requirements.txt"
    for line, message in [
        ("numpy>=2.4\n", "must pin one exact version"),
        ("--index-url https://elsewhere.invalid\n", "only `name==version` requirements"),
        ("numpy==2.*\n", "must pin one exact version"),
    ]:
        path.write_text(line)
        with pytest.raises(PinError, match=message):
            read_pins(path)


def test_a_release_without_a_lambda_wheel_is_refused_naming_it(tmp_path: Path) -> None:
    path = _write(tmp_path / "requirements.txt", "numpy==2.4.5\n")
    index = StubIndex({"numpy": [("numpy-2.4.5-cp312-cp312-macosx_14_0_arm64.whl", _digest("5"))]})
    with pytest.raises(PinError, match=r"numpy==2\.4\.5: https://index\.invalid/simple lists no wheel for Lambda"):
        pin_file(path, index, tags=lambda_tags())


@pytest.mark.parametrize("spec", PACKAGES, ids=lambda spec: spec.name)
def test_every_requirement_a_package_installs_carries_its_hashes(spec: PackageSpec) -> None:
    for path in (spec.requirements, *spec.extra_requirements):
        assert path in PINNED_FILES, f"{path} is installed by the {spec.name} package but `make pin` skips it"
        require_hashes(path)
        for pin in read_pins(path):
            assert pin.hashes, f"{path}:{pin.line} {pin.name}"


def test_the_sagemaker_archive_s_requirements_are_pinned_files() -> None:
    for path in SAGEMAKER_REQUIREMENTS:
        assert path in PINNED_FILES
        require_hashes(path)


# A package small enough to build in a second: `six`, nothing of Slipway's sources.
def _spec(requirements: Path) -> PackageSpec:
    return dataclasses.replace(
        INFERENCE_PACKAGE, name="probe", sources=(), requirements=requirements, compile_bytecode=False
    )


@pytest.fixture
def commands(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Every command the build runs, as it runs them."""
    ran: list[list[str]] = []
    real_run = subprocess.run

    def record(command: list[str], *args: Any, **kwargs: Any) -> Any:
        ran.append([str(part) for part in command])
        return real_run(command, *args, **kwargs)

    monkeypatch.setattr("infra.bundling.subprocess.run", record)
    return ran


def _pip_installs(commands: list[list[str]]) -> list[list[str]]:
    return [command for command in commands if command[1:4] == ["-m", "pip", "install"]]


def test_a_build_installs_with_require_hashes_the_files_its_requirements_pin(
    tmp_path: Path, commands: list[list[str]]
) -> None:
    recipe = _write(tmp_path / "recipe.txt", f"six==1.17.0 --hash=sha256:{SIX_WHEEL}\n")
    spec = dataclasses.replace(
        _spec(_write(tmp_path / "requirements.txt", f"{SIX} \\\n    --hash=sha256:{SIX_WHEEL}\n")),
        extra_requirements=(recipe,),
    )

    build_package(spec, tmp_path / "package", architecture="x86_64", runtime="python3.12")

    assert (tmp_path / "package" / "six.py").is_file()
    installs = _pip_installs(commands)
    assert len(installs) == 2, "Slipway's set, then the recipe's"
    for command in installs:
        assert "--require-hashes" in command and "--no-deps" in command, command


def test_a_requirement_without_a_hash_is_refused_naming_the_file_and_the_command(
    tmp_path: Path, commands: list[list[str]]
) -> None:
    requirements = _write(tmp_path / "requirements.txt", f"{SIX}\n")
    with pytest.raises(BundlingError, match=r"requirements\.txt: six==1\.17\.0 carries no --hash.*run `make pin`"):
        build_package(_spec(requirements), tmp_path / "package", architecture="x86_64", runtime="python3.12")
    assert _pip_installs(commands) == [], "refused before pip runs"


def test_a_tampered_hash_fails_the_build(tmp_path: Path, commands: list[list[str]]) -> None:
    requirements = _write(tmp_path / "requirements.txt", f"{SIX} --hash=sha256:{_digest('0')}\n")
    with pytest.raises(BundlingError, match=r"(?s)DO NOT MATCH THE HASHES.*Expected sha256 0{64}.*run `make pin`"):
        build_package(_spec(requirements), tmp_path / "package", architecture="x86_64", runtime="python3.12")
    [install] = _pip_installs(commands)
    assert "--require-hashes" in install
    assert not (tmp_path / "package" / "six.py").exists()


def test_make_pin_closes_a_recipe_with_what_its_requirements_need_beyond_slipway_s_set(tmp_path: Path) -> None:
    """pip's resolver for every Lambda target, against the real index: requests brings four packages Slipway lacks."""
    recipe = _write(tmp_path / "requirements.txt", "# the recipe's\nrequests==2.32.3\n")

    pin_recipe(recipe, Index())

    text = recipe.read_text()
    assert text.startswith("# the recipe's\nrequests==2.32.3 \\\n")
    own, dependencies = text.split(DEPENDENCIES_MARKER)
    assert [pin.name for pin in read_pins(_write(tmp_path / "own.txt", own))] == ["requests"]
    pins = read_pins(_write(tmp_path / "dependencies.txt", dependencies))
    assert [pin.name for pin in pins] == ["certifi", "charset-normalizer", "idna", "urllib3"]
    assert all(pin.hashes for pin in pins)
    require_hashes(recipe)
