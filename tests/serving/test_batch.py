"""``akhbar score`` (serving/batch/): results equal the service's, rejects, formats, exit
statuses, crash safety under a real SIGKILL and flat memory (the Ray engine: test_batch_ray.py).

Every test runs on the tiny random-weight bundle of tests/conftest.py, or, for memory, on a
trivially cheap stand-in for the Analyzer.
"""

from __future__ import annotations

import gzip
import io
import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import tracemalloc
from pathlib import Path

import pytest
from conftest import ARABIC_SENTENCES, wait_for, write_jsonl
from serving_support import STORY

from akhbar.serving.batch import score as batch
from akhbar.serving.batch.outputs import repair_tail
from akhbar.serving.batch.score import Job, parse_args, score_file
from akhbar.serving.core.analyzer import Analyzer

SENTENCES = ARABIC_SENTENCES + STORY


def article(i: int) -> dict:
    """A short article of 1-3 project-written sentences; a claim on most of them."""
    n = 1 + i % 3
    text = " ".join(SENTENCES[(i + j) % len(SENTENCES)] for j in range(n))
    record = {"id": f"r{i}", "title": SENTENCES[(i * 7) % len(SENTENCES)][:30], "text": text}
    if i % 4:
        record["claims"] = [SENTENCES[(i * 3) % len(SENTENCES)][:40]]
    return record


GOOD = [article(i) for i in range(200)]
# Bad lines, each with the reason the rejects file must give (the text limit is set to 600).
BAD_LINES = [
    ('{"id": "bad-json", "text": ', "invalid JSON"),
    (json.dumps({"id": "no-text", "title": "عنوان"}), "field 'text': missing"),
    (json.dumps({"id": "empty", "text": "   "}), "field 'text': empty"),
    (json.dumps({"id": "long", "text": "كلمة " * 200}), "the limit is 600 (AKHBAR_MAX_TEXT_CHARS)"),
    (
        json.dumps({"id": "claims", "text": STORY[0], "claims": ["أ"] * 5}),
        "the limit is 4 per article",
    ),
    (json.dumps({"id": "r3", "text": STORY[1]}), 'duplicate id "r3"'),
]


def write_input(path: Path, good=GOOD, bad=BAD_LINES, every: int = 40) -> Path:
    """The good records with a bad line after every ``every``-th; returns the path."""
    lines, bad = [], list(bad)
    for i, record in enumerate(good):
        lines.append(json.dumps(record, ensure_ascii=False))
        if i % every == every - 1 and bad:
            lines.append(bad.pop(0)[0])
    lines += [b[0] for b in bad]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [
        json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    ]


def assert_same_results(got: list[dict], expected: list[dict], tol: float = 1e-6) -> None:
    """Equal, floats within ``tol`` (the Ray actors' torch threads may sum in another order)."""

    def same(a, b, where):
        if isinstance(a, float) or isinstance(b, float):
            assert math.isclose(a, b, rel_tol=tol, abs_tol=tol), where
        elif isinstance(a, dict):
            assert list(a) == list(b), where
            for key in a:
                same(a[key], b[key], f"{where}.{key}")
        elif isinstance(a, list):
            assert len(a) == len(b), where
            for i, (x, y) in enumerate(zip(a, b)):
                same(x, y, f"{where}[{i}]")
        else:
            assert a == b, where

    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        same(g, e, str(e.get("id")))


def service_results(
    analyzer: Analyzer, records: list[dict], batch_size: int, k: int = 2
) -> list[dict]:
    """What the service answers for these articles, through JSON like the output file."""
    articles = [{**r, "summary_sentences": k} for r in records]
    out = []
    for start in range(0, len(articles), batch_size):
        out += analyzer.analyze(articles[start : start + batch_size])
    return json.loads(json.dumps(out, ensure_ascii=False))


# ---------------------------------------------------------------------------------------
# Local engine


