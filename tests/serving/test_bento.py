"""``bentoml build`` packs the service with the repository's bentofile.yaml (offline).

The build context is a temporary copy: the bentofile, the constraints file, the shipped
defaults when they exist, and ``dist/`` with the akhbar wheel built from the sources a fresh
clone holds. ``bentoml containerize`` needs Docker, which CI lacks; it is not tested.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
PACKAGE_DIRS = ("akhbar", "models", "training", "serving")
BUILD_FILES = ("pyproject.toml", "README.md", "LICENSE")


def _clone_sources(dest: Path) -> None:
    """What a fresh clone would hold (tracked or not ignored) of what the wheel needs."""
    listing = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO,
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout.decode()
    for rel in filter(None, listing.split("\0")):
        if rel in BUILD_FILES or rel.split("/", 1)[0] in PACKAGE_DIRS:
            if (REPO / rel).is_file():
                (dest / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(REPO / rel, dest / rel)


def test_bentoml_build_packs_the_service(tmp_path):
    src, ctx = tmp_path / "src", tmp_path / "ctx"
    src.mkdir()
    ctx.mkdir()
    _clone_sources(src)
    env = dict(
        os.environ,
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PIP_NO_INPUT="1",
        BENTOML_HOME=str(tmp_path / "home"),
    )
    wheel = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(src),
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-w",
            str(ctx / "dist"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert wheel.returncode == 0, wheel.stderr
    for name in ("bentofile.yaml", "requirements-serve.txt"):
        shutil.copy2(REPO / name, ctx / name)
    if (REPO / "models" / "default").is_dir():
        shutil.copytree(REPO / "models" / "default", ctx / "models" / "default")

    build = subprocess.run(
        [sys.executable, "-m", "bentoml", "build", str(ctx)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=ctx,
    )
    assert build.returncode == 0, build.stdout + build.stderr

    [bento] = list((tmp_path / "home" / "bentos" / "akhbar").glob("*/bento.yaml"))
    info = yaml.safe_load(bento.read_text())
    assert info["service"] == "akhbar.serving.http.service:Akhbar"
    assert info["labels"]["project"] == "akhbar"
    routes = {r["name"] for r in info["schema"]["routes"]}
    assert {"analyze", "topic", "summarize", "stance"} <= routes
    root = bento.parent
    assert not (root / "src" / "akhbar").exists()  # a copied package would shadow the wheel
    assert list((root / "env" / "python" / "wheels").glob("akhbar-*.whl"))
    requirements = (root / "env" / "python" / "requirements.txt").read_text()
    assert "bentoml==" in requirements and "torch==2.13.0" in requirements
    assert not any(
        tool in requirements for tool in ("pytest==", "playwright==", "locust==", "ray==")
    )
