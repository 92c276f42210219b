"""Packaging: installed, every module lives under the ``akhbar`` namespace.

The repository keeps ``models/``, ``training/`` and ``serving/`` at the top level; setuptools
``package-dir`` maps them to ``akhbar.models`` and friends. These tests build the wheel from a
copy of the sources a fresh clone would hold, read it, and import it with nothing but its
own files for akhbar; and they check the editable install maps onto the repository folders.
"""

from __future__ import annotations

import configparser
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BUILD_FILES = ("pyproject.toml", "README.md", "LICENSE")
PACKAGE_DIRS = ("akhbar", "models", "training", "serving")
BARE = ("models", "training", "serving")  # must never be importable top-level names
# Training and evaluation only: the `train` extra, never what serving and `akhbar score` install.
TRAIN_ONLY = ("datasets", "accelerate", "rouge-score", "tensorboard", "matplotlib", "gensim")


def _copy_sources(dest: Path) -> None:
    """Copy what a fresh clone holds (tracked or not ignored) that the build needs.

    A copy keeps the build out of the working tree, whose stale ``build/`` could leak
    removed modules into the wheel.
    """
    try:
        listing = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=REPO, capture_output=True, check=True, timeout=60,
        ).stdout.decode()  # fmt: skip
        files = [f for f in listing.split("\0") if f]
    except (OSError, subprocess.CalledProcessError):  # no git: walk the folders instead
        files = [str(p.relative_to(REPO)) for d in PACKAGE_DIRS for p in (REPO / d).rglob("*")
                 if p.is_file() and "__pycache__" not in p.parts]  # fmt: skip
        files += list(BUILD_FILES)
    for rel in files:
        if rel in BUILD_FILES or rel.split("/", 1)[0] in PACKAGE_DIRS:
            src = REPO / rel
            if src.is_file():
                (dest / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dest / rel)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("wheel")
    src, dist = root / "src", root / "dist"
    src.mkdir()
    _copy_sources(src)
    env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation",
         "--no-index", "-w", str(dist)],
        capture_output=True, text=True, timeout=600, env=env,
    )  # fmt: skip
    assert result.returncode == 0, f"wheel build failed:\n{result.stdout}\n{result.stderr}"
    (path,) = dist.glob("akhbar-*.whl")
    return path


@pytest.fixture(scope="module")
def unpacked(wheel, tmp_path_factory) -> Path:
    dest = tmp_path_factory.mktemp("unpacked")
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(dest)
    return dest


@pytest.mark.slow
def test_wheel_holds_only_the_akhbar_namespace(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/", 1)[0] for n in names}
    dist_info = {t for t in tops if t.endswith(".dist-info")}
    assert tops - dist_info == {"akhbar"}, f"unexpected top-level entries: {sorted(tops)}"
    stray = [n for n in names if n.endswith(".py") and not n.startswith("akhbar/")]
    assert not stray, f"Python files outside akhbar/: {stray}"
    for required in (
        "akhbar/__init__.py",
        "akhbar/cli.py",
        "akhbar/models/__init__.py",
        "akhbar/models/normalize.py",
        "akhbar/training/__init__.py",
        "akhbar/serving/__init__.py",
        "akhbar/serving/core/analyzer.py",
        "akhbar/serving/batch/score.py",
        "akhbar/serving/http/serve.py",
        "akhbar/serving/http/static/index.html",  # the reading page (/ui), package data
        "akhbar/serving/http/static/ui.css",
        "akhbar/serving/http/static/ui.js",
    ):
        assert required in names, f"{required} missing from {wheel.name}"
    # The developer tools (tools/: fuzz, load test, demo...) run from the checkout, never installed.
    tools = [
        n
        for n in names
        if n.rsplit("/", 1)[-1]
        in {
            "fuzz.py",
            "loadtest.py",
            "locustfile.py",
            "localserver.py",
            "demo.py",
            "batch_bench.py",
        }
    ]
    assert not tools, f"developer tools in the wheel: {tools}"
    assert not any(n.startswith("tests/") or "/tests/" in n for n in names)
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names), "LICENSE not shipped"


