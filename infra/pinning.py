"""The sha256 of every file pip may install from a package build's requirements (`make pin`).

Every requirements file that a Lambda package (or the SageMaker job's source archive)
installs pins `name==version` with `--hash=sha256:...` lines, and every build runs pip
with `--require-hashes`: a file from the index that is not one of the pinned files stops
the build. `pin_file` rewrites a requirements file in place with those hashes, keeping
its comments and order; `python -m infra.pinning` (`make pin`) does it for every file in
`PINNED_FILES`, and is what to run after changing a version or adding a requirement.

Why not pip-compile, `uv pip compile --generate-hashes` or hashin: Slipway's files are
hand-kept closures installed with --no-deps. They leave out what the Lambda runtime
provides (boto3, botocore) and name what a package imports without declaring it
(`packaging` for onnxmltools), so re-resolving them from top-level names, as the compilers
do, would change what ships; they also rewrite the file and drop its comments. hashin
keeps the file but takes every package on its command line and cannot filter wheels by
platform, so a file would carry every macOS and Windows wheel of numpy. The hashes here
are read from the index's JSON API (PEP 691, what pip reads), for the wheels that fit
Lambda's Python versions and architectures (`lambda_targets`); the recipe's own
`model/requirements.txt`, which `make install` also installs into the developer's venv
on any OS, gets every file of each release.

The recipe's file is installed with --no-deps too, so `make pin` closes it: it asks pip's
resolver (a dry run for each Lambda target, held to Slipway's training set) what its
requirements need that Slipway's set lacks, and pins those below a marker line that it
rewrites each time.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import get_args

from packaging.requirements import InvalidRequirement, Requirement
from packaging.tags import Tag, compatible_tags, cpython_tags
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import Version

from stage.settings import InferenceSettings

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PIN_COMMAND = "make pin"
INDEX_URL = "https://pypi.org/simple"
RECIPE_REQUIREMENTS = PROJECT_ROOT / "model" / "requirements.txt"
TRAINING_REQUIREMENTS = PROJECT_ROOT / "functions" / "retrain" / "requirements.txt"
# Every requirements file a package build installs (tests check it against the packages' specs).
PINNED_FILES = (
    PROJECT_ROOT / "functions" / "inference" / "requirements.txt",
    PROJECT_ROOT / "functions" / "monitor" / "requirements.txt",
    PROJECT_ROOT / "functions" / "retrain" / "control-requirements.txt",
    TRAINING_REQUIREMENTS,
    RECIPE_REQUIREMENTS,
)
# Below this line of the recipe's file, `make pin` writes what its requirements need beyond Slipway's set.
DEPENDENCIES_MARKER = "# Needed by the requirements above, beyond Slipway's set (written by `make pin`, do not edit):"
PIP_ARCH = {"arm64": "aarch64", "x86_64": "x86_64"}
_HASH = re.compile(r"--hash[=\s]+sha256:([0-9a-fA-F]{64})")
_COMMENT = re.compile(r"(^|\s+)#.*$")


class PinError(ValueError):
    """A requirements file cannot be pinned or installed with hashes; the message says which and why."""


@dataclass(frozen=True)
class Pin:
    """One `name==version` requirement of a file, with the hashes it carries."""

    name: str
    version: str
    marker: str
    hashes: tuple[str, ...]
    line: int


@dataclass(frozen=True)
class _Entry:
    """A logical line of a requirements file: its physical lines and, for a requirement, its pin."""

    lines: tuple[str, ...]
    pin: Pin | None
    comment: str


def pip_platform_args(architecture: str) -> list[str]:
    """pip's --platform options for Lambda's `architecture` ('arm64' or 'x86_64')."""
    try:
        arch = PIP_ARCH[architecture]
    except KeyError as exc:
        raise PinError(f"unsupported architecture {architecture!r}: expected one of {sorted(PIP_ARCH)}") from exc
    # Name every compatible tag: with only one, pip silently picks older pure-Python releases.
    tags = (f"manylinux_2_28_{arch}", f"manylinux_2_17_{arch}", f"manylinux2014_{arch}")
    return [arg for tag in tags for arg in ("--platform", tag)]


def lambda_targets() -> list[tuple[str, str]]:
    """(Python version, architecture) of every Lambda runtime a stage may name: ('3.12', 'arm64'), ..."""
    runtimes = get_args(InferenceSettings.model_fields["runtime"].annotation)
    return [(runtime.removeprefix("python"), architecture) for runtime in runtimes for architecture in PIP_ARCH]


def lambda_tags() -> frozenset[Tag]:
    """Every wheel tag a Lambda target accepts, on any manylinux glibc (the SageMaker container may pick newer)."""
    tags: set[Tag] = set()
    for version, architecture in lambda_targets():
        arch = PIP_ARCH[architecture]
        platforms = [f"manylinux_2_{minor}_{arch}" for minor in range(50, 4, -1)]
        platforms += [f"manylinux{legacy}_{arch}" for legacy in ("2014", "2010", "1")]
        python = tuple(int(part) for part in version.split("."))
        interpreter = f"cp{python[0]}{python[1]}"
        tags.update(cpython_tags(python, abis=[interpreter], platforms=platforms))
        tags.update(compatible_tags(python, interpreter, platforms))
    return frozenset(tags)


def read_pins(path: Path) -> list[Pin]:
    """The `name==version` requirements of `path`; PinError for a line that is not one (options, ranges, URLs)."""
    return [entry.pin for entry in _entries(path) if entry.pin is not None]


def unhashed_pins(path: Path) -> list[str]:
    """`name==version` of each requirement of `path` that carries no hash."""
    return [f"{pin.name}=={pin.version}" for pin in read_pins(path) if not pin.hashes]


def require_hashes(path: Path) -> None:
    """Refuse a requirements file with a requirement that has no hash, naming the file and the command to run."""
    missing = unhashed_pins(path)
    if missing:
        where = path.relative_to(PROJECT_ROOT) if path.is_relative_to(PROJECT_ROOT) else path
        raise PinError(
            f"{where}: {', '.join(missing)} carr{'ies' if len(missing) == 1 else 'y'} no --hash, and packages are "
            f"installed with --require-hashes: run `{PIN_COMMAND}` to add the hashes (docs/retrain.md)"
        )


def _entries(path: Path) -> list[_Entry]:
    entries: list[_Entry] = []
    physical = path.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(physical):
        start = index
        lines = [physical[index]]
        while lines[-1].rstrip().endswith("\\") and index + 1 < len(physical):
            index += 1
            lines.append(physical[index])
        index += 1
        comments = [match.group(0).strip() for line in lines if (match := _COMMENT.search(line))]
        text = " ".join(_COMMENT.sub("", line).rstrip().removesuffix("\\") for line in lines).strip()
        if not text:
            entries.append(_Entry(tuple(lines), None, ""))
            continue
        entries.append(_Entry(tuple(lines), _parse_pin(path, start + 1, text), " ".join(comments)))
    return entries


def _parse_pin(path: Path, line: int, text: str) -> Pin:
    hashes = tuple(sorted({digest.lower() for digest in _HASH.findall(text)}))
    spec = _HASH.sub("", text).strip()
    where = f"{path}:{line}"
    if spec.startswith("-"):
        raise PinError(f"{where}: {spec!r}: only `name==version` requirements (with --hash options) are supported")
    try:
        requirement = Requirement(spec)
    except InvalidRequirement as exc:
        raise PinError(f"{where}: {spec!r} is not a requirement ({exc})") from exc
    specifiers = list(requirement.specifier)
    if requirement.url or len(specifiers) != 1 or specifiers[0].operator != "==" or "*" in specifiers[0].version:
        raise PinError(f"{where}: {spec!r} must pin one exact version (name==version) to be installed with hashes")
    marker = f" ; {requirement.marker}" if requirement.marker else ""
    extras = f"[{','.join(sorted(requirement.extras))}]" if requirement.extras else ""
    return Pin(f"{requirement.name}{extras}", specifiers[0].version, marker, hashes, line)


class Index:
    """The files of each release on a PEP 691 index, read once per project."""

    def __init__(self, url: str = INDEX_URL) -> None:
        self.url = url.rstrip("/")
        self._projects: dict[str, list[tuple[str, str]]] = {}

    def files(self, name: str) -> list[tuple[str, str]]:
        """(file name, sha256) of every file of project `name`."""
        project = canonicalize_name(name.split("[", 1)[0])
        if project not in self._projects:
            request = urllib.request.Request(
                f"{self.url}/{project}/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
            )
            try:
                with urllib.request.urlopen(request, timeout=60) as response:
                    page = json.load(response)
            except OSError as exc:
                raise PinError(f"cannot read {project}'s files from {self.url}: {exc}") from exc
            self._projects[project] = [
                (file["filename"], file["hashes"]["sha256"]) for file in page["files"] if "sha256" in file["hashes"]
            ]
        return self._projects[project]

    def hashes(self, pin: Pin, *, tags: frozenset[Tag] | None) -> list[str]:
        """The sha256 of each file of `pin`'s release that fits `tags` (None: every file, sdists included)."""
        project, version = canonicalize_name(pin.name.split("[", 1)[0]), Version(pin.version)
        found = []
        for filename, digest in self.files(pin.name):
            if _release_of(filename) != (project, version):
                continue
            if tags is None or (filename.endswith(".whl") and not tags.isdisjoint(parse_wheel_filename(filename)[3])):
                found.append(digest.lower())
        if not found:
            fits = "file" if tags is None else "wheel for Lambda's Python versions and architectures"
            raise PinError(f"{pin.name}=={pin.version}: {self.url} lists no {fits}")
        return sorted(set(found))


