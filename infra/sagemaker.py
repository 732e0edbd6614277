"""The SageMaker engine's parts that exist at synth: AWS's prebuilt scikit-learn image and the job's source archive.

The image is AWS's own SageMaker scikit-learn training container, looked up offline
from the table below (the registry account of each region, as the SageMaker Python
SDK's `image_uri_config/sklearn.json` lists it for framework version 1.4-2-py312, and
its tag built the way that SDK builds it). 1.4-2-py312 is the one whose Python (3.12)
runs Slipway's pinned stack (pandas 3 and NumPy 2.4 need 3.11 or later; the other
1.x images run 3.10 or older). It ships scikit-learn 1.4.2: in script mode the
container installs the archive's `requirements.txt` first, which pins the versions
the Lambda engine trains with, and the job refuses to train when an installed version
differs (functions.retrain.training_job.check_libraries), so the two engines fit with
the same libraries. Every pin carries the sha256 of its files (`make pin`), so the
container's pip checks each file it installs (a hash turns pip's hash-checking mode on)
and refuses any dependency left unpinned: the training set pins all that the container's
resolution reaches, bar the boto3 its training toolkit already holds.

The source archive is a deterministic tar.gz (sorted, fixed times and owners, so the
same sources give the same bytes and the same asset hash): Slipway's training code,
`model/`, the pinned requirements (Slipway's training set, then the recipe's own) and
the entry script.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from pathlib import Path

from infra.bundling import FUNCTIONS_DIR, PROJECT_ROOT

FRAMEWORK_VERSION = "1.4-2-py312"
IMAGE_TAG = f"{FRAMEWORK_VERSION}-cpu-py3"
REPOSITORY = "sagemaker-scikit-learn"
# Region -> the account that holds the prebuilt scikit-learn images (commercial, GovCloud and China).
REGISTRIES = {
    "af-south-1": "510948584623", "ap-east-1": "651117190479", "ap-northeast-1": "354813040037",
    "ap-northeast-2": "366743142698", "ap-northeast-3": "867004704886", "ap-south-1": "720646828776",
    "ap-south-2": "628508329040", "ap-southeast-1": "121021644041", "ap-southeast-2": "783357654285",
    "ap-southeast-3": "951798379941", "ap-southeast-4": "106583098589", "ca-central-1": "341280168497",
    "ca-west-1": "190319476487", "cn-north-1": "450853457545", "cn-northwest-1": "451049120500",
    "eu-central-1": "492215442770", "eu-central-2": "680994064768", "eu-north-1": "662702820516",
    "eu-south-1": "978288397137", "eu-south-2": "104374241257", "eu-west-1": "141502667606",
    "eu-west-2": "764974769150", "eu-west-3": "659782779980", "il-central-1": "898809789911",
    "me-central-1": "272398656194", "me-south-1": "801668240914", "sa-east-1": "737474898029",
    "us-east-1": "683313688378", "us-east-2": "257758044811", "us-gov-east-1": "237065988967",
    "us-gov-west-1": "414596584902", "us-west-1": "746614075791", "us-west-2": "246618743249",
}  # fmt: skip

ENTRY_POINT = "slipway_train.py"
# What the job imports, beside the recipe: the training package's sources (infra.retrain.TRAINING_PACKAGE).
SOURCES = ("__init__.py", "core", "adapters", "lake", "training", "retrain")
REQUIREMENTS = (FUNCTIONS_DIR / "retrain" / "requirements.txt", PROJECT_ROOT / "model" / "requirements.txt")
_ENTRY_SCRIPT = b'''"""SageMaker runs this in script mode: Slipway's retrain Train step over the job's folders."""

import sys

from functions.retrain.training_job import main

sys.exit(main())
'''
_IGNORED = {"__pycache__", "tests", "test"}


def training_image_uri(region: str) -> str:
    """AWS's prebuilt scikit-learn training image in `region`; ValueError for a region the table lacks."""
    account = REGISTRIES.get(region)
    if account is None:
        raise ValueError(
            f"no prebuilt SageMaker scikit-learn image is known for region {region!r} (known: {sorted(REGISTRIES)}); "
            "set retrain.sagemaker_image_uri to an image that runs Python 3.11 or later"
        )
    domain = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"{account}.dkr.ecr.{region}.{domain}/{REPOSITORY}:{IMAGE_TAG}"


def _files() -> list[tuple[str, bytes]]:
    """(name in the archive, bytes) of everything the job needs, in name order."""
    entries: dict[str, bytes] = {ENTRY_POINT: _ENTRY_SCRIPT}
    for root, name in [(FUNCTIONS_DIR / source, f"functions/{source}") for source in SOURCES] + [
        (PROJECT_ROOT / "model", "model")
    ]:
        paths = [root] if root.is_file() else sorted(root.rglob("*"))
        for path in paths:
            relative = path.relative_to(root)
            if not path.is_file() or _IGNORED & set(relative.parts) or path.suffix == ".pyc":
                continue
            entries[name if root.is_file() else f"{name}/{relative.as_posix()}"] = path.read_bytes()
    pins = b"".join(
        f"# {path.relative_to(PROJECT_ROOT)}\n".encode() + path.read_bytes().rstrip(b"\n") + b"\n"
        for path in REQUIREMENTS
    )
    entries["requirements.txt"] = pins
    return sorted(entries.items())


def source_archive(out_dir: Path) -> Path:
    """The job's source archive in `out_dir`, named by its content hash (the same sources, the same file)."""
    tar_bytes = io.BytesIO()
    with tarfile.open(fileobj=tar_bytes, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, data in _files():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            archive.addfile(info, io.BytesIO(data))
    compressed = io.BytesIO()
    with gzip.GzipFile(fileobj=compressed, mode="wb", mtime=0) as zipped:
        zipped.write(tar_bytes.getvalue())
    body = compressed.getvalue()
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"sagemaker-source-{hashlib.sha256(body).hexdigest()[:16]}.tar.gz"
    path.write_bytes(body)
    return path
