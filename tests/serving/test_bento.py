"""``bentoml build`` packs the service and its models (offline), and the built Bento serves.

The build context is a temporary copy: the bentofile, the requirements file and ``dist/``
with the akhbar wheel built from the sources a fresh clone holds; the shipped defaults are
reached through ``AKHBAR_DEFAULT_MODELS``, as on a machine that never served before. The
Bento is then exported, imported into an empty BentoML home and served with plain
``bentoml serve TAG`` from a folder outside the checkout. ``bentoml containerize`` needs
Docker, which CI lacks; it is not tested.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import psutil
import pytest
import yaml

from akhbar.models.tasks import TASKS

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
PACKAGE_DIRS = ("akhbar", "models", "training", "serving")
BUILD_FILES = ("pyproject.toml", "README.md", "LICENSE")
BENTOML = [sys.executable, "-m", "bentoml"]
ARTICLE = {
    "text": "أعلن البنك المركزي اليوم رفع أسعار الفائدة نصف نقطة. "
    "وقال المحافظ إن القرار يهدف إلى كبح التضخم الذي بلغ أعلى مستوى منذ عشر سنوات.",
    "claims": ["البنك المركزي رفع أسعار الفائدة"],
}


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


def _env(home: Path, **extra: str) -> dict[str, str]:
    """This environment without AKHBAR_*/BENTOML_* variables, with ``home`` as BentoML's home."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AKHBAR_", "BENTOML_"))}
    return {
        **env,
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIP_NO_INPUT": "1",
        "BENTOML_HOME": str(home),
        **extra,
    }


def _run(command: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env, cwd=cwd)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, dict]:
    """A Bento built from a fresh clone's sources; its folder and its bento.yaml."""
    if not (REPO / "models" / "default" / "shared").is_dir():
        pytest.fail("models/default/shared is missing: the Bento packs the shipped defaults")
    tmp = tmp_path_factory.mktemp("bento")
    src, ctx, home = tmp / "src", tmp / "ctx", tmp / "home"
    src.mkdir()
    ctx.mkdir()
    _clone_sources(src)
    env = _env(home, AKHBAR_DEFAULT_MODELS=str(REPO / "models" / "default"))
    wheel = [sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation"]
    _run([*wheel, "--no-index", "-w", str(ctx / "dist")], env, ctx)
    for name in ("bentofile.yaml", "requirements-serve.txt"):
        shutil.copy2(REPO / name, ctx / name)
    build = _run([*BENTOML, "build", str(ctx)], env, ctx)
    assert "importing the shipped default" in build.stderr  # said aloud, on standard error
    [bento] = list((home / "bentos" / "akhbar").glob("*/bento.yaml"))
    return bento.parent, yaml.safe_load(bento.read_text())


def test_the_bento_records_its_models_settings_and_serving_requirements(built):
    root, info = built
    assert info["service"] == "akhbar.serving.http.service:Akhbar"
    assert info["labels"]["project"] == "akhbar"
    routes = {r["name"] for r in info["schema"]["routes"]}
    assert {"analyze", "topic", "summarize", "stance"} <= routes
    # The models: the shipped shared bundle, by its exact version, serving every task.
    [service] = info["services"]
    declared = {(m["tag"], m["alias"]) for m in service["models"]}
    [(tag, alias)] = declared
    assert tag.startswith("akhbar-shared:") and not tag.endswith(":latest")
    assert set(alias.removeprefix("akhbar:").split(",")) == set(TASKS)
    # The malloc settings `akhbar serve` measured as the fix for memory growth.
    envs = {e["name"]: e["value"] for e in info["envs"]}
    assert envs["MALLOC_ARENA_MAX"] == "2" and "MALLOC_MMAP_THRESHOLD_" in envs
    assert not (root / "src" / "akhbar").exists()  # a copied package would shadow the wheel
    assert not (root / "src" / "models").exists()  # the models travel as BentoML models
    assert list((root / "env" / "python" / "wheels").glob("akhbar-*.whl"))
    python = root / "env" / "python"
    requirements = (python / "requirements.txt").read_text()
    assert "bentoml==" in requirements and "torch==2.13.0+cpu" in requirements
    assert "https://download.pytorch.org/whl/cpu" in (python / "install.sh").read_text()
    assert not any(
        tool in requirements for tool in ("pytest==", "playwright==", "locust==", "ray==")
    )


def test_the_exported_bento_serves_its_own_models_away_from_the_checkout(built, tmp_path):
    from tools.localserver import local_server

    root, info = built
    tag = f"{info['name']}:{info['version']}"
    [model] = {m["tag"] for m in info["services"][0]["models"]}
    archive = tmp_path / "akhbar.bento"
    _run([*BENTOML, "export", tag, str(archive)], _env(root.parents[2]), tmp_path)
    # A machine that has only the archive: an empty home, no shipped defaults, no checkout.
    home, away = tmp_path / "fresh-home", tmp_path / "elsewhere"
    away.mkdir()
    env = _env(home, AKHBAR_DEFAULT_MODELS=str(tmp_path / "no-defaults"))
    _run([*BENTOML, "import", str(archive)], env, away)
    with local_server(
        env, tmp_path / "server.log", command=[*BENTOML, "serve", tag], cwd=away
    ) as server:
        answer = httpx.post(server.url + "/analyze", json={"articles": [ARTICLE]}, timeout=120)
        assert answer.status_code == 200, answer.text
        [result] = answer.json()["results"]
        assert result["topic"]["label"] and result["summary"]["sentences"]
        assert result["stances"][0]["label"] in {"agree", "disagree", "discuss", "unrelated"}
        assert f"topic={model}" in server.log_tail(20_000)  # the Bento's model, not another
        workers = psutil.Process(server.process.pid).children(recursive=True)
        assert workers
        for worker in workers:
            assert worker.environ().get("MALLOC_ARENA_MAX") == "2", worker.cmdline()
