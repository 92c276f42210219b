"""The BentoML model store: import, list, promote, export, and what the service resolves."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from akhbar.models.tasks import TASKS
from akhbar.serving.core import store


@pytest.fixture
def home(monkeypatch, tmp_path):
    """An empty store in tmp, no AKHBAR_* settings, and no shipped defaults."""
    for key in ("AKHBAR_TOPIC_MODEL", "AKHBAR_STANCE_MODEL", "AKHBAR_SUMMARY_MODEL"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("BENTOML_HOME", str(tmp_path / "bentoml"))
    (tmp_path / "no-defaults").mkdir()
    monkeypatch.setenv("AKHBAR_DEFAULT_MODELS", str(tmp_path / "no-defaults"))
    return tmp_path / "bentoml"


@pytest.fixture
def scored_bundle(tiny_bundle, tmp_path):
    """The tiny bundle with validation figures in its metrics.json."""
    bundle = tmp_path / "scored"
    shutil.copytree(tiny_bundle, bundle)
    (bundle / "metrics.json").write_text(
        json.dumps({"tasks": {"topic": {"validation": {"macro_f1": 0.8125, "x": None}}}})
    )
    return bundle


def test_import_list_promote_export_round_trip(home, scored_bundle, tmp_path, capsys):
    assert store.main(["import", str(scored_bundle), "--task", "topic"]) == 0
    tag = capsys.readouterr().out.strip()
    assert tag.startswith("akhbar-topic:")
    assert (store.resolve(tag) / "akhbar.json").is_file()
    assert store.model_tasks(tag) == ("topic",)

    assert store.main(["list"]) == 0
    listing = capsys.readouterr().out
    assert tag in listing and "validation.macro_f1=0.8125" in listing

    assert store.main(["promote", tag]) == 0
    assert "default for topic" in capsys.readouterr().out
    pointers = json.loads((home / "akhbar" / "promoted.json").read_text())
    assert pointers == {"topic": tag}
    assert store.list_models()[0]["promoted_for"] == ["topic"]

    out = tmp_path / "exported"
    assert store.main(["export", tag, str(out)]) == 0
    exported = sorted(p.name for p in out.iterdir())
    assert exported == sorted(p.name for p in scored_bundle.iterdir())  # no model.yaml
    for name in exported:
        assert (out / name).read_bytes() == (scored_bundle / name).read_bytes()
    assert store.main(["export", tag, str(out)]) == 1  # never over an existing bundle
    assert "not empty" in capsys.readouterr().err


def test_a_shared_bundle_serves_every_task_and_promote_pins_the_version(home, tiny_bundle):
    tag = store.import_bundle(tiny_bundle, validate=False)
    assert tag.startswith("akhbar-shared:")
    assert set(store.model_tasks(tag)) == set(TASKS)
    pinned, pointers = store.promote("akhbar-shared:latest")
    assert pinned == tag and pointers == {t: tag for t in TASKS}
    refs = store.resolve_models()
    assert {t: r.version for t, r in refs.items()} == {t: tag for t in TASKS}
    newer = store.import_bundle(tiny_bundle, validate=False)
    assert (
        store.resolve_models()["topic"].version == tag
    )  # an import alone never changes the default
    store.promote(newer, ["topic"])
    assert store.resolve_models()["topic"].version == newer
    assert store.resolve_models()["stance"].version == tag


def test_overrides_take_a_directory_or_a_tag(home, tiny_bundle):
    tag = store.import_bundle(tiny_bundle, "stance", validate=False)
    refs = store.resolve_models(
        TASKS, {"topic": str(tiny_bundle), "summary": str(tiny_bundle), "stance": tag}
    )
    assert refs["topic"].path == tiny_bundle.resolve() and refs["topic"].version == str(
        tiny_bundle.resolve()
    )
    assert refs["stance"].version == tag


@pytest.fixture
def bentoml_state(home):
    """BentoML's own model store pointed at the test's home (BentoML reads BENTOML_HOME once
    per process); yields a function that sets the model aliases a loaded Bento would have
    recorded. Both are restored afterwards."""
    from bentoml._internal.configuration.containers import BentoMLContainer

    aliases, models = BentoMLContainer.model_aliases.get(), BentoMLContainer.model_store.get()
    BentoMLContainer.model_store.set(store._model_store())
    yield BentoMLContainer.model_aliases.set
    BentoMLContainer.model_aliases.set(aliases)
    BentoMLContainer.model_store.set(models)


def test_inside_a_bento_its_own_models_win_over_the_promoted_ones(home, tiny_bundle, bentoml_state):
    built = store.import_bundle(tiny_bundle, validate=False)
    store.promote(store.import_bundle(tiny_bundle, validate=False))  # promoted after the build
    bentoml_state({store.bento_alias(["topic", "summary"]): built, "other": "x:y"})
    assert store.bento_models() == {"topic": built, "summary": built}
    refs = store.resolve_models()
    assert refs["topic"].tag == built and refs["summary"].tag == built
    assert refs["stance"].tag not in (None, built)  # not in the Bento: the promoted one
    # A bundle directory mounted where the Bento runs still overrides.
    assert store.resolve_models(["topic"], {"topic": str(tiny_bundle)})["topic"].tag is None


def test_the_service_declares_each_tasks_model_to_bentoml_on_demand(
    home, tiny_bundle, monkeypatch, bentoml_state
):
    from akhbar.serving.http.bento_models import TaskModel
    from akhbar.serving.http.service import Akhbar

    assert {m.task for m in Akhbar.models} == set(TASKS)  # importing looked nothing up
    tag = store.import_bundle(tiny_bundle, validate=False)
    store.promote(tag)
    model = TaskModel("stance")
    assert str(model.tag) == tag
    assert model.to_info().alias == store.bento_alias(TASKS)  # one model serves all three
    monkeypatch.setenv("AKHBAR_STANCE_MODEL", str(tiny_bundle))
    mounted = TaskModel("stance")
    assert mounted.resolve() is None  # served in place, nothing for BentoML to fetch
    with pytest.raises(store.ModelStoreError, match="akhbar models import"):
        mounted.to_info()  # but a Bento cannot carry it


def test_first_start_imports_and_promotes_the_shipped_defaults_once(
    home, tiny_bundle, tmp_path, monkeypatch, capsys
):
    defaults = tmp_path / "defaults"
    for task in TASKS:
        shutil.copytree(tiny_bundle, defaults / task)
    monkeypatch.setenv("AKHBAR_DEFAULT_MODELS", str(defaults))
    store.main(["list"])
    listing = capsys.readouterr().out
    assert "No akhbar models" in listing and f"defaults in {defaults} are imported" in listing
    first = store.resolve_models()
    assert {t: r.version.split(":")[0] for t, r in first.items()} == {
        t: f"akhbar-{t}" for t in TASKS
    }
    said = capsys.readouterr().err  # importing into the store is said aloud, once per model
    assert said.count("importing the shipped default") == 3 and str(home) in said
    assert store.resolve_models() == first  # the second start imports nothing
    assert "importing" not in capsys.readouterr().err
    assert len(store.list_models()) == 3


def test_an_empty_store_without_shipped_defaults_says_how_to_get_models(home, capsys):
    assert store.main(["list"]) == 0
    listing = capsys.readouterr().out
    assert "No akhbar models" in listing
    assert "AKHBAR_DEFAULT_MODELS" in listing and "akhbar models import DIR" in listing


def test_a_shipped_shared_bundle_is_imported_once_for_every_task(
    home, tiny_bundle, tmp_path, monkeypatch
):
    defaults = tmp_path / "defaults"
    shutil.copytree(tiny_bundle, defaults / "shared")  # the tiny bundle has all three heads
    monkeypatch.setenv("AKHBAR_DEFAULT_MODELS", str(defaults))
    own = store.import_bundle(tiny_bundle, "stance")
    store.promote(own)  # someone's own stance model stays the stance default
    refs = store.resolve_models()
    assert refs["topic"].version == refs["summary"].version
    assert refs["topic"].version.startswith("akhbar-shared:")
    assert refs["stance"].version == own
    assert store.resolve_models() == refs
    assert len(store.list_models()) == 2


def test_a_changed_shipped_default_replaces_the_old_one_but_not_a_promoted_model(
    home, tiny_bundle, tmp_path, monkeypatch
):
    defaults = tmp_path / "defaults"
    shutil.copytree(tiny_bundle, defaults / "shared")
    monkeypatch.setenv("AKHBAR_DEFAULT_MODELS", str(defaults))
    own = store.import_bundle(tiny_bundle, "stance")
    store.promote(own)
    old = store.resolve_models()["topic"].version
    assert store.resolve_models()["topic"].version == old  # unchanged: nothing is imported again

    # A new checkout ships new default weights (here: new validation figures).
    (defaults / "shared" / "metrics.json").write_text(
        json.dumps({"tasks": {"topic": {"validation": {"macro_f1": 0.9}}}})
    )
    refs = store.resolve_models()
    assert refs["topic"].version != old and refs["topic"].version == refs["summary"].version
    assert refs["stance"].version == own  # promoted by someone: stays
    assert store.promoted() == {
        "topic": refs["topic"].version,
        "summary": refs["topic"].version,
        "stance": own,
    }
    assert store.resolve_models() == refs
    assert len(store.list_models()) == 3  # the old default stays in the store (export, rollback)

    # A shipped model someone promoted by hand is "someone's" too
    # once re-imported without the label.
    mine = store.import_bundle(defaults / "shared")
    store.promote(mine, ["topic"])
    (defaults / "shared" / "metrics.json").write_text("{}")
    assert store.resolve_models()["topic"].version == mine


def test_missing_unknown_and_corrupt_models_are_one_sentence(home, tiny_bundle, tmp_path):
    with pytest.raises(store.ModelStoreError) as missing:
        store.resolve_models(["summary"])
    assert "no summary model" in str(missing.value) and "make models" in str(missing.value)
    assert "akhbar models import DIR --task summary" in str(missing.value)

    with pytest.raises(
        store.ModelStoreError, match="AKHBAR_TOPIC_MODEL akhbar-topic:nope is neither"
    ):
        store.resolve_models(["topic"], {"topic": "akhbar-topic:nope"})
    with pytest.raises(store.ModelStoreError, match="not in the store"):
        store.promote("akhbar-topic:nope")

    broken = tmp_path / "broken"
    shutil.copytree(tiny_bundle, broken)
    (broken / "tokenizer.json").unlink()
    with pytest.raises(
        store.ModelStoreError, match="cannot import model bundle .*broken: lacks tokenizer.json"
    ):
        store.import_bundle(broken, "topic")
    truncated = tmp_path / "truncated"
    shutil.copytree(tiny_bundle, truncated)
    (truncated / "model.safetensors").write_bytes(b"\0" * 100)
    assert store.main(["import", str(truncated)]) == 1  # validated before it enters the store
    assert store.list_models() == []


class FakeHub:
    """Stands in for huggingface_hub.HfApi (no network here): records what would be pushed."""

    calls: list[tuple] = []
    fail = False

    def create_repo(self, repo_id, private=None, exist_ok=False):
        FakeHub.calls.append(("create_repo", repo_id, private, exist_ok))

    def upload_folder(self, repo_id, folder_path, commit_message=None):
        if FakeHub.fail:
            import httpx
            from huggingface_hub.errors import HfHubHTTPError

            request = httpx.Request("POST", "https://huggingface.co/api/repos/create")
            response = httpx.Response(401, request=request)
            raise HfHubHTTPError("401 Client Error: Unauthorized", response=response)
        files = sorted(p.name for p in Path(folder_path).iterdir())
        FakeHub.calls.append(("upload_folder", repo_id, files))
        return SimpleNamespace(commit_url=f"https://huggingface.co/{repo_id}/commit/abc")


def test_an_export_pushes_its_folder_to_the_hub(home, tiny_bundle, tmp_path, monkeypatch, capsys):
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeHub)
    FakeHub.calls, FakeHub.fail = [], False
    target = tmp_path / "pushed"
    args = ["export", str(tiny_bundle), str(target), "--push-to-hub", "newsroom/akhbar"]
    assert store.main(args) == 0
    assert "huggingface.co/newsroom/akhbar/commit/abc" in capsys.readouterr().out
    created, uploaded = FakeHub.calls
    assert created == ("create_repo", "newsroom/akhbar", True, True)
    assert uploaded[:2] == ("upload_folder", "newsroom/akhbar") and "README.md" in uploaded[2]
    FakeHub.fail = True  # a refused push says so in one line; the export stays on disk
    assert store.main([*args[:2], str(tmp_path / "again"), *args[3:]]) == 1
    err = capsys.readouterr().err
    assert "pushing it to newsroom/akhbar failed" in err and "401" in err
    assert (tmp_path / "again" / "akhbar.json").is_file()
