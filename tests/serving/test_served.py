"""End to end: ``akhbar serve`` starts the real BentoML server once for this module, on a
free local port, with the tiny bundle for every task, a throw-away model store and a bearer
token; the tests talk to it over HTTP (httpx and ``bentoml.SyncHTTPClient``) and the
fixture stops it."""

from __future__ import annotations

import json
import re
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from serving_support import ARTICLE, ARTICLE_TEXT, CLAIMS, STORY, live_server

pytestmark = pytest.mark.slow

TOKEN = "e2e-token"
AUTH = {"authorization": f"Bearer {TOKEN}"}
BODY_LIMIT = 300_000  # above the 100,000-character text limit (Arabic: 2 bytes a letter)


@pytest.fixture(scope="module")
def server(tiny_bundle, tmp_path_factory):
    settings = {"AKHBAR_API_TOKEN": TOKEN, "AKHBAR_MAX_BODY_BYTES": str(BODY_LIMIT)}
    with live_server(tiny_bundle, tmp_path_factory.mktemp("served"), **settings) as server:
        # Ready only once every model has loaded: the load is logged before the first 200.
        assert re.search(
            r"akhbar\.serving akhbar: models loaded \((fp32|bf16|int8), \d+ torch threads\): "
            r"topic=",
            server.log.read_text(),
        )
        yield server


def test_analyze_an_arabic_article_with_two_claims(server):
    response = server.post("/analyze", {"articles": [ARTICLE]}, headers={"x-request-id": "e2e-1"})
    assert response.status_code == 200, response.text
    assert response.headers["x-request-id"] == "e2e-1"
    [result] = response.json()["results"]
    assert result["id"] == ARTICLE["id"]
    assert [s["claim"] for s in result["stances"]] == CLAIMS
    assert len(result["summary"]["sentences"]) == 2
    for sentence, (start, end) in zip(
        result["summary"]["sentences"], result["summary"]["offsets"], strict=True
    ):
        assert ARTICLE_TEXT[start:end] == sentence
    assert set(result["model_versions"]) == {"topic", "summary", "stance"}


def test_single_part_routes(server):
    for route, part in (("/topic", "topic"), ("/summarize", "summary"), ("/stance", "stances")):
        response = server.post(route, {"articles": [ARTICLE]})
        assert response.status_code == 200, (route, response.text)
        assert part in response.json()["results"][0]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"articles": []}, ["articles"]),
        ({"articles": [{"title": "x"}]}, ["articles", 0, "text"]),
        ({"articles": [{"text": ""}]}, ["articles", 0, "text"]),
        ({"articles": [{"text": 5}]}, ["articles", 0, "text"]),
        ({"articles": [{"text": "ن" * 100_001}]}, ["articles", 0, "text"]),
        ({"articles": [{"text": "نص", "claims": ["أ"] * 17}]}, ["articles", 0, "claims"]),
        ({"articles": [{"text": "نص"}] * 65}, ["articles"]),
        (
            {"articles": [{"text": "نص", "summary_sentences": 21}]},
            ["articles", 0, "summary_sentences"],
        ),
    ],
)
def test_bad_input_is_a_400_naming_the_field(server, body, field):
    response = server.post("/analyze", body)
    assert response.status_code == 400, response.text
    assert any(d["loc"][: len(field)] == field for d in response.json()["detail"])


def test_malformed_json_and_oversized_bodies(server):
    bad = httpx.post(
        server.url + "/analyze", content=b"{", headers={**AUTH, "content-type": "application/json"}
    )
    assert bad.status_code == 400
    big = json.dumps({"articles": [{"text": "ن" * BODY_LIMIT}]}).encode()
    too_large = httpx.post(
        server.url + "/analyze", content=big, headers={**AUTH, "content-type": "application/json"}
    )
    assert too_large.status_code == 413 and "AKHBAR_MAX_BODY_BYTES" in too_large.json()["error"]
    chunked = httpx.post(
        server.url + "/analyze",
        content=iter([big[:250_000], big[250_000:]]),
        headers={**AUTH, "content-type": "application/json"},
    )
    assert chunked.status_code == 413
    assert (
        server.post("/topic", {"articles": [{"text": STORY[0]}]}).status_code == 200
    )  # still serving