@pytest.mark.slow
def test_wheel_metadata(wheel):
    with zipfile.ZipFile(wheel) as zf:
        (ep_name,) = [n for n in zf.namelist() if n.endswith(".dist-info/entry_points.txt")]
        (meta_name,) = [n for n in zf.namelist() if n.endswith(".dist-info/METADATA")]
        entry_points = configparser.ConfigParser()
        entry_points.read_string(zf.read(ep_name).decode())
        metadata = zf.read(meta_name).decode()
    assert entry_points["console_scripts"]["akhbar"].strip() == "akhbar.cli:main"
    # pyproject's readme = "README.md": a missing README only warns at build time.
    assert metadata.partition("\n\n")[2].strip(), "no README.md text in the wheel's METADATA"


@pytest.mark.slow
def test_wheel_requires_the_training_packages_only_in_the_train_extra(wheel):
    with zipfile.ZipFile(wheel) as zf:
        (meta_name,) = [n for n in zf.namelist() if n.endswith(".dist-info/METADATA")]
        headers = zf.read(meta_name).decode().partition("\n\n")[0]
    core, train = set(), set()
    for line in headers.splitlines():
        if line.startswith("Requires-Dist:"):
            requirement, _, marker = line.removeprefix("Requires-Dist:").partition(";")
            name = _normalised(re.split(r"[<>=!~\[ (]", requirement.strip(), maxsplit=1)[0])
            if not marker.strip():
                core.add(name)
            elif re.search(r"""extra\s*==\s*["']train["']""", marker):
                train.add(name)
    assert core and "bentoml" in core, headers
    assert not core & set(TRAIN_ONLY), sorted(core & set(TRAIN_ONLY))
    assert set(TRAIN_ONLY) <= train, sorted(set(TRAIN_ONLY) - train)
    assert "Provides-Extra: train" in headers.splitlines()


@pytest.mark.slow
def test_wheel_imports_from_its_own_files(unpacked, tmp_path):
    # -I -S: no user site, no site-packages processing, so the editable install's path hook
    # (a .pth file) never loads. Site-packages goes on sys.path *after* the wheel, as a plain
    # directory, only so third-party dependencies (tokenizers, ...) import.
    site_dirs = sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})
    code = """
import importlib, sys
wheel_dir, *site_dirs = sys.argv[1:]
sys.path[:0] = [wheel_dir]
sys.path.extend(site_dirs)
import akhbar, akhbar.cli, akhbar.models.normalize, akhbar.serving.http.serve
assert not any("editable" in name for name in sys.modules), "editable finder loaded"
for module in (akhbar, akhbar.cli, akhbar.models.normalize, akhbar.serving.http.serve):
    assert module.__file__.startswith(wheel_dir), f"{module.__name__} from {module.__file__}"
for bare in ("models", "training", "serving"):
    try:
        importlib.import_module(bare)
    except ModuleNotFoundError:
        continue
    raise SystemExit(f"bare package {bare!r} importable from the wheel")
sys.exit(akhbar.cli.main(["--version"]))
"""
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code, str(unpacked), *site_dirs],
        cwd=tmp_path, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith("akhbar ")


# Runs `akhbar ARGS...` from the unpacked wheel only (as test_wheel_imports_from_its_own_files).
WHEEL_CLI = """
import sys
wheel_dir, site_dirs, *args = sys.argv[1:]
sys.path[:0] = [wheel_dir]
sys.path.extend(site_dirs.split(","))
import akhbar.cli
assert akhbar.cli.__file__.startswith(wheel_dir), akhbar.cli.__file__
sys.exit(akhbar.cli.main(args))
"""