def test_results_equal_the_service_and_rejects_carry_reasons(env, analyzer):
    source = write_input(env / "in.jsonl")
    report = score_file(
        Job(str(source), env / "out.jsonl", batch_size=16, progress=False), analyzer
    )

    got = read_jsonl(env / "out.jsonl")
    assert_same_results(got, service_results(analyzer, GOOD, 16), tol=0)
    assert (report.read, report.scored, report.rejected) == (
        len(GOOD) + len(BAD_LINES),
        len(GOOD),
        len(BAD_LINES),
    )

    rejects = read_jsonl(env / "out.jsonl.rejects.jsonl")
    by_reason = {reason: [r for r in rejects if reason in r["reason"]] for _, reason in BAD_LINES}
    assert all(len(found) == 1 for found in by_reason.values()), by_reason
    lines = (env / "in.jsonl").read_text(encoding="utf-8").splitlines()
    for reject in rejects:  # the line number points at the bad line; ids where the record had one
        assert lines[reject["line"] - 1] in {b[0] for b in BAD_LINES}
    assert by_reason["invalid JSON"][0]["id"] is None
    assert by_reason["field 'text': empty"][0]["id"] == "empty"


def test_summary_flags_tasks_and_line_number_ids(env, analyzer):
    records = [{"text": r["text"], "claims": r.get("claims", [])} for r in GOOD[:20]]
    records[3]["id"] = " "  # blank, like an empty CSV cell: the line number too
    write_jsonl(env / "in.jsonl", records)
    job = Job(
        str(env / "in.jsonl"),
        env / "out.jsonl",
        tasks=("summary", "topic"),
        summary_sentences=1,
        summary_max_words=12,
        batch_size=8,
        progress=False,
    )
    score_file(job, analyzer)
    got = read_jsonl(env / "out.jsonl")
    assert [r["id"] for r in got] == list(range(1, 21))  # no id field: the line number
    assert list(got[0]) == ["id", "topic", "summary", "warnings", "model_versions"]
    expected = [
        analyzer.analyze(
            [{**r, "id": i, "summary_sentences": 1, "summary_max_words": 12}], ("summary", "topic")
        )[0]
        for i, r in enumerate(records, start=1)
    ]
    assert [g["summary"] for g in got] == json.loads(json.dumps([e["summary"] for e in expected]))


def test_each_records_own_summary_settings_win_over_the_jobs_and_bad_ones_are_rejected(
    env, analyzer
):
    long = {"text": " ".join(STORY), "title": "عنوان"}  # enough sentences for k = 3
    records = [
        {"id": "k1", **long, "summary_sentences": 1},
        {"id": "k3", **long, "summary_sentences": 3},
        {"id": "job", **long},
        {"id": "words", **long, "summary_sentences": 3, "summary_max_words": 1},
        {"id": "csv-cell", **long, "summary_sentences": "1"},
        {"id": "gap", **long, "summary_sentences": None},
    ]
    bad = [
        (
            {"id": "zero", **long, "summary_sentences": 0},
            "field 'summary_sentences': must be a whole number from 1 to 20",
        ),
        ({"id": "many", **long, "summary_sentences": 21}, "from 1 to 20"),
        ({"id": "word", **long, "summary_sentences": "three"}, "from 1 to 20"),
        ({"id": "flag", **long, "summary_sentences": True}, "from 1 to 20"),
        (
            {"id": "nowords", **long, "summary_max_words": 0},
            "field 'summary_max_words': must be a whole number of at least 1",
        ),
    ]
    write_jsonl(env / "in.jsonl", records + [r for r, _ in bad])
    report = score_file(
        Job(
            str(env / "in.jsonl"),
            env / "out.jsonl",
            summary_sentences=2,
            tasks=("summary",),
            progress=False,
        ),
        analyzer,
    )

    got = {r["id"]: len(r["summary"]["sentences"]) for r in read_jsonl(env / "out.jsonl")}
    assert got == {"k1": 1, "k3": 3, "job": 2, "words": 1, "csv-cell": 1, "gap": 2}
    assert (report.scored, report.rejected) == (len(records), len(bad))
    reasons = {r["id"]: r["reason"] for r in read_jsonl(env / "out.jsonl.rejects.jsonl")}
    for record, reason in bad:
        assert reason in reasons[record["id"]]


