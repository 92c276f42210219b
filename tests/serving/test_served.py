"""End to end: ``akhbar serve`` starts the real BentoML server once for this module, on a
free local port, with the tiny bundle for every task, a throw-away model store and a bearer
token; the tests talk to it over HTTP (httpx and ``bentoml.SyncHTTPClient``) and the
fixture stops it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from serving_support import ARTICLE, ARTICLE_TEXT, CLAIMS, STORY

pytestmark = pytest.mark.slow

AKHBAR = Path(sys.executable).parent / "akhbar"
TOKEN = "e2e-token"
AUTH = {"authorization": f"Bearer {TOKEN}"}
BODY_LIMIT = 300_000  # above the 100,000-character text limit (Arabic: 2 bytes a letter)
START_TIMEOUT_S = 240  # importing torch and loading models on 2 busy cores


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    log: Path

    def post(self, route: str, body=None, headers=None, **kwargs) -> httpx.Response:
        return httpx.post(self.url + route, json=body, headers={**AUTH, **(headers or {})}, timeout=60, **kwargs)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)  # akhbar serve forwards it to bentoml serve
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # its own session: the server and workers
            process.wait()


@pytest.fixture(scope="module")
def server(tiny_bundle, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("served")
    (tmp / "no-defaults").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AKHBAR_", "BENTOML_"))}
    env.update({
        "BENTOML_HOME": str(tmp / "bentoml"), "AKHBAR_DEFAULT_MODELS": str(tmp / "no-defaults"),
        "AKHBAR_API_TOKEN": TOKEN, "AKHBAR_MAX_BODY_BYTES": str(BODY_LIMIT),
        **{f"AKHBAR_{t.upper()}_MODEL": str(tiny_bundle) for t in ("topic", "summary", "stance")},
    })
    port = _free_port()
    log = tmp / "server.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([str(AKHBAR), "serve", "--port", str(port)], stdout=out, stderr=subprocess.STDOUT,
                                   env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            assert process.poll() is None, f"the server exited:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"not ready after {START_TIMEOUT_S} s:\n{log.read_text()[-3000:]}"
            try:  # while models load, the port accepts but does not answer: short timeouts
                if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        # Ready only once every model has loaded: the load is logged before the first 200.
        assert "akhbar.serving akhbar: models loaded: topic=" in log.read_text()
        yield Server(url, process, log)
    finally:
        _stop(process)


def test_analyze_an_arabic_article_with_two_claims(server):
    response = server.post("/analyze", {"articles": [ARTICLE]}, headers={"x-request-id": "e2e-1"})
    assert response.status_code == 200, response.text
    assert response.headers["x-request-id"] == "e2e-1"
    [result] = response.json()["results"]
    assert result["id"] == ARTICLE["id"]
    assert [s["claim"] for s in result["stances"]] == CLAIMS
    assert len(result["summary"]["sentences"]) == 2
    for sentence, (start, end) in zip(result["summary"]["sentences"], result["summary"]["offsets"], strict=True):
        assert ARTICLE_TEXT[start:end] == sentence
    assert set(result["model_versions"]) == {"topic", "summary", "stance"}


def test_single_part_routes(server):
    for route, part in (("/topic", "topic"), ("/summarize", "summary"), ("/stance", "stances")):
        response = server.post(route, {"articles": [ARTICLE]})
        assert response.status_code == 200, (route, response.text)
        assert part in response.json()["results"][0]


@pytest.mark.parametrize(
    ("body", "field"),
    [({"articles": []}, ["articles"]),
     ({"articles": [{"title": "x"}]}, ["articles", 0, "text"]),
     ({"articles": [{"text": ""}]}, ["articles", 0, "text"]),
     ({"articles": [{"text": 5}]}, ["articles", 0, "text"]),
     ({"articles": [{"text": "ن" * 100_001}]}, ["articles", 0, "text"]),
     ({"articles": [{"text": "نص", "claims": ["أ"] * 17}]}, ["articles", 0, "claims"]),
     ({"articles": [{"text": "نص"}] * 65}, ["articles"]),
     ({"articles": [{"text": "نص", "summary_sentences": 21}]}, ["articles", 0, "summary_sentences"])],
)
def test_bad_input_is_a_400_naming_the_field(server, body, field):
    response = server.post("/analyze", body)
    assert response.status_code == 400, response.text
    assert any(d["loc"][: len(field)] == field for d in response.json()["detail"])


def test_malformed_json_and_oversized_bodies(server):
    bad = httpx.post(server.url + "/analyze", content=b"{", headers={**AUTH, "content-type": "application/json"})
    assert bad.status_code == 400
    big = json.dumps({"articles": [{"text": "ن" * BODY_LIMIT}]}).encode()
    too_large = httpx.post(server.url + "/analyze", content=big, headers={**AUTH, "content-type": "application/json"})
    assert too_large.status_code == 413 and "AKHBAR_MAX_BODY_BYTES" in too_large.json()["error"]
    chunked = httpx.post(server.url + "/analyze", content=iter([big[:250_000], big[250_000:]]),
                         headers={**AUTH, "content-type": "application/json"})
    assert chunked.status_code == 413
    assert server.post("/topic", {"articles": [{"text": STORY[0]}]}).status_code == 200  # still serving


def test_auth_health_metrics_and_docs(server):
    assert httpx.post(server.url + "/analyze", json={"articles": [ARTICLE]}).status_code == 401
    wrong = httpx.post(server.url + "/analyze", json={"articles": [ARTICLE]}, headers={"authorization": "Bearer no"})
    assert wrong.status_code == 401 and "AKHBAR_API_TOKEN" in wrong.json()["error"]
    for path in ("/livez", "/readyz", "/metrics", "/docs.json"):
        assert httpx.get(server.url + path, timeout=10).status_code == 200, path
    metrics = httpx.get(server.url + "/metrics", timeout=10).text
    assert "bentoml_service_request_duration_seconds" in metrics


def test_concurrent_callers_are_all_answered(server):
    bodies = [{"articles": [{"text": STORY[i % 5], "claims": [CLAIMS[i % 2]]}]} for i in range(12)]
    with ThreadPoolExecutor(12) as pool:
        responses = list(pool.map(lambda b: server.post("/analyze", b), bodies))
    assert [r.status_code for r in responses] == [200] * 12
    assert [r.json()["results"][0]["summary"]["sentences"] for r in responses] == [[STORY[i % 5]] for i in range(12)]


def test_python_client(server):
    import bentoml

    with bentoml.SyncHTTPClient(server.url, token=TOKEN, timeout=60) as client:
        answer = client.analyze(articles=[ARTICLE])
    assert answer["results"][0]["id"] == ARTICLE["id"]


def test_one_log_line_per_request_without_article_text(server):
    server.post("/topic", {"articles": [ARTICLE]}, headers={"x-request-id": "e2e-log"})
    time.sleep(0.5)
    lines = [line for line in server.log.read_text().splitlines() if '"request_id": "e2e-log"' in line]
    assert len(lines) == 1
    entry = json.loads(lines[0].split("akhbar.access ", 1)[1])
    assert (entry["route"], entry["status"], entry["articles"]) == ("/topic", 200, 1)
    log = server.log.read_text()
    for sentence in STORY + CLAIMS:
        assert sentence not in log
