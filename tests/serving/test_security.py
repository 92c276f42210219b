"""Security: models load from safetensors only, the token is compared in constant
time. (Every route needing the token, on the live server, is in test_faults.py; bodies over
the limit getting 413 before parsing, and no article text in logs or errors, are in
test_fuzz.py and test_service.py.)"""

from __future__ import annotations

import ast
import pickle
import re
import shutil
from pathlib import Path

import pytest
from serving_support import point_at, started

from akhbar.models.tasks import TASKS

REPO = Path(__file__).resolve().parents[2]
PACKAGE_DIRS = ("akhbar", "models", "training", "serving")


def _sources() -> list[tuple[Path, str]]:
    files = [p for d in PACKAGE_DIRS for p in sorted((REPO / d).rglob("*.py"))]
    assert len(files) > 20
    return [(p, p.read_text(encoding="utf-8")) for p in files]


def _calls(source: str, name: str) -> list[str]:
    """The text of each call ``name(...)`` in ``source`` (to its closing parenthesis)."""
    calls = []
    for match in re.finditer(re.escape(name) + r"\(", source):
        depth, i = 1, match.end()
        while depth and i < len(source):
            depth += {"(": 1, ")": -1}.get(source[i], 0)
            i += 1
        calls.append(source[match.start() : i])
    return calls


def test_the_package_never_unpickles_and_never_runs_model_code():
    problems = []
    for path, source in _sources():
        where = path.relative_to(REPO)
        for call in _calls(source, "torch.load"):
            if "weights_only=True" not in call:
                problems.append(f"{where}: {call[:80]} without weights_only=True")
        # A call that runs a checkpoint's own code. (The Hugging Face export's card tells its
        # user to pass the flag for that export; the package itself never does.)
        problems += [
            f"{where}:{node.lineno}: a call with trust_remote_code"
            for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.Call)
            for keyword in node.keywords
            if keyword.arg == "trust_remote_code"
            and not (isinstance(keyword.value, ast.Constant) and keyword.value.value is False)
        ]
        for pattern in (
            r"\bpickle\.loads?\(",
            r"\bjoblib\.load\(",
            r"\bcloudpickle\.loads?\(",
            r"\bdill\.loads?\(",
            r"allow_pickle\s*=\s*True",
            r"\bread_pickle\(",
            r"torch\.jit\.load\(",
        ):
            problems += [f"{where}: {m.group(0)}" for m in re.finditer(pattern, source)]
    assert problems == []


class _Canary:
    """Unpickling this creates a file: proof that nothing ever unpickled it."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


@pytest.fixture
def pickled(tiny_bundle, tmp_path) -> tuple[Path, Path]:
    """A copy of the tiny bundle with a pickle beside its weights: (bundle, canary file)."""
    bundle, canary = tmp_path / "pickled", tmp_path / "unpickled.canary"
    shutil.copytree(tiny_bundle, bundle)
    (bundle / "pytorch_model.bin").write_bytes(pickle.dumps(_Canary(canary)))
    return bundle, canary


def test_a_bundle_holding_a_pickle_is_refused_by_the_service_and_the_batch_scorer(
    pickled, tiny_bundle, tmp_path, monkeypatch
):
    from akhbar.serving.core.analyzer import Analyzer, ModelLoadError
    from akhbar.serving.core.store import ModelStoreError, resolve_models

    bundle, canary = pickled
    point_at(monkeypatch, tiny_bundle, tmp_path / "home", AKHBAR_TOPIC_MODEL=str(bundle))
    with pytest.raises(ModelStoreError, match="pickle-format file.*pytorch_model.bin"):
        resolve_models(TASKS, {"topic": str(bundle)})  # akhbar serve's and akhbar score's check
    with pytest.raises(ModelLoadError, match="pickle"):
        Analyzer.from_bundles({t: bundle for t in TASKS})
    with pytest.raises(Exception, match="topic model .*pickle"):
        with started():  # the service itself
            pass
    assert not canary.exists()


def test_pickle_bytes_in_place_of_the_safetensors_weights_are_refused(tiny_bundle, tmp_path):
    from akhbar.serving.core.analyzer import Analyzer, ModelLoadError

    bundle, canary = tmp_path / "disguised", tmp_path / "unpickled.canary"
    shutil.copytree(tiny_bundle, bundle)
    (bundle / "model.safetensors").write_bytes(pickle.dumps(_Canary(canary)))
    with pytest.raises(ModelLoadError, match="model.safetensors cannot be read"):
        Analyzer.from_bundles({"topic": bundle})
    assert not canary.exists()


def test_the_token_is_compared_in_constant_time(monkeypatch):
    import hmac

    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    from akhbar.serving.http import middleware
    from akhbar.serving.http.settings import ServiceSettings

    compared, compare = [], hmac.compare_digest

    def spy(a, b):
        compared.append((a, b))
        return compare(a, b)

    monkeypatch.setattr(middleware.hmac, "compare_digest", spy)
    app = Starlette(routes=[Route("/analyze", lambda r: PlainTextResponse("ok"), methods=["POST"])])
    client = TestClient(
        middleware.AkhbarMiddleware(app, settings=lambda: ServiceSettings(api_token="s3cret"))
    )
    ok = client.post("/analyze", json={}, headers={"authorization": "Bearer s3cret"})
    assert ok.status_code == 200
    assert client.post("/analyze", headers={"authorization": "Bearer s3cre"}).status_code == 401
    assert (
        client.post("/analyze", headers={"authorization": "Bearer " + "x" * 64}).status_code == 401
    )
    assert compared == [(b"s3cret", b"s3cret"), (b"s3cre", b"s3cret"), (b"x" * 64, b"s3cret")]
