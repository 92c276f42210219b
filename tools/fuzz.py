"""``make fuzz``: throw generated and hand-made bad input at the live service and check that
it answers every request as promised (serving/README.md, Reliability).

Two sources of requests, for every API route of the OpenAPI document (``/docs.json``):

* **Generated** by schemathesis from the live service's own document: schema-valid bodies
  (positive mode) and schema-breaking ones (negative mode: wrong types, missing and extra
  fields, values out of range).
* **The battery**: hand-made records and bodies a newsroom feed can carry: malformed JSON,
  wrong types, huge strings, deep nesting, invalid UTF-8, lone surrogates, NUL and control
  characters, right-to-left marks and mixed scripts, empty lists, 10,000-claim and
  10,000-article lists, bodies over the size limit, form bodies, wrong methods and paths.
  The same records go into the batch scorer in ``tests/serving/test_fuzz.py``.

The rules: no 5xx and no hang; every refusal is a 4xx whose JSON body names the problem
(``detail[].loc`` and ``msg``, or ``error``); at least 90 % of the schema-valid requests
get a 200 (a fuzzer whose requests are all refused proves nothing); each battery entry gets
the status it should; ``/readyz`` answers 200 afterwards; and the marker text put into
every battery article never shows up in the server's log.

The server is started with small limits (:data:`SMALL_LIMITS`: 2,000 characters, 4 claims,
4 articles, a 1 MiB body), which the document states, so valid requests stay cheap to score.
Models: whatever ``akhbar serve`` would load (``AKHBAR_<TASK>_MODEL``, the promoted or the
shipped ones).

    python -m tools.fuzz [--per-route 1000] [--seed 1] [--report fuzz.json]

Two corrections are made to BentoML's document before generating (BentoML writes it; these
are its defects, not the service's): ``requestBody`` is marked required (every API route
needs a body, and the 400 for a missing one says so); and responses are not checked against
the document's schemas (it declares the 400's ``detail`` as a string, where it is a list),
the rules above check the bodies instead.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx

from akhbar.serving.http.settings import ServiceSettings
from tools.localserver import bearer

SMALL_LIMITS = {
    "AKHBAR_MAX_TEXT_CHARS": "2000",
    "AKHBAR_MAX_CLAIMS": "4",
    "AKHBAR_MAX_ARTICLES": "4",
    "AKHBAR_MAX_BODY_BYTES": str(1 << 20),
}
ROUTES = ("/analyze", "/topic", "/summarize", "/stance")
MIN_VALID_2XX = 0.90
POSITIVE_SHARE = 0.6  # of the generated requests per route; the rest are negative
REQUEST_TIMEOUT_S = 120.0

# Put into every battery article (text, title, claims): it must never reach the server's log
# or an error message. Latin and Arabic, so a log that mangles one script still shows it.
MARKER = "fuzzmark7c1e-علامة"

# Project-written sentences (no outlet's text) for the battery's good articles.
SENTENCES = [
    "أعلنت وزارة الصحة اليوم افتتاح مستشفى جديد في المدينة.",
    "وقال الوزير إن المستشفى يضم مئتي سرير ويخدم نصف مليون نسمة.",
    "وتوقع مسؤولون أن يخفف المشروع الضغط على المستشفيات القديمة.",
]
GOOD_TEXT = f"{MARKER} " + " ".join(SENTENCES)
GOOD_CLAIM = f"المستشفى الجديد يضم مئتي سرير {MARKER}"


# ---------------------------------------------------------------------------------------
# The battery


@dataclass(frozen=True)
class Record:
    """One battery record: an article object (or a raw JSON Lines line) and what it must give.

    Parameters
    ----------
    name: what the record tests.
    value: the article as a Python value (dumped as JSON), or ``bytes``: the raw line.
    field: for a bad record, the field a 400 must name (``detail[].loc`` starts with
        ``["articles", 0, field]``; ``""``: only ``["articles", 0]``; None: any 400, e.g. for
        a body that is not valid JSON). Unused for good records.
    reason: for a bad record, a piece of the batch scorer's reject reason.
    good: the service scores it (200) and so does the batch scorer.
    known_bug: a known bug makes the service answer it wrongly: what goes wrong, where.
        The run reports it apart (it does not fail the run); a strict xfail test in
        tests/serving/test_fuzz.py notices when it is fixed.
    """

    name: str
    value: Any
    field: str | None = None
    reason: str = ""
    good: bool = False
    known_bug: str = ""

    def line(self) -> bytes:
        """The record as one JSON Lines line (no newline)."""
        if isinstance(self.value, bytes):
            return self.value
        return json.dumps(self.value, ensure_ascii=False).encode("utf-8")


def _text(n: int, prefix: str = MARKER) -> str:
    """Arabic text of exactly ``n`` characters (real sentences, repeated)."""
    body = prefix + " " + " ".join(SENTENCES * (n // 100 + 1))
    return body[:n]


def battery(limits: ServiceSettings) -> list[Record]:
    """Good and bad records for the service's ``limits``; ids are ``b-<n>``."""
    t, c = limits.scoring.max_text_chars, limits.scoring.max_claim_chars
    good = [
        (
            "plain Arabic article with a claim",
            {"text": GOOD_TEXT, "title": "افتتاح مستشفى", "claims": [GOOD_CLAIM]},
        ),
        (
            "NUL and control characters",
            {
                "text": f"نص\x00 عربي\x01\x07\x1b[31m\x7f {GOOD_TEXT}\x0b\x0c",
                "claims": [f"ادعاء\x00 {MARKER}"],
            },
        ),
        ("text of one NUL", {"text": "\x00", "claims": [GOOD_CLAIM]}),
        (
            "right-to-left and left-to-right marks and overrides",
            {
                "text": f"\u200f\u202e{GOOD_TEXT}\u202c\u200e \u2067English\u2069 \u061c١٢٣ 123",
                "title": "\u200fعنوان\u200e",
                "claims": [f"\u202b{GOOD_CLAIM}\u202c"],
            },
        ),
        ("only right-to-left marks", {"text": "\u200f\u200f\u200e", "claims": ["\u200f"]}),
        (
            "mixed scripts, emoji and combining marks",
            {
                "text": f"{GOOD_TEXT} Breaking: שלום 你好 Привет 👩🏽‍💻🇪🇬 e\u0301 ﷺ ﻻ",
                "claims": [f"{MARKER} 😀 claim"],
            },
        ),
        ("Arabic diacritics and tatweel only", {"text": "ًٌٍَُِّْـــــ", "claims": ["ـــ"]}),
        (
            "English only",
            {"text": f"{MARKER} The ministry opened a new hospital today.", "claims": ["A claim."]},
        ),
        (
            "text, title and the number of claims exactly at the limits",
            {
                "text": _text(t),
                "title": _text(t),
                "claims": [GOOD_CLAIM] * limits.scoring.max_claims,
            },
        ),
        ("a claim as long as the claim limit", {"text": GOOD_TEXT, "claims": [_text(c)]}),
        (
            "one long line without punctuation",
            {"text": ("كلمة " * (t // 5))[:t].strip(), "claims": [GOOD_CLAIM]},
        ),
        ("many newlines", {"text": "\n" * 50 + GOOD_TEXT + "\r\n" * 50, "claims": [GOOD_CLAIM]}),
        ("the largest integer id", {"id": 2**63 - 1, "text": GOOD_TEXT, "claims": [GOOD_CLAIM]}),
        ("a negative integer id", {"id": -7, "text": GOOD_TEXT, "claims": [GOOD_CLAIM]}),
        (
            "an id of 2,048 characters",
            {"id": "i" * 2048, "text": GOOD_TEXT, "claims": [GOOD_CLAIM]},
        ),
        (
            "an id with right-to-left marks",
            {"id": f"\u200fb-{MARKER}", "text": GOOD_TEXT, "claims": [GOOD_CLAIM]},
        ),
        ("a null title", {"text": GOOD_TEXT, "title": None, "claims": [GOOD_CLAIM]}),
    ]
    many = limits.scoring.max_claims + 1
    bad = [
        ("missing text", {"title": f"عنوان {MARKER}"}, "text", "field 'text': missing"),
        ("null text", {"text": None}, "text", "field 'text': null"),
        ("empty text", {"text": ""}, "text", "field 'text': empty"),
        ("blank text", {"text": " \n\t\u3000 "}, "text", "field 'text': empty"),
        ("text of wrong type (number)", {"text": 42}, "text", "field 'text': expected a string"),
        (
            "text of wrong type (list)",
            {"text": [GOOD_TEXT]},
            "text",
            "field 'text': expected a string",
        ),
        (
            "text of wrong type (object)",
            {"text": {"ar": GOOD_TEXT}},
            "text",
            "field 'text': expected a string",
        ),
        (
            "text one character over the limit",
            {"text": _text(t + 1)},
            "text",
            "(AKHBAR_MAX_TEXT_CHARS)",
        ),
        (
            "huge text (100 times the limit)",
            {"text": _text(100 * t)},
            "text",
            "(AKHBAR_MAX_TEXT_CHARS)",
        ),
        (
            "title over the limit",
            {"text": GOOD_TEXT, "title": _text(t + 1)},
            "title",
            "field 'title'",
        ),
        (
            "title of wrong type",
            {"text": GOOD_TEXT, "title": ["عنوان"]},
            "title",
            "field 'title': expected a string",
        ),
        (
            "claims not a list",
            {"text": GOOD_TEXT, "claims": GOOD_CLAIM},
            "claims",
            "field 'claims'",
        ),
        ("claim of wrong type", {"text": GOOD_TEXT, "claims": [1]}, "claims", "field 'claims'"),
        (
            "nested claim list",
            {"text": GOOD_TEXT, "claims": [[GOOD_CLAIM]]},
            "claims",
            "field 'claims'",
        ),
        ("blank claim", {"text": GOOD_TEXT, "claims": [" \t "]}, "claims", "field 'claims'"),
        (
            "one claim over the claim limit",
            {"text": GOOD_TEXT, "claims": [GOOD_CLAIM] * many},
            "claims",
            "(AKHBAR_MAX_CLAIMS)",
        ),
        (
            "10,000 claims",
            {"text": GOOD_TEXT, "claims": [GOOD_CLAIM] * 10_000},
            "claims",
            "10000 claims",
        ),
        (
            "claim over the claim length limit",
            {"text": GOOD_TEXT, "claims": [_text(c + 1)]},
            "claims",
            "(AKHBAR_MAX_CLAIM_CHARS)",
        ),
        ("id of wrong type (list)", {"id": [1], "text": GOOD_TEXT}, "id", "field 'id'"),
        ("id of wrong type (float)", {"id": 1.5, "text": GOOD_TEXT}, "id", "field 'id'"),
        ("id of wrong type (object)", {"id": {"n": 1}, "text": GOOD_TEXT}, "id", "field 'id'"),
        ("an integer id beyond 64 bits", {"id": 10**30, "text": GOOD_TEXT}, "id", "field 'id'"),
        ("an id over 2,048 characters", {"id": "i" * 2049, "text": GOOD_TEXT}, "id", "field 'id'"),
        # Raw lines: what a JSON Lines feed can hold that no Python value dumps to.
        (
            "malformed JSON (cut off)",
            b'{"id": "cut", "text": "' + MARKER.encode() + b" \xd9\x86\xd8\xb5",
            None,
            "invalid JSON",
        ),
        (
            "malformed JSON (trailing comma)",
            b'{"text": "' + MARKER.encode() + b'",}',
            None,
            "invalid JSON",
        ),
        (
            "malformed JSON (single quotes)",
            b"{'text': '" + MARKER.encode() + b"'}",
            None,
            "invalid JSON",
        ),
        (
            "invalid UTF-8 bytes",
            b'{"text": "' + MARKER.encode() + b' \xff\xfe\xc3("}',
            None,
            "not UTF-8",
        ),
        (
            "overlong UTF-8 encoding of a slash",
            b'{"text": "\xc0\xaf' + MARKER.encode() + b'"}',
            None,
            "not UTF-8",
        ),
        (
            "a lone surrogate escape in the text",
            b'{"text": "' + MARKER.encode() + b' \\ud800 \\udfff"}',
            None,
            "invalid Unicode",
        ),
        (
            "a lone surrogate escape in a claim",
            b'{"text": "' + MARKER.encode() + b'", "claims": ["\\udc80"]}',
            None,
            "invalid Unicode",
        ),
        ("not an object (a list)", [GOOD_TEXT], "", "not a JSON object"),
        ("not an object (a string)", GOOD_TEXT, "", "not a JSON object"),
        ("not an object (null)", None, "", "not a JSON object"),
    ]
    records = [
        Record(name, value, good=True, known_bug=KNOWN_BUGS.get(name, "")) for name, value in good
    ]
    records += [Record(name, value, f, reason) for name, value, f, reason in bad]
    for i, record in enumerate(records):  # a unique id for every object that does not test ids
        if isinstance(record.value, dict) and "id" not in record.value:
            records[i] = replace(record, value={"id": f"b-{i}", **record.value})
    return records


# Inputs a known bug makes the service answer wrongly (name -> what goes wrong, where); the
# fuzz run reports them apart from new failures. None is known now.
KNOWN_BUGS: dict[str, str] = {}

# Nesting far past any JSON parser's recursion limit: a separate record, sent to the batch
# scorer only (see tests/serving/test_fuzz.py).
DEEP_NESTING = Record(
    "claims nested 100,000 deep",
    b'{"id": "b-deep", "text": "'
    + MARKER.encode()
    + b'", "claims": '
    + b"[" * 100_000
    + b"]" * 100_000
    + b"}",
    None,
    "invalid JSON",
)


@dataclass(frozen=True)
class Raw:
    """A whole HTTP request of the battery and the status it must get."""

    name: str
    body: bytes
    status: int
    content_type: str = "application/json"  # "": the request sends none
    method: str = "POST"
    path: str | None = None  # None: the route under test


def raw_requests(limits: ServiceSettings) -> list[Raw]:
    """Bodies that are bad as a whole; the same for every route."""
    over = limits.max_body_bytes + 1
    one = json.dumps({"text": GOOD_TEXT, "claims": [GOOD_CLAIM]}, ensure_ascii=False)
    return [
        Raw("empty body", b"", 400),
        Raw("body of whitespace", b" \n ", 400),
        Raw("malformed JSON", b'{"articles": [', 400),
        Raw("JSON null", b"null", 400),
        Raw("JSON list", b"[]", 400),
        Raw("JSON string", json.dumps(GOOD_TEXT).encode(), 400),
        Raw("articles not a list", b'{"articles": {"text": "x"}}', 400),
        Raw("empty articles list", b'{"articles": []}', 400),
        Raw(
            "one article over the article limit",
            (
                '{"articles": [' + ",".join([one] * (limits.scoring.max_articles + 1)) + "]}"
            ).encode(),
            400,
        ),
        Raw(
            "10,000 articles",
            ('{"articles": [' + ",".join(['{"text": "نص"}'] * 10_000) + "]}").encode(),
            400,
        ),
        Raw("unknown top-level field only", b'{"article": [{"text": "x"}]}', 400),
        Raw(
            "unknown article field",
            ('{"articles": [{"text": "' + MARKER + '", "body": "x"}]}').encode(),
            400,
        ),
        Raw("summary_sentences 0", b'{"articles": [{"text": "x", "summary_sentences": 0}]}', 400),
        Raw("summary_sentences 21", b'{"articles": [{"text": "x", "summary_sentences": 21}]}', 400),
        Raw(
            "summary_sentences as text",
            b'{"articles": [{"text": "x", "summary_sentences": "3"}]}',
            400,
        ),
        Raw(
            "summary_sentences 2.5", b'{"articles": [{"text": "x", "summary_sentences": 2.5}]}', 400
        ),
        Raw(
            "summary_max_words negative",
            b'{"articles": [{"text": "x", "summary_max_words": -1}]}',
            400,
        ),
        Raw("nesting 100,000 deep", b'{"articles": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", 400),
        Raw(
            "objects nested 10,000 deep",
            b'{"articles": [' + b'{"a":' * 10_000 + b"1" + b"}" * 10_000 + b"]}",
            400,
        ),
        Raw("invalid UTF-8", b'{"articles": [{"text": "\xff\xfe"}]}', 400),
        Raw("UTF-16", ('{"articles": [{"text": "' + MARKER + '"}]}').encode("utf-16"), 400),
        Raw("byte-order mark", b"\xef\xbb\xbf" + ('{"articles": [' + one + "]}").encode(), 400),
        Raw("NUL bytes outside strings", b'{"articles":\x00 [' + one.encode() + b"]}", 400),
        Raw("body over the size limit", b'{"articles": [{"text": "' + b"x" * over + b'"}]}', 413),
        Raw("malformed body over the size limit (413 before parsing)", b"{" * over, 413),
        Raw("multipart without a boundary", b"articles=x", 415, "multipart/form-data"),
        Raw("multipart with garbage", b"garbage", 415, "multipart/form-data; boundary=XX"),
        Raw("form body", b"articles=%5B%5D&text=x", 415, "application/x-www-form-urlencoded"),
        Raw("JSON sent as text/plain", ('{"articles": [' + one + "]}").encode(), 415, "text/plain"),
        Raw("XML", b"<articles><text>x</text></articles>", 415, "application/xml"),
        Raw("no Content-Type", ('{"articles": [' + one + "]}").encode(), 415, ""),
        Raw("GET on an API route", b"", 405, method="GET"),
        Raw("DELETE on an API route", b"", 405, method="DELETE"),
        Raw("unknown route", b"{}", 404, path="/analyse"),
        Raw("path with dot segments", b"{}", 404, path="/ui/../nothing"),
    ]


# ---------------------------------------------------------------------------------------
# Checking answers


def problem_named(response: Any) -> str | None:
    """None when a refusal's body is JSON that names the problem; else what is wrong with it.

    ``response``: an ``httpx.Response`` or schemathesis' own (both have ``json()`` and ``text``).
    """
    try:
        body = response.json()
    except ValueError:
        return f"not JSON: {response.text[:80]!r}"
    if isinstance(body, list) and body and isinstance(body[0], dict):
        body = body[0]  # BentoML can answer [{"error": ...}]
    if not isinstance(body, dict):
        return f"JSON but not an object: {str(body)[:80]!r}"
    detail = body.get("detail")
    if isinstance(detail, list) and detail:
        if all(
            isinstance(d, dict) and isinstance(d.get("loc"), list) and d.get("msg") for d in detail
        ):
            return None
        return f"detail without loc/msg: {str(detail)[:120]!r}"
    if isinstance(body.get("error"), str) and body["error"].strip():
        return None
    return f"no 'detail' or 'error': {str(body)[:120]!r}"


def names_field(response: httpx.Response, field_name: str | None) -> bool:
    """The 400 names ``["articles", 0, field_name]`` (or the body as a whole for None)."""
    if field_name is None:
        return True
    try:
        body = response.json()
        detail = body.get("detail") if isinstance(body, dict) else None
    except ValueError:
        return False
    want = ["articles", 0, field_name] if field_name else ["articles", 0]
    return isinstance(detail, list) and any(
        isinstance(d, dict) and d.get("loc", [])[: len(want)] == want for d in detail
    )


@dataclass
class RouteReport:
    """What one route answered."""

    route: str
    requests: int = 0
    valid: int = 0  # schema-valid generated requests (positive mode)
    valid_2xx: int = 0
    invalid: int = 0  # schema-breaking generated requests (negative mode)
    battery: int = 0
    statuses: Counter = field(default_factory=Counter)
    failures: list[str] = field(
        default_factory=list
    )  # 5xx, hangs, refusals without a named problem
    wrong: list[str] = field(default_factory=list)  # battery entries that got the wrong answer
    known: list[str] = field(default_factory=list)  # battery entries a known bug answers wrongly
    refused_valid: Counter = field(
        default_factory=Counter
    )  # why schema-valid requests were refused

    @property
    def valid_2xx_share(self) -> float:
        return self.valid_2xx / self.valid if self.valid else 0.0

    @property
    def count_5xx(self) -> int:
        return sum(n for s, n in self.statuses.items() if isinstance(s, int) and s >= 500)

    @property
    def count_4xx(self) -> int:
        return sum(n for s, n in self.statuses.items() if isinstance(s, int) and 400 <= s < 500)

    def as_dict(self) -> dict[str, Any]:
        return {
            "route": self.route,
            "requests": self.requests,
            "valid": self.valid,
            "valid_2xx": self.valid_2xx,
            "valid_2xx_share": round(self.valid_2xx_share, 4),
            "invalid": self.invalid,
            "battery": self.battery,
            "2xx": sum(n for s, n in self.statuses.items() if isinstance(s, int) and s < 300),
            "4xx": self.count_4xx,
            "5xx": self.count_5xx,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items(), key=str)},
            "failures": self.failures[:20],
            "wrong": self.wrong[:20],
            "known_bugs": self.known[:20],
            "refused_valid": dict(self.refused_valid.most_common(10)),
        }

    def note(
        self, status: int | str, response: httpx.Response | None, what: str, known_bug: str = ""
    ) -> None:
        """Count an answer; record a failure for a 5xx, a hang or an unexplained refusal."""
        self.requests += 1
        self.statuses[status] += 1
        failures = self.known if known_bug else self.failures
        if not isinstance(status, int):
            failures.append(f"{what}: {status}")
        elif status >= 500:
            failures.append(f"{what}: {status} {response.text[:120]!r}")
        elif status >= 400 and (problem := problem_named(response)):
            failures.append(f"{what}: {status} {problem}")


@dataclass
class FuzzReport:
    routes: dict[str, RouteReport]
    ready_after: int | None = None
    marker_in_log: bool | None = None
    seconds: float = 0.0

    def problems(self) -> list[str]:
        """Every rule broken, one line each; empty when the run passes."""
        out = []
        for r in self.routes.values():
            out += [f"{r.route}: {f}" for f in r.failures]
            out += [f"{r.route}: battery {w}" for w in r.wrong]
            if r.valid and r.valid_2xx_share < MIN_VALID_2XX:
                out.append(
                    f"{r.route}: only {r.valid_2xx}/{r.valid} schema-valid requests got a 2xx "
                    f"(want {MIN_VALID_2XX:.0%}); refused: {dict(r.refused_valid.most_common(5))}"
                )
        if self.ready_after != 200:
            out.append(f"/readyz answered {self.ready_after} after the run")
        if self.marker_in_log:
            out.append("article text (the battery's marker) appears in the server's log")
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "routes": [r.as_dict() for r in self.routes.values()],
            "ready_after": self.ready_after,
            "marker_in_log": self.marker_in_log,
            "seconds": round(self.seconds, 1),
            "problems": self.problems(),
        }

    def table(self) -> str:
        lines = [
            "| route | requests | schema-valid | of them 2xx "
            "| schema-breaking | battery | 4xx | 5xx |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in self.routes.values():
            lines.append(
                f"| {r.route} | {r.requests} | {r.valid} | {r.valid_2xx} ({r.valid_2xx_share:.1%}) "
                f"| {r.invalid} | {r.battery} | {r.count_4xx} | {r.count_5xx} |"
            )
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------
# Running


def _send(
    client: httpx.Client,
    report: RouteReport,
    what: str,
    method: str,
    path: str,
    *,
    content: bytes | None = None,
    headers: dict[str, str] | None = None,
    known_bug: str = "",
) -> httpx.Response | None:
    try:
        response = client.request(method, path, content=content, headers=headers)
    except httpx.TimeoutException:
        report.note("timeout", None, what, known_bug)
        return None
    except httpx.HTTPError as exc:
        report.note(type(exc).__name__, None, what, known_bug)
        return None
    report.note(response.status_code, response, what, known_bug)
    return response


def _article_body(record: Record) -> bytes:
    """One battery record as a request body."""
    return b'{"articles": [' + record.line() + b"]}"


def run_battery(
    client: httpx.Client,
    route: str,
    limits: ServiceSettings,
    report: RouteReport,
    auth: dict[str, str],
) -> None:
    """Every battery record, once, against ``route``."""
    json_headers = {"content-type": "application/json", **auth}
    for record in [*battery(limits), DEEP_NESTING]:
        response = _send(
            client,
            report,
            f"battery {record.name!r}",
            "POST",
            route,
            content=_article_body(record),
            headers=json_headers,
            known_bug=record.known_bug,
        )
        report.battery += 1
        if response is None:
            continue
        if wrong := _wrong_answer(record, response):
            (report.known if record.known_bug else report.wrong).append(f"{record.name!r}: {wrong}")


def _wrong_answer(record: Record, response: httpx.Response) -> str | None:
    """What is wrong with the service's answer to a battery record, or None."""
    status = response.status_code
    if record.good:
        return None if status == 200 else f"{status}, want 200: {response.text[:160]!r}"
    if status != 400:
        return f"{status}, want 400"
    if not names_field(response, record.field):
        return f"the 400 does not name {record.field!r}: {response.text[:160]!r}"
    return None


def _raw_battery(
    client: httpx.Client,
    route: str,
    limits: ServiceSettings,
    report: RouteReport,
    auth: dict[str, str],
) -> None:
    """Every raw request of the battery, once, against ``route``."""
    for raw in raw_requests(limits):
        path = raw.path or route
        response = _send(
            client,
            report,
            f"battery {raw.name!r}",
            raw.method,
            path,
            content=raw.body or None,
            headers={"content-type": raw.content_type, **auth} if raw.content_type else auth,
        )
        report.battery += 1
        if response is not None and response.status_code != raw.status:
            report.wrong.append(
                f"{raw.name!r}: {response.status_code}, want {raw.status}: {response.text[:160]!r}"
            )


def _load_schema(url: str, auth: dict[str, str]):
    """The live document, with BentoML's missing ``requestBody.required`` put right."""
    from schemathesis import openapi

    document = httpx.get(url + "/docs.json", headers=auth, timeout=30).raise_for_status().json()
    for path in document["paths"].values():
        for operation in path.values():
            if isinstance(operation, dict) and "requestBody" in operation:
                operation["requestBody"]["required"] = True
    return openapi.from_dict(document)


def run_generated(
    url: str, route: str, count: int, seed: int, report: RouteReport, auth: dict[str, str]
) -> None:
    """``count`` schemathesis-generated requests to ``route``: positive, then negative mode."""
    from schemathesis import GenerationMode

    operation = _load_schema(url, auth)[route]["POST"]
    positive = max(1, round(count * POSITIVE_SHARE))
    for mode, n in (
        (GenerationMode.POSITIVE, positive),
        (GenerationMode.NEGATIVE, count - positive),
    ):
        if n > 0:
            _generated_run(operation, mode, n, seed, url, report, auth)()


def _generated_run(
    operation, mode, n: int, seed: int, url: str, report: RouteReport, auth: dict[str, str]
):
    """A Hypothesis-driven function that sends ``n`` cases of ``mode`` and counts the answers."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hypothesis_seed
    from schemathesis import GenerationMode

    valid = mode == GenerationMode.POSITIVE
    sent = 0

    @hypothesis_seed(seed)
    @settings(
        max_examples=n,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )
    @given(operation.as_strategy(generation_mode=mode))
    def send(case) -> None:
        nonlocal sent
        if sent >= n:  # explicit examples come on top of max_examples
            return
        sent += 1
        what = f"{'valid' if valid else 'invalid'} {case.body!r}"[:300]
        report.requests += 1
        if valid:
            report.valid += 1
        else:
            report.invalid += 1
        try:
            response = case.call(base_url=url, headers=auth or None, timeout=REQUEST_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001 - a hang or a dropped connection is a finding
            report.statuses[type(exc).__name__] += 1
            report.failures.append(f"{what}: {type(exc).__name__}")
            return
        status = response.status_code
        report.statuses[status] += 1
        if valid and 200 <= status < 300:
            report.valid_2xx += 1
        elif valid:
            report.refused_valid[_why(response)] += 1
        if status >= 500:
            report.failures.append(f"{what}: {status} {response.text[:120]!r}")
        elif status >= 400 and (problem := problem_named(response)):
            report.failures.append(f"{what}: {status} {problem}")

    return send


def _why(response) -> str:
    """A short reason a schema-valid request was refused, for the report."""
    try:
        body = response.json()
        detail = body.get("detail") if isinstance(body, dict) else None
        if isinstance(detail, list) and detail:
            return f"{response.status_code} {detail[0].get('type')} {detail[0].get('loc')}"
        return f"{response.status_code} {str(body)[:60]}"
    except ValueError:
        return f"{response.status_code} {response.text[:60]!r}"


def run_fuzz(
    url: str,
    limits: ServiceSettings,
    per_route: int = 100,
    seed: int = 1,
    *,
    token: str | None = None,
    log: Path | None = None,
    routes: tuple[str, ...] = ROUTES,
    progress: Callable[[str], None] | None = None,
) -> FuzzReport:
    """Fuzz the service at ``url`` (started with ``limits``): ``per_route`` generated requests
    per route plus the battery; then ``/readyz`` and, given the server's ``log``, the marker."""
    started = time.monotonic()
    auth = bearer(token)
    report = FuzzReport({route: RouteReport(route) for route in routes})
    with httpx.Client(base_url=url, timeout=REQUEST_TIMEOUT_S) as client:
        for route in routes:
            run_battery(client, route, limits, report.routes[route], auth)
            _raw_battery(client, route, limits, report.routes[route], auth)
            run_generated(url, route, per_route, seed, report.routes[route], auth)
            if progress:
                r = report.routes[route]
                progress(
                    f"{route}: {r.requests} requests, {r.valid_2xx}/{r.valid} valid got 2xx, "
                    f"{r.count_4xx} 4xx, {r.count_5xx} 5xx"
                )
        try:
            report.ready_after = client.get("/readyz", timeout=30).status_code
        except httpx.HTTPError:
            report.ready_after = None
    if log is not None:
        time.sleep(0.5)  # the last access lines
        report.marker_in_log = MARKER in log.read_text(encoding="utf-8", errors="replace")
    report.seconds = time.monotonic() - started
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.fuzz", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--per-route",
        type=int,
        default=1000,
        help="Generated requests per route (default 1000), on top of the battery.",
    )
    parser.add_argument("--seed", type=int, default=1, help="Seed of the generator (default 1).")
    parser.add_argument(
        "--report", type=Path, default=None, help="Also write the counts here as JSON."
    )
    args = parser.parse_args(argv)
    if args.per_route < 1:
        parser.error(f"--per-route must be at least 1, got {args.per_route}")
    env = {**os.environ, **{k: os.environ.get(k, v) for k, v in SMALL_LIMITS.items()}}
    try:
        limits = ServiceSettings.from_env(env)
    except ValueError as exc:
        parser.error(str(exc))
    from tools.localserver import local_server

    with tempfile.TemporaryDirectory(prefix="akhbar-fuzz-") as tmp:
        log = Path(tmp) / "server.log"
        print(
            f"fuzz: starting akhbar serve (limits: {limits.scoring.max_text_chars} characters, "
            f"{limits.scoring.max_claims} claims, {limits.scoring.max_articles} articles, "
            f"{limits.max_body_bytes} bytes)",
            file=sys.stderr,
        )
        try:
            with local_server(env, log) as server:
                report = run_fuzz(
                    server.url,
                    limits,
                    args.per_route,
                    args.seed,
                    token=limits.api_token,
                    log=log,
                    progress=lambda line: print(f"fuzz: {line}", file=sys.stderr),
                )
        except RuntimeError as exc:
            print(f"fuzz: {exc}", file=sys.stderr)
            return 1
    print(report.table())
    print(
        f"\n{sum(r.requests for r in report.routes.values())} requests in {report.seconds:.0f} s; "
        f"/readyz afterwards: {report.ready_after}; article text in the log: {report.marker_in_log}"
    )
    for route in report.routes.values():
        for line in route.known:
            print(f"KNOWN BUG {route.route}: {line}")
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(json.dumps(report.as_dict(), indent=2, ensure_ascii=False) + "\n")
    problems = report.problems()
    for line in problems[:50]:
        print(f"FAIL {line}")
    print("fuzz: " + ("passed" if not problems else f"{len(problems)} problem(s)"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
