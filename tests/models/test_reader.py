"""The reader: every source format, every kind of bad record, both policies.

All texts here are written for these tests; real data is read only by the `data` test.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import sys
import tempfile
from itertools import islice
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from akhbar.models.reader import (
    STRICT_HINT,
    DataError,
    Reject,
    data_root,
    dataset_path,
    read_records,
)
from akhbar.models.tasks import TOPIC_LABELS

TOPIC_ROWS: list[dict[str, Any]] = [
    {
        "id": "t1",
        "title": "افتتاح معرض للكتاب",
        "text": "افتتحت المدينة معرضا جديدا للكتاب تشارك فيه دور نشر من بلدان عدة.",
        "label": "culture",
        "outlet": "صحيفة المثال",
    },
    {
        "id": "t2",
        "title": None,
        "text": "ارتفعت أسعار القمح في الأسواق المحلية خلال الأسبوع الماضي.",
        "label": "economy",
    },
    {"id": "t3", "text": "فاز الفريق المحلي بالمباراة النهائية بهدفين دون رد.", "label": "sport"},
]
GOOD = TOPIC_ROWS[0]
SECRET_TEXT = "نص سري لا يجوز أن يظهر في رسائل الخطأ أبدا"


def _line(record: dict[str, Any]) -> bytes:
    return json.dumps(record, ensure_ascii=False).encode("utf-8")


def _write_lines(path: Path, lines: list[bytes]) -> Path:
    data = b"\n".join(lines) + b"\n"
    if path.name.endswith(".gz"):
        with gzip.open(path, "wb") as stream:
            stream.write(data)
    else:
        path.write_bytes(data)
    return path


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    return _write_lines(path, [_line(row) for row in rows])


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    columns = list(dict.fromkeys(name for row in rows for name in row))
    with path.open("w", encoding="utf-8", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


def _write_parquet(path: Path, rows: list[dict[str, Any]]) -> Path:
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def _topic(path: Path, **options: Any) -> list[dict[str, Any]]:
    return list(read_records(path, "topic", labels=TOPIC_LABELS, **options))


def test_jsonl_fills_optionals_keeps_extras_and_counts(tmp_path: Path) -> None:
    source = _write_jsonl(tmp_path / "train.jsonl", TOPIC_ROWS)
    stream = read_records(source, "topic", labels=TOPIC_LABELS)
    records = list(stream)
    assert records[0] == {**GOOD, "_line": 1}
    assert records[1]["title"] is None  # a null optional field is fine
    assert records[2]["title"] is None and records[2]["_line"] == 3  # an absent one too
    assert (stream.n_read, stream.n_rejected) == (3, 0)
    assert stream.summary() == "read 3 records, 0 rejected"


@pytest.mark.parametrize(
    ("name", "writer", "first_line"),
    [
        ("data.jsonl", _write_jsonl, 1),
        ("data.jsonl.gz", _write_jsonl, 1),
        ("data.json", _write_jsonl, 1),
        ("data.csv", _write_csv, 2),  # the header is line 1
        ("data.parquet", _write_parquet, 1),
    ],
)
def test_every_format_yields_the_same_records(
    tmp_path: Path, name: str, writer: Any, first_line: int
) -> None:
    records = _topic(writer(tmp_path / name, TOPIC_ROWS))
    assert [(r["id"], r["text"], r["label"]) for r in records] == [
        (r["id"], r["text"], r["label"]) for r in TOPIC_ROWS
    ]
    assert [r["_line"] for r in records] == [first_line, first_line + 1, first_line + 2]
    assert records[0]["outlet"] == GOOD["outlet"]


def test_stdin_is_json_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    data = b"\n".join(_line(row) for row in TOPIC_ROWS)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))
    assert [r["id"] for r in read_records("-", "topic")] == ["t1", "t2", "t3"]


def test_blank_lines_and_bom_are_not_records_but_count_as_lines(tmp_path: Path) -> None:
    source = _write_lines(
        tmp_path / "d.jsonl", [b"\xef\xbb\xbf" + _line(GOOD), b"", b"   ", _line(TOPIC_ROWS[2])]
    )
    stream = read_records(source, "topic")
    assert [r["_line"] for r in stream] == [1, 4]
    assert stream.n_read == 2


def test_reading_is_lazy(tmp_path: Path) -> None:
    """Streaming: the first record arrives before the reader ever sees the bad third line."""
    source = _write_lines(tmp_path / "d.jsonl", [_line(GOOD), _line(GOOD), b"{broken"])
    assert [r["_line"] for r in islice(read_records(source, "topic"), 2)] == [1, 2]


def test_dataset_folder_reads_the_chosen_split(tmp_path: Path) -> None:
    _write_jsonl(tmp_path / "train.jsonl.gz", TOPIC_ROWS)
    _write_jsonl(tmp_path / "validation.jsonl", TOPIC_ROWS[:1])
    assert len(_topic(tmp_path, split="train")) == 3
    assert [r["id"] for r in _topic(tmp_path, split="validation")] == ["t1"]
    with pytest.raises(DataError, match=r"has no split 'test' \(available: train, validation\)"):
        read_records(tmp_path, "topic", split="test")
    with pytest.raises(DataError, match="is a dataset folder; pass a split"):
        read_records(tmp_path, "topic")


def test_split_on_a_single_file_is_refused(tmp_path: Path) -> None:
    source = _write_jsonl(tmp_path / "d.jsonl", TOPIC_ROWS)
    with pytest.raises(ValueError, match="applies only to dataset folders"):
        read_records(source, "topic", split="train")


BAD_LINES = [
    pytest.param(
        b'{"text": "\xd8\xa7", "label": "sport"',
        "invalid JSON (Expecting ',' delimiter at column 31)",
        id="invalid-json",
    ),
    pytest.param(
        b'["sport"]',
        "not a JSON object (got array); JSON Lines holds one object per line",
        id="not-an-object",
    ),
    pytest.param(
        b'{"text": "\xff\xfe\xd8", "label": "sport"}',
        "undecodable bytes (not UTF-8)",
        id="undecodable",
    ),
    pytest.param(_line({"text": SECRET_TEXT}), "field 'label': missing", id="missing-field"),
    pytest.param(
        _line({"text": SECRET_TEXT, "label": None}), "field 'label': null", id="null-required"
    ),
    pytest.param(
        _line({"text": SECRET_TEXT, "label": "sport", "title": 5}),
        "field 'title': expected a string, got number",
        id="wrong-type",
    ),
    pytest.param(
        _line({"text": SECRET_TEXT, "label": "sport", "id": True}),
        "field 'id': expected a string or an integer, got boolean",
        id="bad-id",
    ),
    pytest.param(_line({"text": " \n ", "label": "sport"}), "field 'text': empty", id="empty-text"),
    pytest.param(
        _line({"text": SECRET_TEXT, "label": "sports"}),
        "field 'label': 'sports' is not one of culture, economy, internationalNews, "
        "middleEast, sport, technology",
        id="label-outside-set",
    ),
    pytest.param(
        _line({"text": SECRET_TEXT * 3, "label": "sport"}),
        f"field 'text': {len(SECRET_TEXT) * 3} characters, more than the limit of 100",
        id="too-long",
    ),
]


@pytest.mark.parametrize(("bad", "reason"), BAD_LINES)
def test_strict_names_file_line_field_and_reason(tmp_path: Path, bad: bytes, reason: str) -> None:
    source = _write_lines(tmp_path / "train.jsonl", [_line(GOOD), bad, _line(GOOD)])
    with pytest.raises(DataError) as caught:
        _topic(source, max_text_chars=100)
    assert str(caught.value) == f"{source} line 2: {reason} ({STRICT_HINT})"
    assert (caught.value.line, caught.value.reason) == (2, reason)
    assert SECRET_TEXT not in str(caught.value)


def test_long_label_values_are_truncated(tmp_path: Path) -> None:
    source = _write_jsonl(tmp_path / "d.jsonl", [{"text": "خبر قصير", "label": "س" * 60}])
    with pytest.raises(DataError, match=f"field 'label': '{'س' * 40}…' is not one of"):
        _topic(source)


def test_skip_policy_writes_rejects_and_counts(tmp_path: Path) -> None:
    source = _write_lines(
        tmp_path / "train.jsonl",
        [
            _line(GOOD),
            b"{not json",
            _line(TOPIC_ROWS[1]),
            _line({"id": 7, "text": SECRET_TEXT}),
            _line({"id": "x9", "text": SECRET_TEXT, "label": "weather"}),
            _line(TOPIC_ROWS[2]),
        ],
    )
    rejects = tmp_path / "out" / "train.rejects.jsonl"
    stream = read_records(source, "topic", labels=TOPIC_LABELS, policy="skip", rejects_path=rejects)
    assert [r["_line"] for r in stream] == [1, 3, 6]
    assert (stream.n_read, stream.n_rejected) == (6, 3)
    assert stream.summary() == f"read 6 records, 3 rejected (see {rejects})"
    assert rejects.read_text(encoding="utf-8").splitlines() == [
        '{"line": 2, "id": null, "reason": "invalid JSON (Expecting property name enclosed '
        'in double quotes at column 2)"}',
        '{"line": 4, "id": 7, "reason": "field \'label\': missing"}',
        '{"line": 5, "id": "x9", "reason": "field \'label\': \'weather\' is not one of '
        'culture, economy, internationalNews, middleEast, sport, technology"}',
    ]


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")),
            st.sampled_from([_line(GOOD), b"", b"null", b'{"text": 1}']),
        ),
        max_size=8,
    )
)
def test_skip_policy_never_crashes_on_any_bytes(lines: list[bytes]) -> None:
    """Whatever a line holds, skip mode sorts it into yielded or rejected and goes on."""
    with tempfile.TemporaryDirectory() as folder:
        source = _write_lines(Path(folder) / "d.jsonl", lines)
        stream = read_records(source, "topic", policy="skip", rejects_path=Path(folder) / "r.jsonl")
        n_yielded = sum(1 for _ in stream)
    blank = [
        not (line.removeprefix(b"\xef\xbb\xbf") if i == 0 else line).strip()
        for i, line in enumerate(lines)
    ]
    assert stream.n_read == blank.count(False)
    assert n_yielded + stream.n_rejected == stream.n_read


def test_skip_policy_appends_to_an_existing_rejects_file(tmp_path: Path) -> None:
    source = _write_lines(tmp_path / "d.jsonl", [b"[]"])
    rejects = tmp_path / "rejects.jsonl"
    rejects.write_text(Reject(1, "old", "earlier run").to_json() + "\n", encoding="utf-8")
    list(read_records(source, "topic", policy="skip", rejects_path=rejects))
    assert len(rejects.read_text(encoding="utf-8").splitlines()) == 2


def test_policy_arguments_are_checked(tmp_path: Path) -> None:
    source = _write_jsonl(tmp_path / "d.jsonl", TOPIC_ROWS)
    with pytest.raises(ValueError, match="needs rejects_path"):
        read_records(source, "topic", policy="skip")
    with pytest.raises(ValueError, match="applies to policy 'skip' only"):
        read_records(source, "topic", rejects_path=tmp_path / "r.jsonl")
    with pytest.raises(ValueError, match="unknown task 'sentiment'"):
        read_records(source, "sentiment")


def test_a_stream_is_read_once(tmp_path: Path) -> None:
    stream = read_records(_write_jsonl(tmp_path / "d.jsonl", TOPIC_ROWS), "topic")
    list(stream)
    with pytest.raises(RuntimeError, match="read only once"):
        list(stream)


def test_stance_needs_a_claim(tmp_path: Path) -> None:
    claim = "الحكومة تعلن خفض الضرائب"
    source = _write_jsonl(
        tmp_path / "d.jsonl",
        [
            {
                "claim": claim,
                "text": "أعلنت الحكومة اليوم خفض الضرائب على الدخل.",
                "label": "agree",
            },
            {"text": "خبر بلا ادعاء.", "label": "discuss"},
        ],
    )
    stream = read_records(
        source,
        "stance",
        labels=("agree", "discuss"),
        policy="skip",
        rejects_path=tmp_path / "r.jsonl",
    )
    assert [r["claim"] for r in stream] == [claim]
    assert "field 'claim': missing" in (tmp_path / "r.jsonl").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        ({"summary": "ملخص قصير للخبر."}, None),
        ({"summaries": ["الملخص الأول.", "الملخص الثاني."]}, None),
        ({"summary": None, "summaries": ["ملخص وحيد."]}, None),
        ({}, "field 'summary' or 'summaries': missing or empty (the task needs one of them)"),
        (
            {"summary": "  ", "summaries": []},
            "field 'summary' or 'summaries': missing or empty (the task needs one of them)",
        ),
        ({"summaries": ["ملخص.", ""]}, "field 'summaries': item 2 is not a non-empty string"),
        ({"summaries": "ملخص."}, "field 'summaries': expected a list of strings, got string"),
    ],
)
def test_summary_needs_summary_or_summaries(
    tmp_path: Path, extra: dict[str, Any], reason: str | None
) -> None:
    source = _write_jsonl(tmp_path / "d.jsonl", [{"text": "جملة أولى. جملة ثانية.", **extra}])
    if reason is None:
        assert len(list(read_records(source, "summary"))) == 1
    else:
        with pytest.raises(DataError) as caught:
            list(read_records(source, "summary"))
        assert caught.value.reason == reason


def test_score_takes_custom_id_and_claims_fields(tmp_path: Path) -> None:
    source = _write_jsonl(
        tmp_path / "d.jsonl",
        [
            {"doc_id": 41, "text": "خبر عن افتتاح جسر جديد.", "claims": ["افتتح الجسر"]},
            {"doc_id": "a2", "text": "خبر بلا ادعاءات."},
            {"doc_id": "a3", "text": "خبر بادعاء خاطئ النوع.", "claims": "ليس قائمة"},
        ],
    )
    stream = read_records(
        source,
        "score",
        id_field="doc_id",
        claims_field="claims",
        policy="skip",
        rejects_path=tmp_path / "r.jsonl",
    )
    assert [(r["doc_id"], r["claims"]) for r in stream] == [(41, ["افتتح الجسر"]), ("a2", None)]
    assert json.loads((tmp_path / "r.jsonl").read_text(encoding="utf-8")) == {
        "line": 3,
        "id": "a3",
        "reason": "field 'claims': expected a list of strings, got string",
    }
    with pytest.raises(ValueError, match="claims_field applies to task 'score' only"):
        read_records(source, "topic", claims_field="claims")


def test_csv_list_cells_and_undecodable_cells(tmp_path: Path) -> None:
    rows = [
        b"id,text,claims",
        'a1,خبر أول,"[""ادعاء أول"", ""ادعاء ثان""]"'.encode(),
        b"a2,\xd8\xff,",
        "a3,خبر ثالث,".encode(),
    ]
    source = _write_lines(tmp_path / "d.csv", rows)
    stream = read_records(
        source, "score", claims_field="claims", policy="skip", rejects_path=tmp_path / "r.jsonl"
    )
    assert [(r["_line"], r["claims"]) for r in stream] == [
        (2, ["ادعاء أول", "ادعاء ثان"]),
        (4, None),
    ]
    assert json.loads((tmp_path / "r.jsonl").read_text(encoding="utf-8")) == {
        "line": 3,
        "id": None,
        "reason": "field 'text': undecodable bytes (not UTF-8)",
    }


def test_hub_name_loads_with_datasets(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    monkeypatch.chdir(tmp_path)  # so "owner/name" cannot be a local path by accident
    calls: list[tuple[str, str]] = []
    features = datasets.Features(
        {"text": datasets.Value("string"), "label": datasets.ClassLabel(names=list(TOPIC_LABELS))}
    )
    table = {"text": [r["text"] for r in TOPIC_ROWS], "label": [0, 1, 4]}

    def fake_load_dataset(name: str, split: str) -> Any:
        calls.append((name, split))
        return datasets.Dataset.from_dict(table, features=features)

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    records = list(read_records("owner/arabic-news:test", "topic", labels=TOPIC_LABELS))
    assert calls == [("owner/arabic-news", "test")]
    assert [(r["label"], r["_line"]) for r in records] == [
        ("culture", 1),
        ("economy", 2),
        ("sport", 3),
    ]


def test_unreachable_hub_suggests_a_local_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    datasets = pytest.importorskip("datasets")
    monkeypatch.chdir(tmp_path)

    def offline(name: str, split: str) -> Any:
        raise ConnectionError("network unreachable")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(
        DataError,
        match=r"^owner/news:train: not a local path, and the Hugging "
        r"Face hub could not be reached .*pass a local file",
    ):
        read_records("owner/news", "topic", split="train")


def test_hub_name_without_the_train_extra_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "datasets", None)  # `import datasets` fails, as uninstalled
    with pytest.raises(DataError) as caught:
        read_records("owner/news:train", "topic")
    message = str(caught.value)
    assert message.startswith("owner/news:train: not a local path, and ")
    assert "needs the 'train' extra (missing module 'datasets')" in message
    assert "pip install 'akhbar[train]'" in message and "pass a local file" in message


def test_unknown_extension_and_missing_file(tmp_path: Path) -> None:
    text_file = tmp_path / "articles.txt"
    text_file.write_text("خبر", encoding="utf-8")
    with pytest.raises(
        DataError,
        match=r"articles.txt: unknown file type; supported extensions "
        r"are .jsonl, .jsonl.gz, .json, .csv, .parquet",
    ):
        read_records(text_file, "topic")
    with pytest.raises(DataError, match=r"missing.jsonl: does not exist$"):
        read_records(tmp_path / "missing.jsonl", "topic")


def test_data_root_honours_akhbar_data(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AKHBAR_DATA", str(tmp_path))
    (tmp_path / "topic" / "tiny").mkdir(parents=True)
    assert data_root() == tmp_path
    assert dataset_path("topic/tiny") == tmp_path / "topic" / "tiny"
    with pytest.raises(DataError, match="set AKHBAR_DATA"):
        dataset_path("topic/absent")


def test_data_root_defaults_beside_the_repository(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AKHBAR_DATA", raising=False)
    repo_root = Path(__file__).resolve().parents[2]
    assert data_root() == repo_root.parent / "shared" / "data"


@pytest.mark.data
def test_reads_real_topic_data() -> None:
    folder = data_root() / "topic" / "ant_v2.1_multisource"
    if not (folder / "test.jsonl.gz").is_file():
        pytest.skip(f"real data not found at {folder}; set AKHBAR_DATA")
    records = list(islice(read_records(folder, "topic", labels=TOPIC_LABELS, split="test"), 5))
    assert [r["_line"] for r in records] == [1, 2, 3, 4, 5]
    assert all(r["text"].strip() and r["label"] in TOPIC_LABELS for r in records)