def test_a_length_beside_chunks_is_refused_before_any_body_is_read(server):
    """Content-Length: 5 beside Transfer-Encoding: chunked: the server's parser would follow
    the chunks (a 256 MiB body was read this way); the service refuses from the headers."""
    host, port = server.url.removeprefix("http://").split(":")
    head = (
        "POST /analyze HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Authorization: {AUTH['authorization']}\r\n"
        "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(head.encode())  # no body at all: the answer must not wait for one
        received = b""
        while part := sock.recv(65536):  # the server closes the connection after its answer
            received += part
    answer = received.decode(errors="replace")
    assert answer.startswith("HTTP/1.1 400"), answer[:500]
    assert "Transfer-Encoding (RFC 9112)" in answer  # the service's own JSON refusal
    assert server.post("/topic", {"articles": [{"text": STORY[0]}]}).status_code == 200


def test_auth_health_metrics_and_docs(server):
    assert httpx.post(server.url + "/analyze", json={"articles": [ARTICLE]}).status_code == 401
    wrong = httpx.post(
        server.url + "/analyze",
        json={"articles": [ARTICLE]},
        headers={"authorization": "Bearer no"},
    )
    assert wrong.status_code == 401 and "AKHBAR_API_TOKEN" in wrong.json()["error"]
    for path in ("/livez", "/readyz", "/metrics", "/docs.json"):
        assert httpx.get(server.url + path, timeout=10).status_code == 200, path
    assert server.post("/topic", {"articles": [{"text": STORY[0]}] * 3}).status_code == 200
    metrics = httpx.get(server.url + "/metrics", timeout=10).text
    assert "bentoml_service_request_duration_seconds" in metrics
    # The service's own batch histogram: every batch counted, with the articles it held.
    batches = {
        line.split()[0]: float(line.split()[1])
        for line in metrics.splitlines()
        if line.startswith("akhbar_batch_articles_") and not line.startswith("#")
    }
    assert batches["akhbar_batch_articles_count"] >= 1
    assert batches["akhbar_batch_articles_sum"] >= 3


def _own_series(server) -> dict[str, float]:
    """The service's request count and stage seconds on /metrics, by series."""
    text = httpx.get(server.url + "/metrics", timeout=10).text
    return {
        line.split()[0]: float(line.split()[1])
        for line in text.splitlines()
        if line.startswith(("akhbar_requests_total{", "akhbar_stage_seconds_total{"))
    }


def test_each_scored_request_is_counted_for_its_worker_with_its_time_by_stage(server):
    """What make bench reads (issue 19): requests per worker, and where their time went. A
    refused request (401, 400) never reached the scorer and is not counted."""
    before = _own_series(server)
    assert before['akhbar_requests_total{worker="1"}'] >= 0  # shown once the worker loaded
    assert httpx.post(server.url + "/analyze", json={"articles": [ARTICLE]}).status_code == 401
    assert server.post("/analyze", {"articles": []}).status_code == 400
    started = time.perf_counter()
    for _ in range(3):
        assert server.post("/analyze", {"articles": [ARTICLE]}).status_code == 200
    elapsed = time.perf_counter() - started
    after = _own_series(server)
    delta = {k: after[k] - before.get(k, 0) for k in after}
    assert delta['akhbar_requests_total{worker="1"}'] == 3
    stages = {k.split('"')[1]: v for k, v in delta.items() if k.startswith("akhbar_stage")}
    for stage in ("http", "preprocess", "encoder", "postprocess"):
        assert stages[stage] > 0, stage
    assert sum(stages.values()) <= elapsed  # the client waited for all of it, and more


def test_concurrent_callers_are_all_answered(server):
    bodies = [{"articles": [{"text": STORY[i % 5], "claims": [CLAIMS[i % 2]]}]} for i in range(12)]
    with ThreadPoolExecutor(12) as pool:
        responses = list(pool.map(lambda b: server.post("/analyze", b), bodies))
    assert [r.status_code for r in responses] == [200] * 12
    assert [r.json()["results"][0]["summary"]["sentences"] for r in responses] == [
        [STORY[i % 5]] for i in range(12)
    ]


def test_python_client(server):
    import bentoml

    with bentoml.SyncHTTPClient(server.url, token=TOKEN, timeout=60) as client:
        answer = client.analyze(articles=[ARTICLE])
    assert answer["results"][0]["id"] == ARTICLE["id"]


def test_one_log_line_per_request_without_article_text(server):
    server.post("/topic", {"articles": [ARTICLE]}, headers={"x-request-id": "e2e-log"})
    time.sleep(0.5)
    lines = [
        line for line in server.log.read_text().splitlines() if '"request_id": "e2e-log"' in line
    ]
    assert len(lines) == 1
    entry = json.loads(lines[0].split("akhbar.access ", 1)[1])
    assert (entry["route"], entry["status"], entry["articles"]) == ("/topic", 200, 1)
    log = server.log.read_text()
    for sentence in STORY + CLAIMS:
        assert sentence not in log