@pytest.mark.slow
def test_the_installed_wheel_finds_scores_and_says_where_models_come_from(unpacked, tmp_path):
    """Installed use, away from the checkout: an empty store says how to get models; with
    AKHBAR_DEFAULT_MODELS at a copy of models/default, `akhbar score` imports them, saying so
    on standard error, and scores."""
    paths = sysconfig.get_paths()
    site_dirs = ",".join(sorted({paths["purelib"], paths["platlib"]}))
    defaults = tmp_path / "defaults"
    shutil.copytree(REPO / "models" / "default", defaults)
    articles = tmp_path / "articles.jsonl"
    articles.write_text(
        json.dumps({"id": "a1", "text": "فاز المنتخب الوطني بكأس البطولة بعد مباراة مثيرة."})
        + "\n",
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AKHBAR_", "BENTOML_"))}
    env |= {"BENTOML_HOME": str(tmp_path / "home"), "AKHBAR_DEFAULT_MODELS": str(tmp_path / "no")}

    def akhbar(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-I", "-S", "-c", WHEEL_CLI, str(unpacked), site_dirs, *args],
            cwd=tmp_path, capture_output=True, text=True, timeout=600, env=env,
        )  # fmt: skip

    listing = akhbar("models", "list")
    assert listing.returncode == 0, listing.stderr
    assert "AKHBAR_DEFAULT_MODELS" in listing.stdout and "akhbar models import" in listing.stdout
    env["AKHBAR_DEFAULT_MODELS"] = str(defaults)
    output = tmp_path / "results.jsonl"
    scored = akhbar("score", "--input", str(articles), "--output", str(output), "--tasks", "topic")
    assert scored.returncode == 0, scored.stderr[-3000:]
    assert "importing the shipped default" in scored.stderr
    [result] = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert result["id"] == "a1" and result["topic"]["label"] == "sport"


@pytest.mark.slow
def test_the_wheels_imports_keep_the_contracts(unpacked, tmp_path):
    """import-linter on the installed package, with pyproject.toml's contracts: training and
    serving apart, models/ beneath both, HTTP and batch on the scoring core, no cycles."""
    env = dict(os.environ, PYTHONPATH=str(unpacked))  # the wheel's akhbar before the editable one
    result = subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports"),
         "--config", str(REPO / "pyproject.toml"), "--no-cache"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "Contracts: 4 kept, 0 broken." in result.stdout, result.stdout[-2000:]


def test_editable_install_maps_the_namespace_onto_the_repository(tmp_path):
    code = """
import importlib, json
paths = {n: importlib.import_module(n).__file__
         for n in ("akhbar", "akhbar.models", "akhbar.training", "akhbar.serving")}
bare = []
for n in ("models", "training", "serving"):
    try:
        importlib.import_module(n)
        bare.append(n)
    except ModuleNotFoundError:
        pass
print(json.dumps({"paths": paths, "bare": bare}))
"""
    # A neutral working directory: the repository root must not be on sys.path.
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    expected = {
        "akhbar": REPO / "akhbar",
        "akhbar.models": REPO / "models",
        "akhbar.training": REPO / "training",
        "akhbar.serving": REPO / "serving",
    }
    for name, folder in expected.items():
        assert Path(found["paths"][name]).resolve() == folder / "__init__.py", name
    assert found["bare"] == [], f"bare packages importable after install: {found['bare']}"


def _pins(path: Path) -> dict[str, str]:
    """``{normalised name: version}`` of a requirements file's ``name==version`` lines."""
    pins = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        name, sep, version = line.split("#")[0].strip().partition("==")
        if sep:
            pins[_normalised(name.split("[")[0])] = version.split(";")[0].strip()
    return pins


def _normalised(name: str) -> str:
    """PEP 503: runs of - _ . become one -, lower case."""
    return re.sub(r"[-_.]+", "-", name).lower()


def test_the_bentos_requirements_are_the_runtime_dependencies_at_the_tested_versions():
    constraints, serve = _pins(REPO / "constraints.txt"), _pins(REPO / "requirements-serve.txt")
    # torch: the same version, as the CPU build (bentofile.yaml's extra index serves it)
    assert serve["torch"] == constraints["torch"] + "+cpu", "make requirements-serve.txt"
    assert {n: v for n, v in serve.items() if n != "torch" and constraints.get(n) != v} == {}, (
        "regenerate: make requirements-serve.txt"
    )
    runtime = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {_normalised(re.split(r"[<>=!~\[ ]", d, maxsplit=1)[0]) for d in runtime}
    assert names <= set(serve), sorted(names - set(serve))
    assert not {"pytest", "playwright", "locust", "schemathesis", "ray", "hypothesis"} & set(serve)


def test_the_bento_installs_no_training_package():
    serve = _pins(REPO / "requirements-serve.txt")
    assert not {_normalised(n) for n in TRAIN_ONLY} & set(serve), "make requirements-serve.txt"


def test_the_extras_hint_table_matches_pyproject():
    """akhbar/extras.py names the extra to install for a missing module; it must list exactly
    the packages of pyproject's `train`, `ray` and `onnx` extras (by import name)."""
    from akhbar import extras

    optional = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    declared = {
        _normalised(re.split(r"[<>=!~\[ ]", d, maxsplit=1)[0]).replace("-", "_"): extra
        for extra in ("train", "ray", "onnx")
        for d in optional[extra]
    }
    assert extras.EXTRA_OF_MODULE == declared
    assert {n for n, e in declared.items() if e == "train"} == {
        _normalised(n).replace("-", "_") for n in TRAIN_ONLY
    }
