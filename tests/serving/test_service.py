"""The service in process (``Akhbar.to_asgi()`` + TestClient) on the tiny random bundle:
result shapes, every validation error, body size, auth, request ids, logs, timeouts."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import threading
import time

import pytest
from serving_support import (
    ARTICLE,
    ARTICLE_TEXT,
    BOILERPLATE,
    CLAIMS,
    ENGLISH_TEXT,
    STORY,
    point_at,
    started,
)

from akhbar.models.tasks import STANCE_LABELS, TOPIC_LABELS

AUTH = {"authorization": "Bearer test-token"}


@pytest.fixture(scope="module")
def client(tiny_bundle, tmp_path_factory):
    """One started service for the module, with the default settings (no token)."""
    with pytest.MonkeyPatch.context() as mp:
        point_at(mp, tiny_bundle, tmp_path_factory.mktemp("svc"))
        with started() as c:
            yield c


@pytest.fixture
def service_env(monkeypatch, tiny_bundle, tmp_path):
    """Call ``service_env(KEY=value, ...)`` to set the environment before :func:`started`."""

    def setup(**extra: str) -> None:
        point_at(monkeypatch, tiny_bundle, tmp_path, **extra)

    return setup


def _check_label(part: dict, labels: tuple[str, ...]) -> None:
    assert set(part) == {"label", "scores", "low_confidence"}
    assert set(part["scores"]) == set(labels) and part["label"] in labels
    assert sum(part["scores"].values()) == pytest.approx(1.0, abs=1e-4)
    assert isinstance(part["low_confidence"], bool)


# ---------------------------------------------------------------------------------------
# Shapes


def test_analyze_returns_every_part_in_request_order(client):
    second = {"id": 7, "text": STORY[1] + " " + STORY[3], "summary_sentences": 1}
    response = client.post("/analyze", json={"articles": [ARTICLE, second]})
    assert response.status_code == 200, response.text
    first, other = response.json()["results"]
    assert list(first) == ["id", "topic", "summary", "stances", "warnings", "model_versions"]
    assert (first["id"], other["id"]) == ("a-1", 7)
    _check_label(first["topic"], TOPIC_LABELS)

    summary = first["summary"]
    assert set(summary) == {"sentences", "indices", "offsets"}
    assert len(summary["sentences"]) == 2  # the default k
    assert len(other["summary"]["sentences"]) == 1
    for sentence, (start, end) in zip(summary["sentences"], summary["offsets"], strict=True):
        assert ARTICLE_TEXT[start:end] == sentence  # offsets slice the original text
    assert summary["indices"] == sorted(summary["indices"])

    assert [s["claim"] for s in first["stances"]] == CLAIMS
    for stance in first["stances"]:
        assert list(stance) == [
            "claim",
            "label",
            "label_set",
            "scores",
            "low_confidence",
            "evidence",
        ]
        assert stance["label_set"] == "article"
        _check_label({k: stance[k] for k in ("label", "scores", "low_confidence")}, STANCE_LABELS)
        assert stance["evidence"]
        for ev in stance["evidence"]:
            assert ARTICLE_TEXT[ev["start"] : ev["end"]] == ev["text"]
            assert ev["text"] not in BOILERPLATE
    assert other["stances"] == []
    assert set(first["model_versions"]) == {"topic", "summary", "stance"}
    assert first["warnings"] == [] or first["warnings"] == ["text truncated"]


def test_a_claim_against_a_headline_gets_the_headline_head_and_its_labels(client):
    headline = {"text": "الوزارة تفتتح معرض الكتاب الدولي", "claims": [CLAIMS[0]]}
    response = client.post("/stance", json={"articles": [headline, ARTICLE]})
    assert response.status_code == 200, response.text
    short, long = (r["stances"] for r in response.json()["results"])
    assert [s["label_set"] for s in short] == ["headline"]
    _check_label(
        {k: short[0][k] for k in ("label", "scores", "low_confidence")},
        ("agree", "disagree", "other"),
    )
    assert short[0]["evidence"][0]["text"] == headline["text"]
    assert {s["label_set"] for s in long} == {"article"}


@pytest.mark.parametrize(
    ("route", "part"), [("/topic", "topic"), ("/summarize", "summary"), ("/stance", "stances")]
)
def test_single_part_routes_have_the_same_shapes(client, route, part):
    response = client.post(route, json={"articles": [ARTICLE]})
    assert response.status_code == 200, response.text
    [result] = response.json()["results"]
    assert list(result) == ["id", part, "warnings", "model_versions"]
    analyzed = client.post("/analyze", json={"articles": [ARTICLE]}).json()["results"][0]
    assert result[part] == analyzed[part]  # the same scoring path
    assert list(result["model_versions"]) == [{"stances": "stance"}.get(part, part)]


def test_boilerplate_is_never_in_the_summary(client):
    article = {"text": ARTICLE_TEXT, "summary_sentences": 20}  # more than there are sentences
    [result] = client.post("/summarize", json={"articles": [article]}).json()["results"]
    assert result["summary"]["sentences"] == STORY  # every story sentence, no boilerplate
    for sentence, (start, end) in zip(
        result["summary"]["sentences"], result["summary"]["offsets"], strict=True
    ):
        assert ARTICLE_TEXT[start:end] == sentence


def test_summary_max_words_bounds_the_summary(client):
    article = {"text": ARTICLE_TEXT, "summary_sentences": 5, "summary_max_words": 1}
    [result] = client.post("/summarize", json={"articles": [article]}).json()["results"]
    assert len(result["summary"]["sentences"]) == 1  # the best sentence is always kept


def test_text_without_punctuation_still_gets_a_summary(client):
    text = " ".join(s.rstrip(".") for s in STORY[:2])
    [result] = client.post("/summarize", json={"articles": [{"text": text}]}).json()["results"]
    assert result["summary"]["sentences"]


def test_non_arabic_text_is_scored_but_flagged(client):
    response = client.post(
        "/analyze", json={"articles": [{"text": ENGLISH_TEXT}, {"text": STORY[0]}]}
    )
    assert response.status_code == 200
    english, arabic = response.json()["results"]
    assert "mostly non-Arabic text" in english["warnings"]
    assert english["topic"]["label"] in TOPIC_LABELS
    assert "mostly non-Arabic text" not in arabic["warnings"]


def test_long_text_is_flagged_truncated(client):
    long_text = " ".join(STORY * 30)  # far beyond the tiny bundle's windows
    [result] = client.post("/topic", json={"articles": [{"text": long_text}]}).json()["results"]
    assert "text truncated" in result["warnings"]


def test_health_readiness_and_openapi_document(client):
    assert client.get("/livez").status_code == 200
    assert client.get("/readyz").status_code == 200
    document = client.get("/docs.json").json()
    for route in ("/analyze", "/topic", "/summarize", "/stance"):
        assert route in document["paths"]
    label_set = document["components"]["schemas"]["Stance"]["properties"]["label_set"]
    assert label_set["enum"] == ["article", "headline"] and "other" in label_set["description"]


# ---------------------------------------------------------------------------------------
# Bad input: a 4xx with a JSON body naming the field, never a 500


def _article(**fields):
    return {"articles": [{"text": STORY[0], **fields}]}


BAD_BODIES = {
    "missing articles": ({}, ["articles"]),
    "articles not a list": ({"articles": {"text": "x"}}, ["articles"]),
    "empty articles": ({"articles": []}, ["articles"]),
    "too many articles": ({"articles": [{"text": STORY[0]}] * 65}, ["articles"]),
    "missing text": ({"articles": [{"title": "x"}]}, ["articles", 0, "text"]),
    "empty text": (_article(text=""), ["articles", 0, "text"]),
    "blank text": (_article(text="  \n "), ["articles", 0, "text"]),
    "text of wrong type": (_article(text=42), ["articles", 0, "text"]),
    "text over the limit": (_article(text="ن" * 100_001), ["articles", 0, "text"]),
    "claims not a list": (_article(claims="one claim"), ["articles", 0, "claims"]),
    "claim of wrong type": (_article(claims=[1]), ["articles", 0, "claims", 0]),
    "empty claim": (_article(claims=[" "]), ["articles", 0, "claims"]),
    "too many claims": (_article(claims=["ادعاء"] * 17), ["articles", 0, "claims"]),
    "summary_sentences 0": (_article(summary_sentences=0), ["articles", 0, "summary_sentences"]),
    "summary_sentences 21": (_article(summary_sentences=21), ["articles", 0, "summary_sentences"]),
    "summary_sentences as text": (
        _article(summary_sentences="3"),
        ["articles", 0, "summary_sentences"],
    ),
    "summary_max_words 0": (_article(summary_max_words=0), ["articles", 0, "summary_max_words"]),
    "unknown field": (_article(summary_sentence=3), ["articles", 0, "summary_sentence"]),
    "id of wrong type": (_article(id=[1]), ["articles", 0, "id"]),
    "id over 2,048 characters": (_article(id="x" * 2049), ["articles", 0, "id"]),
    "id beyond 64 bits": (_article(id=2**63), ["articles", 0, "id"]),
    "id true": (_article(id=True), ["articles", 0, "id"]),
}


@pytest.mark.parametrize("case", list(BAD_BODIES))
def test_bad_input_is_a_400_naming_the_field(client, case):
    body, field = BAD_BODIES[case]
    response = client.post("/analyze", json=body)
    assert response.status_code == 400, response.text
    detail = response.json()["detail"]
    assert any(d["loc"][: len(field)] == field for d in detail), detail
    assert all(d.get("msg") for d in detail)


def test_stance_needs_claims(client):
    response = client.post("/stance", json=_article())
    assert response.status_code == 400
    assert response.json()["detail"][0]["loc"] == ["articles", 0, "claims"]


def test_malformed_json_is_a_400(client):
    response = client.post(
        "/analyze", content=b'{"articles": [', headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["detail"][0]["type"] == "json_invalid"


def test_limits_come_from_the_environment_at_start_up(service_env):
    service_env(AKHBAR_MAX_TEXT_CHARS="50", AKHBAR_MAX_CLAIMS="1", AKHBAR_MAX_ARTICLES="2")
    with started() as c:
        assert c.post("/topic", json=_article(text="ن" * 51)).status_code == 400
        assert "AKHBAR_MAX_TEXT_CHARS" in c.post("/topic", json=_article(text="ن" * 51)).text
        assert c.post("/analyze", json=_article(text="نص", claims=["أ", "ب"])).status_code == 400
        assert c.post("/topic", json={"articles": [{"text": "نص"}] * 3}).status_code == 400
        assert c.post("/topic", json={"articles": [{"text": "نص"}] * 2}).status_code == 200


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("AKHBAR_MAX_CLAIMS", "many", "AKHBAR_MAX_CLAIMS must be a whole number"),
        (
            "AKHBAR_PRECISION",
            "fp16",
            "AKHBAR_PRECISION must be one of auto, fp32, bf16, int8, onnx-int8, got 'fp16'",
        ),
        (
            "AKHBAR_TORCH_THREADS",
            "-1",
            r"AKHBAR_TORCH_THREADS must be 0 \(share the cores\) or more, got -1",
        ),
    ],
)
def test_bad_setting_stops_start_up_naming_it(service_env, name, value, message):
    service_env(**{name: value})
    with pytest.raises(Exception, match=message):
        with started():
            pass


# ---------------------------------------------------------------------------------------
# Body size (413 before parsing), auth, request ids, logs


def test_oversized_bodies_get_413_before_parsing(service_env):
    service_env(AKHBAR_MAX_BODY_BYTES="2000")
    big = json.dumps({"articles": [{"text": "ن" * 3000}]}).encode()
    with started() as c:
        response = c.post("/analyze", content=big, headers={"content-type": "application/json"})
        assert response.status_code == 413
        assert "AKHBAR_MAX_BODY_BYTES" in response.json()["error"]
        assert response.headers["x-request-id"]

        def chunks():  # no Content-Length: chunked transfer
            for i in range(0, len(big), 500):
                yield big[i : i + 500]

        response = c.post(
            "/analyze", content=chunks(), headers={"content-type": "application/json"}
        )
        assert response.status_code == 413
        small = json.dumps({"articles": [{"text": STORY[0]}]}).encode()
        response = c.post(
            "/topic", content=iter([small]), headers={"content-type": "application/json"}
        )
        assert response.status_code == 200, response.text


def test_auth_is_off_without_a_token(client):
    assert client.post("/topic", json=_article()).status_code == 200


def test_bearer_token_guards_the_api_but_not_health_or_docs(service_env):
    service_env(AKHBAR_API_TOKEN="test-token")
    with started() as c:
        missing = c.post("/topic", json=_article())
        assert missing.status_code == 401
        assert "Authorization: Bearer" in missing.json()["error"]
        assert missing.headers["www-authenticate"].startswith("Bearer")
        assert (
            c.post("/topic", json=_article(), headers={"authorization": "Bearer wrong"}).status_code
            == 401
        )
        assert (
            c.post("/topic", json=_article(), headers={"authorization": "test-token"}).status_code
            == 401
        )
        assert c.post("/score_batch", json={"items": []}).status_code == 401  # not even a 404
        assert c.post("/topic", json=_article(), headers=AUTH).status_code == 200
        assert c.post("/analyze", json=_article(claims=["ادعاء"]), headers=AUTH).status_code == 200
        for path in ("/livez", "/readyz", "/docs.json", "/schema.json"):
            assert c.get(path).status_code == 200, path


def test_request_id_is_echoed_or_generated(client):
    echoed = client.post("/topic", json=_article(), headers={"x-request-id": "req-42"})
    assert echoed.headers["x-request-id"] == "req-42"
    generated = client.post("/topic", json=_article())
    assert re.fullmatch(r"[0-9a-f]{32}", generated.headers["x-request-id"])
    hostile = client.post(
        "/topic", json=_article(), headers={"x-request-id": "x\tinjected" + "a" * 200}
    )
    assert re.fullmatch(r"[0-9a-f]{32}", hostile.headers["x-request-id"])
    bad = client.post("/topic", json={"articles": []}, headers={"x-request-id": "req-43"})
    assert (bad.status_code, bad.headers["x-request-id"]) == (400, "req-43")
    assert (
        client.get("/livez", headers={"x-request-id": "req-44"}).headers["x-request-id"] == "req-44"
    )


class _Lines(logging.Handler):
    def __init__(self):
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def test_one_structured_log_line_per_request_without_text(client):
    handler = _Lines()
    access = logging.getLogger("akhbar.access")
    access.addHandler(handler)
    try:
        client.post(
            "/analyze",
            json={"articles": [ARTICLE, {"text": STORY[2]}]},
            headers={"x-request-id": "log-1"},
        )
        client.post("/analyze", json={"articles": []}, headers={"x-request-id": "log-2"})
    finally:
        access.removeHandler(handler)
    lines = [json.loads(line) for line in handler.lines]
    assert [line["request_id"] for line in lines] == ["log-1", "log-2"]  # nested calls not logged
    ok, bad = lines
    assert (ok["route"], ok["status"], ok["articles"], ok["method"]) == ("/analyze", 200, 2, "POST")
    assert bad["status"] == 400 and ok["latency_ms"] >= 0
    text = "".join(handler.lines)
    for sentence in STORY + CLAIMS:
        assert sentence not in text


# ---------------------------------------------------------------------------------------
# Timeouts and overload: 504/503 with Retry-After, and the service stays healthy


def _slow_analyze(monkeypatch, seconds: float) -> None:
    from akhbar.serving.core.analyzer import Analyzer

    original = Analyzer.analyze

    def slow(self, articles, tasks=None):
        time.sleep(seconds)
        return original(self, articles, tasks)

    monkeypatch.setattr(Analyzer, "analyze", slow)


def test_timeout_answers_504_with_retry_after_and_the_service_recovers(service_env, monkeypatch):
    service_env(AKHBAR_REQUEST_TIMEOUT="0.5", AKHBAR_RETRY_AFTER="7")
    with started() as c:
        _slow_analyze(monkeypatch, 1.5)
        response = c.post("/topic", json=_article(), headers={"x-request-id": "slow-1"})
        assert response.status_code == 504
        assert response.headers["retry-after"] == "7"
        assert response.headers["x-request-id"] == "slow-1"
        assert "AKHBAR_REQUEST_TIMEOUT" in response.json()["error"]
        monkeypatch.undo()
        service_env(AKHBAR_REQUEST_TIMEOUT="0.5")
        assert c.get("/livez").status_code == 200
        deadline = time.monotonic() + 10
        while True:  # the abandoned batch finishes in the background first
            status = c.post("/topic", json=_article()).status_code
            if status == 200 or time.monotonic() > deadline:
                break
        assert status == 200


def test_requests_beyond_the_queue_get_503_with_retry_after(service_env, monkeypatch):
    service_env(AKHBAR_MAX_QUEUE="1")
    with started() as c:
        _slow_analyze(monkeypatch, 1.0)
        statuses = []
        first = threading.Thread(
            target=lambda: statuses.append(c.post("/topic", json=_article()).status_code)
        )
        first.start()
        time.sleep(0.4)
        busy = c.post("/topic", json=_article())
        first.join()
        assert statuses == [200]
        assert busy.status_code == 503
        assert busy.headers["retry-after"] and "AKHBAR_MAX_QUEUE" in busy.json()["error"]


# ---------------------------------------------------------------------------------------
# Models: a missing or corrupt model stops start-up with one sentence


def test_missing_model_stops_start_up_with_one_sentence(service_env, monkeypatch):
    service_env()
    monkeypatch.delenv("AKHBAR_TOPIC_MODEL")
    with pytest.raises(Exception) as error:
        with started():
            pass
    message = str(error.value)
    assert (
        "no topic model" in message
        and "akhbar models import" in message
        and "make models" in message
    )
    assert "\n" not in message.strip()


def test_corrupt_model_stops_start_up_naming_it(service_env, tiny_bundle, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_bundle, broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    service_env(AKHBAR_SUMMARY_MODEL=str(broken))
    with pytest.raises(Exception) as error:
        with started():
            pass
    message = str(error.value)
    assert (
        "summary model" in message and str(broken) in message and "akhbar models import" in message
    )


def test_stop_startup_stops_the_bentoml_arbiter_only_inside_a_server_worker(monkeypatch, tmp_path):
    from bentoml._internal.context import server_context

    from akhbar.serving.http import startup

    kills, exits = [], []

    def exit_(status):
        exits.append(status)
        raise SystemExit(status)

    monkeypatch.setattr(startup.os, "kill", lambda pid, sig: kills.append((pid, sig)))
    monkeypatch.setattr(startup.os, "_exit", exit_)
    monkeypatch.setenv("AKHBAR_STARTUP_ERROR_FILE", str(tmp_path / "why"))
    with pytest.raises(startup.StartupError):
        startup.stop_startup("the topic model is missing.")
    assert (
        kills == [] and exits == []
    )  # in process (tests, notebooks): never signal the parent or exit
    assert (tmp_path / "why").read_text().strip() == "the topic model is missing."
    monkeypatch.setattr(server_context, "worker_index", 1)
    with pytest.raises(SystemExit):  # a server worker exits at once, without a traceback
        startup.stop_startup("the topic model is missing.")
    assert kills == [(startup.os.getppid(), startup.signal.SIGTERM)] and exits == [1]


def test_torch_threads_share_the_usable_cores_among_the_workers(monkeypatch):
    from akhbar.serving.core import config
    from akhbar.serving.http.settings import ServiceSettings

    monkeypatch.setattr(config, "USABLE_CPUS", 8)
    assert ServiceSettings().runtime().torch_threads == 8
    assert ServiceSettings(workers=3).runtime().torch_threads == 2
    assert ServiceSettings(workers=16).runtime().torch_threads == 1
    assert (
        ServiceSettings(workers=3, scoring=config.ScoringConfig(torch_threads=4))
        .runtime()
        .torch_threads
        == 4
    )
    assert (
        config.ScoringConfig().runtime().torch_threads == 8
    )  # akhbar score: one process, every core


def test_applying_a_runtime_sets_torch_threads_and_keeps_the_tokenizer_on_the_caller(
    monkeypatch,
):
    import torch

    from akhbar.serving.core.config import ScoringConfig

    before = torch.get_num_threads()
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "true")  # recorded, restored after the test
    monkeypatch.delenv("TOKENIZERS_PARALLELISM")
    runtime = ScoringConfig(torch_threads=1).runtime()
    try:
        runtime.apply()
        assert torch.get_num_threads() == 1
        assert os.environ["TOKENIZERS_PARALLELISM"] == "false"
        monkeypatch.setenv("TOKENIZERS_PARALLELISM", "true")  # a user's own setting stands
        runtime.apply()
        assert os.environ["TOKENIZERS_PARALLELISM"] == "true"
    finally:
        torch.set_num_threads(before)


def test_onnx_precision_without_its_extra_names_the_install(monkeypatch):
    from akhbar import extras
    from akhbar.serving.core import config

    assert config.ScoringConfig(precision="onnx-int8").precision == "onnx-int8"  # installed here
    monkeypatch.setattr(extras, "missing", lambda extra: ["onnxruntime"] if extra == "onnx" else [])
    with pytest.raises(ValueError, match=r"pip install 'akhbar\[onnx\]'"):
        config.ScoringConfig(precision="onnx-int8")


def test_retired_and_misspelt_variables_are_named_at_start_up():
    from akhbar.serving.http.settings import unknown_variables

    environ = {
        "AKHBAR_THREADS": "2",
        "AKHBAR_MAX_QEUE": "8",
        "AKHBAR_MAX_QUEUE": "8",
        "AKHBAR_DATA": "/data",
        "AKHBAR_LOADTEST_WAIT": "0",
        "HOME": "/root",
    }
    assert unknown_variables(environ) == [
        "AKHBAR_MAX_QEUE is not a setting and is ignored; did you mean AKHBAR_MAX_QUEUE?",
        "AKHBAR_THREADS is no longer read: torch's threads are AKHBAR_TORCH_THREADS",
    ]


def test_what_start_up_made_is_kept_out_of_the_garbage_collectors_way(client):
    import gc

    # A full collection over the objects of torch, BentoML and the models held the event loop
    # for about 240 ms; the worker freezes them once its models are loaded.
    assert gc.get_freeze_count() > 100_000
