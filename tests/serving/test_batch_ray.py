"""``akhbar score --engine ray`` (serving/batch/ray_engine.py, ray_io.py): the pipeline's parts
called directly, then real Ray jobs: the local engine's results from a folder of shards, exactly
once after a SIGKILL, a multi-node cluster with a node lost mid-job, and object storage on an
S3-compatible server.

Every job scores with the tiny random-weight bundle of tests/conftest.py.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import wait_for, write_jsonl
from hypothesis import given
from hypothesis import strategies as st
from test_batch import (
    BAD_LINES,
    GOOD,
    article,
    assert_same_results,
    read_jsonl,
    service_results,
    write_input,
)

from akhbar.models.reader import DataError, record_schema
from akhbar.models.tasks import TASKS
from akhbar.serving.batch import ray_io
from akhbar.serving.batch.job import Job
from akhbar.serving.batch.ray_engine import RayScorer, Shipped, pack_bundle, unpack_bundle
from akhbar.serving.batch.score import score_file
from akhbar.serving.core.config import ScoringConfig

AKHBAR = Path(sys.executable).parent / "akhbar"
JOB_TIMEOUT_S = 300


def ray_results(folder: Path) -> list[dict]:
    """Every result in a Ray output folder, ordered by id."""
    rows = [r for part in sorted(folder.glob("part-*.jsonl")) for r in read_jsonl(part)]
    return sorted(rows, key=lambda r: r["id"])


def ray_rejects(folder: Path) -> list[dict]:
    rows = [r for part in sorted((folder / "_rejects").glob("*.jsonl")) for r in read_jsonl(part)]
    return sorted(rows, key=lambda r: (r["source"], r["line"]))


def local_run(source: Path, out: Path, **job) -> tuple[list[dict], list[dict]]:
    """The local engine's results (by id) and rejects for one file."""
    score_file(Job(str(source), out, progress=False, **job))
    results = sorted(read_jsonl(out), key=lambda r: r["id"])
    rejects_file = out.with_name(out.name + ".rejects.jsonl")
    return results, read_jsonl(rejects_file) if rejects_file.exists() else []


def scored_table(records: list[dict], source: str = "in.jsonl") -> pa.Table:
    """What the source hands the scorer for records that passed the reader's checks."""
    schema = record_schema("score", claims_field="claims")
    return pa.table(
        {
            "source": [source] * len(records),
            "line": list(range(1, len(records) + 1)),
            "record": [json.dumps(schema.check(i, r)) for i, r in enumerate(records, 1)],
            "reject": pa.array([None] * len(records), pa.string()),
        }
    )


# ---------------------------------------------------------------------------------------
# The parts, without Ray


@given(st.sets(st.integers(1, 300)))
def test_line_ranges_hold_exactly_the_lines_they_were_made_of(lines):
    ranges = ray_io.to_ranges(lines)
    starts = [first for first, _ in ranges]
    assert all(a[1] + 1 < b[0] for a, b in zip(ranges, ranges[1:]))  # disjoint, not touching
    assert {n for n in range(0, 302) if ray_io.in_ranges(n, ranges, starts)} == lines
    half = ray_io.to_ranges(n for n in lines if n % 2)
    assert ray_io.merge_ranges(half + ray_io.to_ranges(n for n in lines if not n % 2)) == ranges