def _release_of(filename: str) -> tuple[str, Version] | None:
    try:
        if filename.endswith(".whl"):
            name, version, _build, _tags = parse_wheel_filename(filename)
        else:
            name, version = parse_sdist_filename(filename)
    except (InvalidWheelFilename, InvalidSdistFilename):
        return None
    return str(name), version


def _format(pin: Pin, hashes: Sequence[str]) -> list[str]:
    options = [f"    --hash=sha256:{digest}" for digest in hashes]
    return [f"{pin.name}=={pin.version}{pin.marker} \\", *(f"{option} \\" for option in options[:-1]), options[-1]]


def pin_file(
    path: Path,
    index: Index,
    *,
    tags: frozenset[Tag] | None,
    dependencies: Sequence[Pin] = (),
) -> list[str]:
    """Rewrite `path` with the hashes of each of its pins (and `dependencies`, below the marker); say what changed.

    An inline comment of a requirement moves to its own line above it (pip ends a line at a
    comment, so it cannot sit between continued lines).
    """
    out: list[str] = []
    changed: list[str] = []
    for entry in _entries(path):
        if entry.pin is None:
            if entry.lines and entry.lines[0].strip() == DEPENDENCIES_MARKER:
                break
            out.extend(entry.lines)
            continue
        hashes = index.hashes(entry.pin, tags=tags)
        if tuple(hashes) != entry.pin.hashes:
            changed.append(f"{entry.pin.name}=={entry.pin.version}")
        if entry.comment:
            out.append(entry.comment)
        out.extend(_format(entry.pin, hashes))
    while out and not out[-1].strip():
        out.pop()
    if dependencies:
        out += ["", DEPENDENCIES_MARKER]
        for pin in dependencies:
            out.extend(_format(pin, index.hashes(pin, tags=tags)))
    text = "\n".join(out) + "\n"
    if text != path.read_text(encoding="utf-8"):
        path.write_text(text, encoding="utf-8")
        changed = changed or ["rewritten"]
    return changed