def test_csv_parquet_stdin_and_gzip_inputs_agree(env, analyzer, monkeypatch):
    import pyarrow as pa
    import pyarrow.parquet as pq

    records = [{**r, "claims": r.get("claims", [])} for r in GOOD[:24]]
    write_jsonl(env / "in.jsonl", records)
    with gzip.open(env / "in.jsonl.gz", "wt", encoding="utf-8") as f:
        f.write((env / "in.jsonl").read_text(encoding="utf-8"))
    pq.write_table(pa.Table.from_pylist(records), env / "in.parquet")
    import csv

    with open(env / "in.csv", "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, ["id", "title", "text", "claims"])
        writer.writeheader()
        writer.writerows(
            {**r, "claims": json.dumps(r["claims"], ensure_ascii=False)} for r in records
        )

    def run(source: str, output: str) -> list[dict]:
        score_file(Job(source, env / output, batch_size=8, progress=False), analyzer)
        return read_jsonl(env / output)

    reference = run(str(env / "in.jsonl"), "jsonl.jsonl")
    assert_same_results(run(str(env / "in.jsonl.gz"), "gz.jsonl"), reference, tol=0)
    assert_same_results(run(str(env / "in.parquet"), "parquet.jsonl"), reference, tol=0)
    assert_same_results(run(str(env / "in.csv"), "csv.jsonl"), reference, tol=0)
    stdin = io.TextIOWrapper(io.BytesIO((env / "in.jsonl").read_bytes()), encoding="utf-8")
    monkeypatch.setattr(sys, "stdin", stdin)
    assert_same_results(run("-", "stdin.jsonl"), reference, tol=0)

    # Parquet output: the same records, nested parts as nested columns.
    score_file(
        Job(str(env / "in.jsonl"), env / "out.parquet", batch_size=8, progress=False), analyzer
    )
    rows = pq.read_table(env / "out.parquet").to_pylist()
    assert [r["id"] for r in rows] == [r["id"] for r in reference]
    assert [r["topic"] for r in rows] == [r["topic"] for r in reference]
    # One scores struct for both stance label sets: the labels of the set that did not answer
    # a claim are null (its label_set says which apply).
    for row in rows:
        for stance in row["stances"]:
            labels = {k for k, v in stance["scores"].items() if v is not None}
            assert labels == set(
                ("agree", "disagree", "other")
                if stance["label_set"] == "headline"
                else ("agree", "disagree", "discuss", "unrelated")
            )
            stance["scores"] = {k: v for k, v in stance["scores"].items() if v is not None}
    assert [r["stances"] for r in rows] == [r["stances"] for r in reference]
    assert not (env / "out.parquet.partial.jsonl").exists()


def test_the_parquet_schema_is_fixed_by_the_models_not_the_data(env, analyzer):
    """Without a claim or a warning anywhere, stances and warnings still have their types, so
    shards of one archive read as one table."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    records = [{"id": f"q{i}", "text": STORY[i % len(STORY)]} for i in range(6)]
    write_input(env / "plain.jsonl", good=records, bad=[])
    score_file(Job(str(env / "plain.jsonl"), env / "plain.parquet", progress=False), analyzer)
    schema = pq.read_schema(env / "plain.parquet")
    assert schema.field("warnings").type == pa.list_(pa.string())
    stance = schema.field("stances").type.value_type
    assert stance.field("label_set").type == pa.string()
    assert {f.name for f in stance.field("scores").type} == {
        "agree",
        "disagree",
        "discuss",
        "unrelated",
        "other",
    }
    assert schema.field("topic").type.field("scores").type.num_fields == len(
        analyzer.predictors["topic"].bundle.settings.tasks["topic"].labels
    )
    assert schema.field("summary").type.field("offsets").type == pa.list_(pa.list_(pa.int64()))


def test_keep_fields_carry_input_columns_into_every_result(env, analyzer):
    import pyarrow.parquet as pq

    records = [
        {"id": f"k{i}", "text": STORY[i % len(STORY)], "url": f"https://example.org/{i}"}
        | ({"section": "اقتصاد"} if i % 2 else {})
        for i in range(4)
    ]
    write_input(env / "kept.jsonl", good=records, bad=[])
    for name in ("kept-out.jsonl", "kept-out.parquet"):
        score_file(
            Job(
                str(env / "kept.jsonl"),
                env / name,
                tasks=("topic",),
                progress=False,
                keep_fields=("url", "section"),
            ),
            analyzer,
        )
    rows = read_jsonl(env / "kept-out.jsonl")
    assert [(r["url"], r["section"]) for r in rows] == [
        (f"https://example.org/{i}", "اقتصاد" if i % 2 else None) for i in range(4)
    ]
    parquet = pq.read_table(env / "kept-out.parquet").to_pylist()
    assert [(r["url"], r["section"]) for r in parquet] == [(r["url"], r["section"]) for r in rows]
    with pytest.raises(ValueError, match="--keep-fields cannot carry id, topic"):
        Job("in.jsonl", Path("out.jsonl"), keep_fields=("topic", "id", "url"))
    args = parse_args(["--input", "a.jsonl", "--output", "b.jsonl", "--keep-fields", "url, ,x"])
    assert Job.from_args(args).keep_fields == ("url", "x")


def test_exit_statuses_and_messages(env, capsys, monkeypatch):
    write_jsonl(env / "in.jsonl", GOOD[:5])
    args = [
        "--input",
        str(env / "in.jsonl"),
        "--output",
        str(env / "out.jsonl"),
        "--batch-size",
        "4",
    ]
    assert batch.main(args) == 0
    err = capsys.readouterr().err
    assert "scored 5, rejected 0" in err and "records/s" in err
    assert len(read_jsonl(env / "out.jsonl")) == 5

    # An existing output is never overwritten without --resume; --resume finds nothing to do.
    before = (env / "out.jsonl").read_bytes()
    assert batch.main(args) == 1
    assert "exists; pass --resume" in capsys.readouterr().err
    assert batch.main([*args, "--resume"]) == 0
    assert "scored 0, rejected 0" in capsys.readouterr().err
    assert (env / "out.jsonl").read_bytes() == before

    # --resume with no output yet simply starts.
    assert batch.main([*args[:3], str(env / "fresh.jsonl"), "--resume"]) == 0
    capsys.readouterr()

    # Every record rejected: non-zero;
    # an unreadable input or a missing model: non-zero, one sentence.
    (env / "bad.jsonl").write_text('{"text": ""}\nnot json\n', encoding="utf-8")
    assert (
        batch.main(["--input", str(env / "bad.jsonl"), "--output", str(env / "bad-out.jsonl")]) == 1
    )
    assert "every record was rejected" in capsys.readouterr().err
    assert len(read_jsonl(env / "bad-out.jsonl.rejects.jsonl")) == 2
    assert (
        batch.main(["--input", str(env / "missing.jsonl"), "--output", str(env / "m.jsonl")]) == 1
    )
    assert "missing.jsonl: does not exist" in capsys.readouterr().err
    monkeypatch.setenv("AKHBAR_TOPIC_MODEL", "akhbar-topic:nope")
    assert batch.main([*args[:3], str(env / "nomodel.jsonl")]) == 1
    err = capsys.readouterr().err
    assert "AKHBAR_TOPIC_MODEL akhbar-topic:nope" in err and "Traceback" not in err
    assert not (env / "nomodel.jsonl").exists()  # nothing created before the models load


def test_unwritable_output_is_fatal_and_named(env, capsys):
    write_jsonl(env / "in.jsonl", GOOD[:3])
    (env / "a-file").write_text("x")
    assert (
        batch.main(
            ["--input", str(env / "in.jsonl"), "--output", str(env / "a-file" / "out.jsonl")]
        )
        == 1
    )
    assert "cannot write" in capsys.readouterr().err


def test_a_folder_as_input_says_which_file_to_pass(env, capsys):
    write_jsonl(env / "data" / "test.jsonl", GOOD[:2])
    assert batch.main(["--input", str(env / "data"), "--output", str(env / "out.jsonl")]) == 1
    err = capsys.readouterr().err
    assert (
        "is a folder; pass one file of articles" in err
        and f"--input {env / 'data' / 'test.jsonl'}" in err
    )
    assert "split" not in err  # akhbar score has no --split


def test_output_dash_writes_json_lines_to_standard_output_and_the_rest_elsewhere(env, capsys):
    source = write_input(env / "in.jsonl", good=GOOD[:12], bad=BAD_LINES[:2], every=5)
    rejects = env / "bad.jsonl"
    assert (
        batch.main(
            [
                "--input",
                str(source),
                "--output",
                "-",
                "--rejects",
                str(rejects),
                "--batch-size",
                "5",
            ]
        )
        == 0
    )
    out, err = capsys.readouterr()
    got = [json.loads(line) for line in out.splitlines()]  # nothing but results on standard output
    assert [r["id"] for r in got] == [r["id"] for r in GOOD[:12]]
    assert "scored 12, rejected 2" in err and f"rejects in {rejects}" in err
    reasons = [r["reason"] for r in read_jsonl(rejects)]
    assert (
        len(reasons) == 2
        and reasons[0].startswith("invalid JSON")
        and reasons[1] == "field 'text': missing"
    )
    assert not list(env.glob("-*"))  # no file named after "-", no id index left behind


def test_the_batch_scorer_applies_the_services_scoring_configuration(
    env, monkeypatch, torch_threads
):
    """AKHBAR_TORCH_THREADS and AKHBAR_SUMMARY_SENTENCES
    reach akhbar score as they reach the service."""
    import torch

    long = {"text": " ".join(STORY), "title": "عنوان"}
    write_jsonl(
        env / "in.jsonl", [{"id": "default", **long}, {"id": "own", **long, "summary_sentences": 1}]
    )
    monkeypatch.setenv("AKHBAR_TORCH_THREADS", "1")
    monkeypatch.setenv("AKHBAR_SUMMARY_SENTENCES", "3")
    torch.set_num_threads(2)
    score_file(Job(str(env / "in.jsonl"), env / "out.jsonl", tasks=("summary",), progress=False))
    assert torch.get_num_threads() == 1
    got = {r["id"]: len(r["summary"]["sentences"]) for r in read_jsonl(env / "out.jsonl")}
    assert got == {"default": 3, "own": 1}


class Interrupting:
    """Scores ``chunks`` Analyzer calls, then stops the job as Ctrl+C would."""

    def __init__(self, analyzer: Analyzer, chunks: int) -> None:
        self.analyzer, self.left = analyzer, chunks

    def analyze(self, articles, tasks=None):
        if self.left == 0:
            raise KeyboardInterrupt
        self.left -= 1
        return self.analyzer.analyze(articles, tasks)


def test_parquet_output_resumes_from_its_partial_file(env, analyzer):
    import pyarrow.parquet as pq

    write_jsonl(env / "in.jsonl", GOOD[:30])
    job = Job(str(env / "in.jsonl"), env / "out.parquet", batch_size=8, progress=False)
    with pytest.raises(KeyboardInterrupt):
        score_file(job, Interrupting(analyzer, 2))
    assert not (env / "out.parquet").exists()  # never a half-written Parquet file
    assert len(read_jsonl(env / "out.parquet.partial.jsonl")) == 16
    with pytest.raises(batch.BatchError, match="unfinished job .* pass --resume"):
        score_file(job, analyzer)
    report = score_file(
        Job(str(env / "in.jsonl"), env / "out.parquet", batch_size=8, resume=True, progress=False),
        analyzer,
    )
    assert (report.scored, report.skipped) == (14, 16)
    assert [r["id"] for r in pq.read_table(env / "out.parquet").to_pylist()] == [
        r["id"] for r in GOOD[:30]
    ]
    again = score_file(
        Job(str(env / "in.jsonl"), env / "out.parquet", resume=True, progress=False), analyzer
    )
    assert again.already_complete


def test_torn_tail_is_cut_back_to_the_last_whole_line(tmp_path):
    path = tmp_path / "out.jsonl"
    path.write_bytes(b'{"id": 1}\n{"id": 2}\n{"id": 3, "top')
    assert repair_tail(path) == len(b'{"id": 3, "top')
    assert path.read_bytes() == b'{"id": 1}\n{"id": 2}\n'
    path.write_bytes(b'{"id": 1, "torn')
    repair_tail(path)
    assert path.read_bytes() == b""


# ---------------------------------------------------------------------------------------
# Crash safety: real SIGKILLs of a real `akhbar score`

# Runs batch.main in a child process. SLOW makes every Analyzer call sleep, so the parent can
# kill it mid-job; TEAR_AT=n makes the n-th results write hand the kernel half its bytes,
# touch a flag file and hang there, so the kill lands in the middle of a write.
CHILD = textwrap.dedent("""
    import os, sys, time
    from akhbar.serving.batch import score as batch
    from akhbar.serving.batch import outputs as batch_io
    from akhbar.serving.core import analyzer

    if os.environ.get("SLOW"):
        original = analyzer.Analyzer.analyze
        def slow(self, *args, **kwargs):
            time.sleep(float(os.environ["SLOW"]))
            return original(self, *args, **kwargs)
        analyzer.Analyzer.analyze = slow
    if os.environ.get("TEAR_AT"):
        calls = []
        def torn(fd, data):
            calls.append(1)
            if len(calls) < int(os.environ["TEAR_AT"]):
                return os.write(fd, data)
            os.write(fd, data[: len(data) // 2 + 3])
            open(os.environ["FLAG"], "w").close()
            time.sleep(600)
        batch_io._write_all = torn
    sys.exit(batch.main(sys.argv[1:]))
""")


def _start(env_dir: Path, args: list[str], **extra: str) -> subprocess.Popen:
    script = env_dir / "child.py"
    script.write_text(CHILD, encoding="utf-8")
    return subprocess.Popen(
        [sys.executable, str(script), *args],
        env={**os.environ, **extra},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


@pytest.mark.slow
def test_sigkill_anywhere_then_resume_gives_every_id_exactly_once(env, analyzer):
    source = write_input(env / "in.jsonl")
    out = env / "out.jsonl"
    args = ["--input", str(source), "--output", str(out), "--batch-size", "8"]

    def lines() -> int:
        return out.read_bytes().count(b"\n") if out.exists() else 0

    # 1. Killed between writes, after a few chunks.
    proc = _start(env, args, SLOW="0.1")
    wait_for(lambda: lines() >= 24, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    first = lines()
    assert 24 <= first < len(GOOD)

    # 2. Resumed, then killed in the middle of its third write: a torn last line.
    flag = env / "torn.flag"
    proc = _start(env, [*args, "--resume"], TEAR_AT="3", FLAG=str(flag))
    wait_for(flag.exists, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not out.read_bytes().endswith(b"\n")  # the kill left half a line
    assert first + 16 < lines() < first + 24  # two whole chunks of 8, then about half of one

    # 3. Resumed to the end (in process; the same code as the command).
    assert batch.main([*args, "--resume"]) == 0
    got = read_jsonl(out)
    ids = [r["id"] for r in got]
    assert len(ids) == len(set(ids)) and set(ids) == {r["id"] for r in GOOD}
    assert out.read_bytes().endswith(b"\n")
    # Resumed runs score the rest in other chunks: equal up to float summation order.
    expected = {r["id"]: r for r in service_results(analyzer, GOOD, 8)}
    assert_same_results(got, [expected[i] for i in ids])
    rejects = read_jsonl(env / "out.jsonl.rejects.jsonl")
    assert len(rejects) == len(BAD_LINES)  # written afresh by every run: once each
    assert not (env / "out.jsonl.ids.sqlite").exists()


# ---------------------------------------------------------------------------------------
# Memory


class CheapAnalyzer:
    """Stands in for Analyzer where only the streaming is under test: a fixed small result."""

    def analyze(self, articles, tasks=None):
        return [
            {
                "id": a.id,
                "topic": {"label": "sport", "scores": {"sport": 1.0}, "low_confidence": False},
                "warnings": [],
                "model_versions": {"topic": "cheap"},
            }
            for a in articles
        ]


def _peak_bytes(tmp_path: Path, n: int) -> int:
    source = tmp_path / f"in-{n}.jsonl"
    text = " ".join(SENTENCES)  # about 1,100 characters per record
    with source.open("w", encoding="utf-8") as f:
        for i in range(n):
            f.write(
                json.dumps({"id": i, "text": text, "title": "عنوان"}, ensure_ascii=False) + "\n"
            )
    job = Job(
        str(source), tmp_path / f"out-{n}.jsonl", tasks=("topic",), batch_size=64, progress=False
    )
    tracemalloc.start()
    try:
        report = score_file(job, CheapAnalyzer())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert report.scored == n
    return peak


def test_memory_stays_flat_however_large_the_input(tmp_path):
    """Peak Python memory for 4N records stays within 25% (+1 MiB) of N records'.

    Holding the records, the results or a Python set of the ids would add tens of MB here
    (30,000 more records of ~1,100 characters each), far past the bound.
    """
    _peak_bytes(tmp_path, 200)  # first-call imports and caches out of the measurement
    small = _peak_bytes(tmp_path, 6_000)
    large = _peak_bytes(tmp_path, 24_000)
    assert large < small * 1.25 + (1 << 20), (
        f"peak {small / 2**20:.1f} MiB for 6,000, {large / 2**20:.1f} MiB for 24,000"
    )