def test_input_files_takes_a_file_a_folder_of_shards_or_a_glob(tmp_path):
    for name in ("a.jsonl", "b/c.jsonl.gz", "b/d.parquet", "b/notes.txt", "_tmp/e.jsonl", ".f.csv"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")

    def found(uri: str) -> list[str]:
        return [Path(p).relative_to(tmp_path).as_posix() for p in ray_io.input_files(uri)[1]]

    assert found(str(tmp_path / "a.jsonl")) == ["a.jsonl"]
    assert found(str(tmp_path)) == ["a.jsonl", "b/c.jsonl.gz", "b/d.parquet"]
    assert found(f"file://{tmp_path}/b/*.parquet") == ["b/d.parquet"]
    with pytest.raises(DataError, match="does not exist"):
        ray_io.input_files(str(tmp_path / "missing"))
    with pytest.raises(DataError, match="holds no file of articles"):
        ray_io.input_files(str(tmp_path / "_tmp" / "*.csv"))


@given(
    lines=st.lists(
        st.one_of(st.text(alphabet="ابت ثج\u0640", max_size=12), st.just(""), st.just("{bad")),
        max_size=30,
    ),
    split=st.integers(1, 120),
)
def test_a_json_lines_file_read_in_byte_ranges_holds_each_line_once(tmp_path_factory, lines, split):
    """Whatever the range size, the ranges of a file give its rows in order, each once, and a
    row's line within its range plus the lines before the range is its line in the file."""
    path = tmp_path_factory.mktemp("ranges") / "in.jsonl"
    encoded = [
        raw if raw in ("", "{bad") else json.dumps({"id": i, "text": raw}, ensure_ascii=False)
        for i, raw in enumerate(lines)
    ]
    data = ("\n".join(encoded) + "\n").encode() if encoded else b""
    path.write_bytes(data)
    fs, files = ray_io.input_files(str(path))
    schema, fields = record_schema("score"), ("id", "text")

    def rows(units) -> list[tuple[int, str | None, str | None]]:
        found = []
        for unit, _ in units:
            before = 0
            if unit.end is not None and unit.start > 0:
                first = (
                    unit.start
                    if data[unit.start - 1 : unit.start] == b"\n"
                    else (data.find(b"\n", unit.start) + 1 or len(data))
                )
                before = data[:first].count(b"\n")
            for table in ray_io.read_unit(unit, fs, schema, fields, {}):
                assert set(table.column("source").to_pylist()) == {unit.name}
                for line, record, reject in zip(
                    table.column("line").to_pylist(),
                    table.column("record").to_pylist(),
                    table.column("reject").to_pylist(),
                    strict=True,
                ):
                    reason = json.loads(reject)["reason"] if reject else None
                    found.append((before + line, record, reason))
        return found

    units = ray_io.read_units(fs, files, split)
    assert len(units) == (1 if len(data) <= split else -(-len(data) // split))
    assert rows(units) == rows(ray_io.read_units(fs, files, len(data) + 1))


def test_ray_scorer_called_directly_with_a_shipped_bundle(
    tiny_bundle, analyzer, tmp_path, monkeypatch
):
    """The actor class without Ray: a bundle path this node lacks is unpacked from its payload,
    and a record the Article rules refuse becomes a reject naming its file and line."""
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the node's temp folder
    packed = pack_bundle(tiny_bundle)
    job = Job("in.jsonl", "out", keep_fields=("url",), summary_sentences=2, engine="ray")
    scorer = RayScorer(
        {t: "/elsewhere/bundle" for t in TASKS},
        {t: "v1" for t in TASKS},
        job,
        ScoringConfig(max_claims=4),
        shipped={"/elsewhere/bundle": Shipped(packed[0], packed)},
    )
    assert unpack_bundle(packed) == tmp_path / "akhbar-models" / packed[0]
    records = [{**r, "url": f"u{i}"} for i, r in enumerate(GOOD[:5])]
    records.append({"id": "many-claims", "text": GOOD[0]["text"], "claims": ["أ"] * 5})
    out = scorer(scored_table(records)).to_pylist()

    expected = service_results(analyzer, GOOD[:5], 6)
    for i, e in enumerate(expected):
        e["model_versions"] = {t: "v1" for t in TASKS}
        e["url"] = f"u{i}"
    assert_same_results([json.loads(r["result"]) for r in out[:5]], expected, tol=0)
    assert out[5]["result"] is None
    assert json.loads(out[5]["reject"]) == {
        "source": "in.jsonl",
        "line": 6,
        "id": "many-claims",
        "reason": json.loads(out[5]["reject"])["reason"],
    }
    assert "the limit is 4 per article" in json.loads(out[5]["reject"])["reason"]


def test_a_ray_actor_applies_the_drivers_configuration(tiny_bundle, torch_threads):
    """Called directly, as Ray would on a node: the driver's torch threads and k, not the node's;
    with AKHBAR_TORCH_THREADS 0, one thread per CPU Ray reserves for the actor."""
    import torch

    bundles, versions = {t: str(tiny_bundle) for t in TASKS}, {t: "v1" for t in TASKS}
    job = Job("in.jsonl", "out", engine="ray", actor_cpus=2)
    torch.set_num_threads(1)
    scorer = RayScorer(bundles, versions, job, ScoringConfig(torch_threads=3, summary_sentences=4))
    assert torch.get_num_threads() == 3 and scorer.analyzer.summary_sentences == 4
    RayScorer(bundles, versions, job, ScoringConfig())
    assert torch.get_num_threads() == 2


def _scored_rows(lines: range, source: str = "/data/in.jsonl") -> pa.Table:
    return pa.table(
        {
            "source": [source] * len(lines),
            "line": list(lines),
            "result": [json.dumps({"id": f"r{n}", "warnings": []}) for n in lines],
            "reject": pa.array([None] * len(lines), pa.string()),
            "node": ["n1"] * len(lines),
            "gpus": pa.array([None] * len(lines), pa.string()),
            "seconds": [0.01] * len(lines),
        }
    )


def test_a_shard_is_committed_once_and_recover_finishes_a_publish_cut_short(tmp_path, monkeypatch):
    """The sink's three steps, with a kill between the commit and the move into place."""
    out = tmp_path / "out"
    sink = ray_io.ResultsSink(str(out), parquet=False)
    first = sink.write([_scored_rows(range(1, 11))], None)
    assert (first.results, first.rejects) == (10, 0)
    again = sink.write([_scored_rows(range(1, 11))], None)  # a write task Ray retried
    assert again.results == 10 and len(list(out.glob("part-*.jsonl"))) == 1

    def killed(*args):
        raise SystemExit("killed between the commit and the move")

    monkeypatch.setattr(ray_io, "_publish", killed)
    with pytest.raises(SystemExit):
        sink.write([_scored_rows(range(11, 16))], None)
    (out / "_staging" / "part-never-committed.jsonl").write_text('{"id": "ghost"}\n')
    monkeypatch.undo()
    assert len(list(out.glob("part-*.jsonl"))) == 1  # the second shard is still staged

    with pytest.raises(ray_io.OutputFolderError, match="pass --resume"):
        ray_io.recover(str(out), resume=False)
    done = ray_io.recover(str(out), resume=True)
    assert done.rows == {"/data/in.jsonl": [(1, 15)]} and done.results == 15
    assert [r["id"] for r in ray_results(out)] == sorted(f"r{n}" for n in range(1, 16))
    assert not list((out / "_staging").iterdir())  # the uncommitted file is gone


def test_ray_job_arguments_are_checked_before_anything_runs():
    with pytest.raises(ValueError, match="--actor-gpus needs --engine ray"):
        Job("in.jsonl", "out.jsonl", actor_gpus=1)
    with pytest.raises(ValueError, match="MIN <= MAX"):
        Job("in.jsonl", "out", engine="ray", concurrency=(4, 2))
    with pytest.raises(ValueError, match="--input - does not work with --engine ray"):
        Job("-", "out", engine="ray")
    with pytest.raises(ValueError, match="OUTPUT/_rejects"):
        Job("in.jsonl", "out", engine="ray", rejects=Path("r.jsonl"))
    assert Job("in", "s3://bucket/out.parquet/", engine="ray").parquet_shards
    assert Job("in", "out", engine="ray", concurrency=(1, 4)).actors == (1, 4)


# ---------------------------------------------------------------------------------------
# Real Ray jobs


@pytest.fixture()
def ray_env(env, monkeypatch):
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    return env


def shards(folder: Path) -> Path:
    """A folder of input shards: JSON Lines with bad lines, gzipped JSON Lines, Parquet."""
    folder.mkdir()
    write_input(folder / "a.jsonl", good=GOOD[:30], bad=BAD_LINES[:3], every=10)
    import gzip

    with gzip.open(folder / "b.jsonl.gz", "wt", encoding="utf-8") as f:
        for record in GOOD[30:50]:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    rows = [{**r, "claims": r.get("claims", [])} for r in GOOD[50:60]]
    pq.write_table(pa.Table.from_pylist(rows), folder / "c.parquet")
    return folder


@pytest.mark.slow
def test_ray_engine_gives_the_local_engines_results_from_a_folder_of_shards(ray_env):
    source = shards(ray_env / "in")
    expected, expected_rejects = [], []
    for name in ("a.jsonl", "b.jsonl.gz", "c.parquet"):
        results, rejects = local_run(
            source / name, ray_env / f"local-{name}.jsonl", batch_size=8, keep_fields=("title",)
        )
        expected += results
        expected_rejects += [{"source": str(source / name), **r} for r in rejects]
    report = score_file(
        Job(
            str(source),
            ray_env / "out",
            batch_size=8,
            engine="ray",
            concurrency=(1, 2),
            keep_fields=("title",),
            progress=False,
        )
    )
    assert (report.scored, report.rejected) == (60, 3)
    assert_same_results(ray_results(ray_env / "out"), sorted(expected, key=lambda r: r["id"]))
    assert ray_rejects(ray_env / "out") == sorted(
        expected_rejects, key=lambda r: (r["source"], r["line"])
    )
    summary = json.loads((ray_env / "out" / "_SUCCESS").read_text())
    assert (summary["results"], summary["rejects"]) == (60, 3)


@pytest.mark.slow
def test_a_large_file_is_read_in_byte_ranges_and_resumes_by_them(ray_env, monkeypatch):
    """One JSON Lines file cut into byte ranges (a task each) gives the local engine's results
    and rejects (lines counted within the range they name); shards lost before their commit
    are scored again on --resume, and nothing else is."""
    source = write_input(ray_env / "in.jsonl", good=GOOD[:60], bad=BAD_LINES[:3], every=20)
    monkeypatch.setattr(ray_io, "SPLIT_BYTES", 2048)
    expected, expected_rejects = local_run(source, ray_env / "local.jsonl", batch_size=8)
    out = ray_env / "out"
    job = Job(
        str(source), out, batch_size=8, engine="ray", concurrency=2, shard_rows=8, progress=False
    )
    report = score_file(job)
    assert (report.scored, report.rejected) == (60, 3)
    assert_same_results(ray_results(out), expected)
    data = source.read_bytes()
    rejects = []
    for reject in ray_rejects(out):
        path, _, span = reject.pop("source").partition("#bytes=")
        assert path == str(source) and span, "a range names its bytes"
        start = int(span.split("-")[0])
        first = start if data[start - 1 : start] == b"\n" else data.index(b"\n", start) + 1
        rejects.append({**reject, "line": data[:first].count(b"\n") + reject["line"]})
    assert sorted(rejects, key=lambda r: r["line"]) == expected_rejects
    sources = {source for m in manifests(out) for source in m["rows"]}
    assert len(sources) >= len(data) // 2048 and all("#bytes=" in s for s in sources)

    lost = manifests(out)[::2]  # as if killed before these shards were committed
    for manifest in lost:
        (out / "_manifest" / f"{manifest['shard']}.json").unlink()
        for final in manifest["files"].values():
            (out / final).unlink()
    (out / "_SUCCESS").unlink()
    report = score_file(replace(job, resume=True))
    assert (report.scored, report.rejected) == (
        sum(m["results"] for m in lost),
        sum(m["rejects"] for m in lost),
    )
    assert [r["id"] for r in ray_results(out)] == sorted(r["id"] for r in expected)
    assert len(ray_rejects(out)) == len(expected_rejects)


def score_command(source: Path | str, output: Path | str, *extra: str) -> list[str]:
    return [
        str(AKHBAR),
        "score",
        "--engine",
        "ray",
        "--input",
        str(source),
        "--output",
        str(output),
        "--batch-size",
        "4",
        *extra,
    ]


def manifests(out: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((out / "_manifest").glob("*.json"))]


@pytest.mark.slow
def test_a_job_killed_mid_way_resumes_to_every_record_exactly_once(ray_env, analyzer):
    """SIGKILL to the whole job (driver, Ray and its workers, as a lost machine), then
    --resume: every good record is in the output once, and what was committed is not redone."""
    records = [article(i) for i in range(800)]
    write_jsonl(ray_env / "in.jsonl", records)
    out = ray_env / "out"
    job = subprocess.Popen(
        score_command(ray_env / "in.jsonl", out, "--concurrency", "2", "--shard-rows", "40"),
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for(lambda: len(manifests(out)) >= 1, job, timeout=JOB_TIMEOUT_S)
    finally:
        os.killpg(job.pid, signal.SIGKILL)
        job.wait()
    committed = sum(m["results"] for m in manifests(out))
    assert 0 < committed < len(records)

    resumed = subprocess.run(
        score_command(
            ray_env / "in.jsonl", out, "--concurrency", "2", "--shard-rows", "40", "--resume"
        ),
        capture_output=True,
        text=True,
        timeout=JOB_TIMEOUT_S,
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"{committed} already in the output" in resumed.stderr
    got = ray_results(out)
    assert [r["id"] for r in got] == sorted(r["id"] for r in records)  # each exactly once
    by_id = {r["id"]: r for r in got}
    sample = records[:: len(records) // 20]
    expected = service_results(analyzer, sample, 4)
    for result in expected:
        result.pop("model_versions")
    assert_same_results(
        [{k: v for k, v in by_id[r["id"]].items() if k != "model_versions"} for r in sample],
        expected,
        tol=1e-5,
    )


@pytest.fixture()
def cluster(ray_env):
    """A Ray cluster of three nodes on this machine: a head that runs nothing (no CPUs), and two
    workers, one of them declaring a GPU, each with a small object store."""
    from ray.cluster_utils import Cluster

    store = 100 * 2**20
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 0, "object_store_memory": store, "include_dashboard": False},
    )
    try:
        gpu_node = cluster.add_node(num_cpus=2, num_gpus=1, object_store_memory=store)
        cpu_node = cluster.add_node(num_cpus=2, object_store_memory=store)
        cluster.wait_for_nodes()
        yield cluster, gpu_node, cpu_node
    finally:
        cluster.shutdown()


def without_versions(results: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "model_versions"} for r in results]


@pytest.mark.slow
def test_a_multi_node_cluster_scores_on_its_workers_and_survives_losing_one(cluster, ray_env):
    """Actors run on worker nodes, where --actor-gpus sends them; results equal the local
    engine's; a worker node lost mid-job leaves, after --resume, every record exactly once."""
    cluster, gpu_node, cpu_node = cluster
    write_input(ray_env / "small.jsonl", good=GOOD[:24], bad=BAD_LINES[:2], every=10)
    expected, _ = local_run(ray_env / "small.jsonl", ray_env / "local.jsonl", batch_size=4)
    first = subprocess.run(
        score_command(
            ray_env / "small.jsonl",
            ray_env / "gpu-out",
            "--ray-address",
            cluster.address,
            "--actor-gpus",
            "0.5",
            "--concurrency",
            "2",
        ),
        capture_output=True,
        text=True,
        timeout=JOB_TIMEOUT_S,
    )
    assert first.returncode == 0, first.stderr[-3000:]
    assert "scored 24, rejected 2" in first.stderr
    assert_same_results(
        without_versions(ray_results(ray_env / "gpu-out")), without_versions(expected)
    )
    placed = manifests(ray_env / "gpu-out")
    assert {n for m in placed for n in m["nodes"]} == {gpu_node.node_id}  # not the head
    assert {g for m in placed for g in m["gpus"]} == {"0"}  # the GPU Ray gave the actors

    records = [article(i) for i in range(600)]
    write_jsonl(ray_env / "big.jsonl", records)
    command = score_command(
        ray_env / "big.jsonl",
        ray_env / "out",
        "--ray-address",
        cluster.address,
        "--concurrency",
        "2",
        "--shard-rows",
        "40",
    )
    job = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: manifests(ray_env / "out"), job, timeout=JOB_TIMEOUT_S)
    busy = manifests(ray_env / "out")[0]["nodes"][0]
    lost = next(n for n in (gpu_node, cpu_node) if n.node_id == busy)
    assert job.poll() is None  # mid-job
    cluster.remove_node(lost)  # the node whose actor just committed a shard
    try:
        job.wait(timeout=JOB_TIMEOUT_S)  # it may finish on the other node, or fail
    finally:
        job.kill()
    resumed = subprocess.run(
        [*command, "--resume"], capture_output=True, text=True, timeout=JOB_TIMEOUT_S
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert [r["id"] for r in ray_results(ray_env / "out")] == sorted(r["id"] for r in records)
    nodes = {n for m in manifests(ray_env / "out") for n in m["nodes"]}
    assert nodes <= {gpu_node.node_id, cpu_node.node_id}


@pytest.fixture()
def s3(ray_env, monkeypatch):
    """An S3-compatible server (moto) on the loopback with a bucket ``news``; the AWS variables
    point every client at it (pyarrow reads AWS_ENDPOINT_URL), as they would at real S3."""
    import boto3
    from moto.server import ThreadedMotoServer

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    for key, value in {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    client = boto3.client("s3")
    client.create_bucket(Bucket="news")
    try:
        yield client
    finally:
        server.stop()


@pytest.mark.slow
def test_archives_in_object_storage_are_read_and_written_there(
    s3, ray_env, tiny_bundle, monkeypatch
):
    """Input shards in s3://, Parquet shards out to s3://, the models from an s3:// URI, through
    the code path real S3 takes; the Parquet schema is fixed (warnings a list of strings though
    every list is empty)."""
    for file in tiny_bundle.rglob("*"):
        if file.is_file():
            s3.upload_file(str(file), "news", f"models/v1/{file.relative_to(tiny_bundle)}")
    for task in TASKS:
        monkeypatch.setenv(f"AKHBAR_{task.upper()}_MODEL", "s3://news/models/v1")
    source = shards(ray_env / "in")
    expected = []
    for path in sorted(source.iterdir()):
        s3.upload_file(str(path), "news", f"archive/2026/{path.name}")
        expected += local_run(path, ray_env / f"local-{path.name}.jsonl", batch_size=8)[0]
    report = score_file(
        Job(
            "s3://news/archive/",
            "s3://news/scored.parquet",
            batch_size=8,
            engine="ray",
            concurrency=2,
            progress=False,
        )
    )
    assert (report.scored, report.rejected) == (60, 3)

    import pyarrow.fs as pafs

    fs, root = pafs.FileSystem.from_uri("s3://news/scored.parquet")
    parts = [
        f.path for f in fs.get_file_info(pafs.FileSelector(root)) if f.path.endswith(".parquet")
    ]
    tables = [pq.read_table(p, filesystem=fs) for p in parts]
    assert len({t.schema for t in tables}) == 1
    assert tables[0].schema.field("warnings").type == pa.list_(pa.string())
    got = sorted(pa.concat_tables(tables).to_pylist(), key=lambda r: r["id"])
    assert {r["model_versions"]["topic"] for r in got} == {"s3://news/models/v1"}
    assert [r["id"] for r in got] == sorted(r["id"] for r in expected)
    by_id = {r["id"]: r for r in expected}
    for row in got:
        assert row["topic"]["label"] == by_id[row["id"]]["topic"]["label"]
        assert row["summary"]["offsets"] == by_id[row["id"]]["summary"]["offsets"]
    rejects = fs.get_file_info(pafs.FileSelector(f"{root}/_rejects"))
    assert sum(len(fs.open_input_stream(r.path).read().splitlines()) for r in rejects) == 3