def _bare(pins: Iterable[Pin]) -> str:
    return "".join(f"{pin.name}=={pin.version}{pin.marker}\n" for pin in pins)


def recipe_dependencies(recipe: Path, training: Path) -> list[Pin]:
    """What `recipe`'s requirements need, for any Lambda target, that they and `training` do not pin.

    pip's resolver decides (a dry run per target, held to `training`'s versions); a package it
    resolves to two versions on two targets cannot be pinned once and is refused.
    """
    own = [pin for pin in read_pins(recipe) if not _is_dependency(recipe, pin)]
    if not own:
        return []
    pinned = {canonicalize_name(pin.name.split("[", 1)[0]) for pin in [*own, *read_pins(training)]}
    found: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as scratch:
        requirements, constraints = Path(scratch, "requirements.txt"), Path(scratch, "constraints.txt")
        requirements.write_text(_bare(own))
        constraints.write_text(_bare(pin for pin in read_pins(training) if "[" not in pin.name))
        for version, architecture in lambda_targets():
            command = [
                sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
                "--disable-pip-version-check", "--report", "-", "--only-binary=:all:", "--implementation", "cp",
                "--python-version", version, *pip_platform_args(architecture),
                "--requirement", str(requirements), "--constraint", str(constraints),
            ]  # fmt: skip
            result = subprocess.run(command, capture_output=True, text=True, check=False)
            if result.returncode != 0:
                raise PinError(
                    f"pip cannot resolve {recipe.name} for Python {version} on {architecture}:\n{result.stderr[-3000:]}"
                )
            for item in json.loads(result.stdout)["install"]:
                name, resolved = canonicalize_name(item["metadata"]["name"]), item["metadata"]["version"]
                if name in pinned:
                    continue
                if found.setdefault(name, resolved) != resolved:
                    raise PinError(f"{name} resolves to {found[name]} and {resolved} on different Lambda targets")
    return [Pin(name, version, "", (), 0) for name, version in sorted(found.items())]


def _is_dependency(path: Path, pin: Pin) -> bool:
    """Whether `pin` stands below the dependencies marker of `path` (written by `make pin`, not by the user)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    marker = next((number for number, line in enumerate(lines, 1) if line.strip() == DEPENDENCIES_MARKER), None)
    return marker is not None and pin.line > marker


def pin_recipe(path: Path, index: Index, *, training: Path = TRAINING_REQUIREMENTS) -> list[str]:
    """Pin a recipe's requirements file: every file of each release, and what they need beyond `training`."""
    return pin_file(path, index, tags=None, dependencies=recipe_dependencies(path, training))


def pin_project(files: Sequence[Path] = PINNED_FILES, *, index: Index | None = None) -> list[str]:
    """Pin every file of `files` with its hashes (the recipe's with its dependencies); say what changed."""
    index = index or Index()
    tags = lambda_tags()
    changed: list[str] = []
    for path in files:
        if not path.is_file():
            continue
        updates = pin_recipe(path, index) if path == RECIPE_REQUIREMENTS else pin_file(path, index, tags=tags)
        changed += [f"{path.relative_to(PROJECT_ROOT)}: {update}" for update in updates]
    return changed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m infra.pinning",
        description="Add the sha256 of every installable file to each pinned requirement.",
    )
    parser.add_argument("--index-url", default=INDEX_URL, help=f"a PEP 691 index (default: {INDEX_URL})")
    args = parser.parse_args(argv)
    try:
        changed = pin_project(index=Index(args.index_url))
    except PinError as exc:
        print(f"pin: {exc}", file=sys.stderr)
        return 1
    for line in changed:
        print(f"pinned {line}")
    if not changed:
        print("every requirement already carries its hashes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
