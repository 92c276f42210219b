"""``akhbar train``: tiny fine-tuning runs over the tiny base, into loadable bundles."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import write_jsonl
from huggingface_hub import ModelCard

from akhbar.models.bundle import load_bundle
from akhbar.models.reader import DataError
from akhbar.models.tasks import HEADLINE_STANCE_LABELS, STANCE_LABELS
from akhbar.training.finetune import run
from akhbar.training.finetune_config import FinetuneConfig
from akhbar.training.multitask import MultiTaskTrainer

# A custom Arabic taxonomy: local news, sport, economy.
TAXONOMY = ("محلي", "رياضة", "اقتصاد")
WORDS = {
    "محلي": [
        "البلدية",
        "الحي",
        "أمير",
        "المنطقة",
        "الطرق",
        "المدارس",
        "السكان",
        "الحديقة",
        "المستشفى",
        "افتتح",
    ],
    "رياضة": [
        "الفريق",
        "المباراة",
        "الهدف",
        "المدرب",
        "اللاعب",
        "الدوري",
        "الكأس",
        "الملعب",
        "فاز",
        "سجل",
    ],
    "اقتصاد": [
        "الأسهم",
        "النفط",
        "البورصة",
        "الأسعار",
        "التضخم",
        "الشركة",
        "الأرباح",
        "المصرف",
        "ارتفعت",
        "تراجعت",
    ],
}
COMMON = ["في", "على", "من", "مع", "بعد", "اليوم", "الجديد", "قال", "أن", "العام"]
pytestmark = pytest.mark.usefixtures("isolated")  # tests/conftest.py


def topic_rows(n: int, seed: int, labels=TAXONOMY) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = labels[i % len(labels)]
        words = WORDS[TAXONOMY[i % len(TAXONOMY)]]
        body = " ".join(rng.choice(words + COMMON) for _ in range(rng.randint(8, 20)))
        rows.append(
            {
                "id": f"{seed}-{i}",
                "title": " ".join(rng.sample(words, 3)),
                "text": body + ".",
                "label": label,
            }
        )
    return rows


@pytest.fixture(scope="module")
def topic_data(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("topic_data")
    write_jsonl(folder / "train.jsonl", topic_rows(40, seed=1))
    write_jsonl(folder / "validation.jsonl", topic_rows(20, seed=2))
    return folder


def tiny(base, data, out, **overrides) -> FinetuneConfig:
    settings = dict(
        task="topic",
        data=str(data),
        base_model=str(base),
        max_steps=6,
        eval_steps=3,
        batch_size=8,
        max_length=32,
        stride=8,
        output_dir=str(out),
        threads=1,
        seed=3,
    )
    settings.update(overrides)
    return FinetuneConfig(**settings)


@pytest.fixture(scope="module")
def topic_run(tiny_base, topic_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("topic_run")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TENSORBOARD_LOGGING_DIR", str(out / "tensorboard"))
        threads = torch.get_num_threads()
        result = run(tiny(tiny_base, topic_data, out))
        torch.set_num_threads(threads)
    return result


def heads_and_encoder(bundle_dir: Path) -> tuple[dict, dict]:
    model = load_bundle(bundle_dir).model
    return (
        {k: v.clone() for k, v in model.heads.state_dict().items()},
        {k: v.clone() for k, v in model.encoder.state_dict().items()},
    )


def test_topic_run_writes_a_loadable_bundle_with_the_data_labels(topic_run):
    bundle = load_bundle(topic_run.bundle)
    assert bundle.tasks == ("topic",)
    settings = bundle.settings.tasks["topic"]
    assert set(settings.labels) == set(TAXONOMY)
    assert list(settings.labels) == sorted(TAXONOMY)
    assert settings.max_length == 32 and settings.stride == 8
    assert bundle.model.heads["topic"].out.weight.shape[0] == 3
    assert settings.temperature == pytest.approx(
        topic_run.metrics["tasks"]["topic"]["validation"]["temperature"]
    )
    assert topic_run.metrics["steps"] == 6
    assert len(topic_run.tasks["topic"].true) == len(topic_run.tasks["topic"].pred) == 20


def test_topic_metrics_json(topic_run):
    metrics = json.loads((topic_run.bundle / "metrics.json").read_text())
    val = metrics["tasks"]["topic"]["validation"]
    assert 0.0 <= val["macro_f1"] <= 1.0
    low, high = val["macro_f1_ci"]
    assert low <= val["macro_f1"] <= high
    assert 0.0 <= val["ece_before"] <= 1.0 and 0.0 <= val["ece_after"] <= 1.0
    assert 0.05 <= val["temperature"] <= 20.0
    assert set(val["per_class"]) == set(TAXONOMY)
    assert sum(c["support"] for c in val["per_class"].values()) == 20
    assert metrics == json.loads(json.dumps(topic_run.metrics))
    card = ModelCard.load(topic_run.bundle / "README.md")
    assert "macro-F1" in card.text
    assert card.data.pipeline_tag == "text-classification" and card.data.library_name == "akhbar"
    assert card.data.language == "ar" and card.data.license == "cc-by-nc-sa-4.0"
    assert card.data.base_model and "topic-classification" in card.data.tags
    assert card.data.datasets  # the training sets, by name


def test_validation_figures_match_the_serving_path(tiny_base, topic_data, tmp_path):
    """The training-time validation predictions are the Predictor's, row for row.

    Guards against evaluation-order bugs: transformers 5 applies a length-grouped sampler
    to evaluation too, which silently permuted predictions against their labels. The run
    trains long enough for its predictions to differ between rows, so a permutation shows.
    """
    from akhbar.models.predict import Predictor
    from akhbar.models.reader import read_records

    result = run(
        tiny(
            tiny_base,
            topic_data,
            tmp_path,
            max_steps=40,
            eval_steps=40,
            learning_rate=3e-3,
            bf16=False,
        )
    )
    val = list(read_records(topic_data, "topic", split="validation"))
    bundle = load_bundle(result.bundle)
    labels = list(bundle.settings.tasks["topic"].labels)
    served = Predictor(bundle).topic([r["text"] for r in val], [r["title"] for r in val])
    temperature = bundle.settings.tasks["topic"].temperature
    trained = torch.softmax(torch.tensor(result.tasks["topic"].logits) / temperature, dim=1).numpy()
    assert len({p.label for p in served}) > 1, "the run must learn enough for a permutation to show"
    assert np.allclose([[p.scores[name] for name in labels] for p in served], trained, atol=1e-4)
    assert list(result.tasks["topic"].true) == [labels.index(r["label"]) for r in val]


def test_bundle_holds_only_safetensors(topic_run):
    names = [p.name for p in topic_run.bundle.iterdir()]
    assert "model.safetensors" in names
    assert not [n for n in names if n.endswith((".bin", ".pt", ".pth", ".pkl"))]


def test_init_from_continues_from_the_bundle(topic_run, topic_data, tiny_base, tmp_path):
    # With a zero learning rate the continued run must end exactly where the bundle was:
    # the same encoder and the same head (labels match, so the head is reused).
    result = run(
        tiny(
            tiny_base,
            topic_data,
            tmp_path / "cont",
            init_from=str(topic_run.bundle),
            learning_rate=0.0,
        )
    )
    heads_a, enc_a = heads_and_encoder(topic_run.bundle)
    heads_b, enc_b = heads_and_encoder(result.bundle)
    assert heads_a.keys() == heads_b.keys()
    assert all(torch.equal(heads_a[k], heads_b[k]) for k in heads_a)
    assert all(torch.equal(enc_a[k], enc_b[k]) for k in enc_a)
    assert result.metrics["steps"] == 6
    assert list(load_bundle(result.bundle).settings.tasks["topic"].labels) == sorted(TAXONOMY)


def test_init_from_with_other_labels_gets_a_fresh_head(topic_run, tiny_base, tmp_path):
    labels = ("محلي", "رياضة", "اقتصاد", "ثقافة")
    data = tmp_path / "four"
    write_jsonl(data / "train.jsonl", topic_rows(40, seed=5, labels=labels))
    write_jsonl(data / "validation.jsonl", topic_rows(20, seed=6, labels=labels))
    result = run(
        tiny(tiny_base, data, tmp_path / "out", init_from=str(topic_run.bundle), learning_rate=0.0)
    )
    bundle = load_bundle(result.bundle)
    assert set(bundle.settings.tasks["topic"].labels) == set(labels)
    assert bundle.model.heads["topic"].out.weight.shape[0] == 4
    # The encoder still comes from the bundle it continued.
    _, enc_a = heads_and_encoder(topic_run.bundle)
    enc_b = bundle.model.encoder.state_dict()
    assert all(torch.equal(enc_a[k], enc_b[k]) for k in enc_a)


def test_a_stopped_run_resumes_from_its_last_checkpoint(
    topic_run, tiny_base, topic_data, tmp_path, monkeypatch, capsys
):
    out = tmp_path / "stopped"
    save = MultiTaskTrainer._save_checkpoint

    def save_then_stop(self, *args, **kwargs):  # a machine that stops after the first checkpoint
        save(self, *args, **kwargs)
        raise KeyboardInterrupt

    with monkeypatch.context() as mp:
        mp.setattr(MultiTaskTrainer, "_save_checkpoint", save_then_stop)
        with pytest.raises(KeyboardInterrupt):
            run(tiny(tiny_base, topic_data, out))
    assert (out / "checkpoints" / "checkpoint-3").is_dir()

    result = run(tiny(tiny_base, topic_data, out))
    assert "resuming from" in capsys.readouterr().out
    assert result.metrics["steps"] == 6
    # Same data order and restored random state: the weights of the run that was never stopped.
    heads_a, enc_a = heads_and_encoder(topic_run.bundle)
    heads_b, enc_b = heads_and_encoder(result.bundle)
    assert all(torch.allclose(heads_a[k], heads_b[k], atol=1e-5) for k in heads_a)
    assert all(torch.allclose(enc_a[k], enc_b[k], atol=1e-5) for k in enc_a)
    # A finished run leaves no checkpoints behind, so the same command trains afresh next time.
    assert not list((out / "checkpoints").glob("checkpoint-*"))


def test_checkpoints_of_another_run_are_not_resumed(tiny_base, topic_data, tmp_path):
    out = tmp_path / "other"
    (out / "checkpoints" / "checkpoint-3").mkdir(parents=True)
    with pytest.raises(ValueError, match="checkpoints of a run with other settings"):
        run(tiny(tiny_base, topic_data, out))


STANCE_CLAIMS = [
    (
        "الحكومة رفعت ميزانية التعليم",
        "أعلنت الحكومة زيادة ميزانية التعليم. وقال الوزير إن المدارس ستستفيد.",
        "agree",
    ),
    (
        "الحكومة خفضت ميزانية التعليم",
        "أعلنت الحكومة زيادة ميزانية التعليم. ونفى الوزير أي تخفيض.",
        "disagree",
    ),
    (
        "الفريق فاز بالكأس",
        "تحدث المحللون عن حظوظ الفريق في الكأس. وتختلف الآراء حول النتيجة.",
        "discuss",
    ),
    (
        "أسعار النفط ارتفعت",
        "افتتح المهرجان السينمائي دورته الجديدة. وعرض فيلم عن البحر.",
        "unrelated",
    ),
]


def stance_rows(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        claim, text, label = STANCE_CLAIMS[i % 4]
        extra = " ".join(rng.choice(COMMON) for _ in range(rng.randint(3, 8)))
        rows.append({"id": i, "claim": claim, "text": f"{text} {extra}.", "label": label})
    return rows


# A claim against one headline, in ANS's labels.
HEADLINES = [
    ("الحكومة رفعت ميزانية التعليم", "زيادة ميزانية التعليم هذا العام", "agree"),
    ("الحكومة خفضت ميزانية التعليم", "الحكومة تزيد ميزانية التعليم", "disagree"),
    ("الفريق خسر المباراة", "جماهير الفريق تحتفل في الشوارع", "other"),
]


def headline_rows(n: int) -> list[dict]:
    return [dict(zip(("claim", "text", "label"), HEADLINES[i % 3])) | {"id": i} for i in range(n)]


def test_stance_with_claims_and_class_weighting(tiny_base, tmp_path):
    data = tmp_path / "stance"
    write_jsonl(data / "train.jsonl", stance_rows(24, seed=1))
    write_jsonl(data / "validation.jsonl", stance_rows(12, seed=2))
    result = run(
        tiny(
            tiny_base,
            data,
            tmp_path / "out",
            task="stance",
            class_weighting=True,
            labels=",".join(STANCE_LABELS),
            max_length=48,
        )
    )
    bundle = load_bundle(result.bundle)
    assert bundle.tasks == ("stance",)
    assert bundle.settings.tasks["stance"].labels == STANCE_LABELS
    assert bundle.model.heads["stance"].out.weight.shape[0] == 4
    val = result.metrics["tasks"]["stance"]["validation"]
    assert {"macro_f1", "ece_before", "ece_after", "temperature"} <= set(val)
    assert set(val["per_class"]) == set(STANCE_LABELS)


def with_bad_label(folder: Path) -> Path:
    rows = topic_rows(40, seed=1)
    rows[4] = {**rows[4], "label": "سياسة"}  # line 5: not in the label set
    write_jsonl(folder / "train.jsonl", rows)
    write_jsonl(folder / "validation.jsonl", topic_rows(20, seed=2))
    return folder


def test_strict_mode_names_the_file_and_line_of_a_bad_record(tiny_base, tmp_path):
    data = with_bad_label(tmp_path / "bad")
    cfg = tiny(tiny_base, data, tmp_path / "out", labels=",".join(TAXONOMY))
    with pytest.raises(DataError) as caught:
        run(cfg)
    assert caught.value.line == 5
    assert caught.value.source.endswith("train.jsonl")
    message = str(caught.value)
    assert "train.jsonl line 5" in message and "label" in message
    assert not (tmp_path / "out" / "bundle").exists()


def test_skip_bad_sets_the_record_aside_and_trains(tiny_base, tmp_path):
    data = with_bad_label(tmp_path / "bad")
    out = tmp_path / "out"
    result = run(tiny(tiny_base, data, out, labels=",".join(TAXONOMY), skip_bad=True, max_steps=3))
    rejects = [json.loads(line) for line in (out / "rejects-train.jsonl").read_text().splitlines()]
    assert len(rejects) == 1
    assert rejects[0]["line"] == 5 and rejects[0]["id"] == "1-4"
    assert "label" in rejects[0]["reason"]
    assert not (out / "rejects-validation.jsonl").exists()
    assert load_bundle(result.bundle).settings.tasks["topic"].labels == TAXONOMY


def test_config_validation():
    with pytest.raises(ValueError, match="task"):
        FinetuneConfig(task="sentiment", data="x")
    with pytest.raises(ValueError, match="--data"):
        FinetuneConfig(task="topic")
    with pytest.raises(ValueError, match="--stride"):
        FinetuneConfig(data="x", max_length=32, stride=32)
    with pytest.raises(ValueError, match="--batch-size"):
        FinetuneConfig(data="x", batch_size=0)
    with pytest.raises(ValueError, match="--title-tokens must be within 0 and a quarter"):
        FinetuneConfig(task="summary", data="x", max_length=64, title_tokens=17)


def summary_rows(n: int, seed: int) -> list[dict]:
    """Articles whose reference is their first sentence
    (what a lead-biased standfirst looks like)."""
    from conftest import ARABIC_SENTENCES

    rng = random.Random(seed)
    rows = []
    for i in range(n):
        sentences = rng.sample(ARABIC_SENTENCES, 4)
        rows.append(
            {
                "id": f"s{seed}-{i}",
                "title": sentences[0][:30],
                "text": "\n".join(sentences),
                "summary": sentences[0],
            }
        )
    return rows


def test_several_tasks_train_one_shared_encoder(tiny_base, topic_data, tmp_path):
    stance = tmp_path / "stance"
    write_jsonl(stance / "train.jsonl", stance_rows(16, seed=1))
    write_jsonl(stance / "validation.jsonl", stance_rows(8, seed=2))
    headline = tmp_path / "headline"
    write_jsonl(headline / "train.jsonl", headline_rows(12))
    write_jsonl(headline / "validation.jsonl", headline_rows(6))
    summary = tmp_path / "summary"
    write_jsonl(summary / "train.jsonl", summary_rows(12, seed=1))
    write_jsonl(summary / "validation.jsonl", summary_rows(6, seed=2))
    out = tmp_path / "shared"
    # No early stopping: the step count shows how the tasks' batches were laid out.
    cfgs = [
        tiny(tiny_base, topic_data, out, max_steps=-1, epochs=1, early_stopping_patience=100),
        tiny(
            tiny_base,
            stance,
            out,
            task="stance",
            labels=",".join(STANCE_LABELS),
            class_weighting=True,
            max_length=48,
            max_steps=-1,
            epochs=2,
            batch_size=4,
        ),
        tiny(
            tiny_base,
            headline,
            out,
            task="stance_headline",
            labels=",".join(HEADLINE_STANCE_LABELS),
            max_length=32,
            max_steps=-1,
            epochs=1,
            batch_size=4,
        ),
        tiny(
            tiny_base,
            summary,
            out,
            task="summary",
            max_length=64,
            max_steps=-1,
            epochs=1,
            batch_size=4,
            title_tokens=8,
        ),
    ]
    result = run(cfgs)

    # Batches: topic 40 rows / 8 per batch x 1 epoch, stance 16 / 4 x 2, headline stance
    # 12 / 4 x 1, summary 12 / 4 x 1.
    assert result.metrics["steps"] == 5 + 8 + 3 + 3
    bundle = load_bundle(result.bundle)
    assert bundle.tasks == ("topic", "stance", "stance_headline", "summary")
    assert set(result.metrics["tasks"]) == set(bundle.tasks)
    assert bundle.settings.tasks["stance_headline"].labels == HEADLINE_STANCE_LABELS
    assert set(result.metrics["tasks"]["summary"]["validation"]) >= {
        "rouge1",
        "rouge2",
        "rougeL",
        "k",
    }
    # The lead prior that won on validation is what the bundle serves with.
    summary_val = result.metrics["tasks"]["summary"]["validation"]
    assert summary_val["rougeL"] == max(summary_val["rougeL_by_lead_prior"].values())
    assert result.metrics["tasks"]["stance"]["validation"]["per_class"].keys() == set(STANCE_LABELS)
    assert (
        bundle.settings.tasks["stance"].max_length == 48
        and bundle.settings.tasks["summary"].max_length == 64
    )
    assert bundle.settings.tasks["summary"].lead_prior == summary_val["lead_prior"]
    # The summary windows start with the title, in training as in the bundle that serves.
    assert bundle.settings.tasks["summary"].title_tokens == 8
    assert bundle.settings.tasks["topic"].title_tokens == 0
    # Fine-tuning switches on dropout (the base is pretrained without); serving runs in eval mode.
    assert bundle.model.encoder.config.hidden_dropout_prob == 0.1
    # One encoder serves all three heads.
    from akhbar.models.predict import Predictor

    predictor = Predictor(bundle)
    article = summary_rows(1, seed=9)[0]["text"]
    assert predictor.topic([article])[0].label in TAXONOMY
    against_article, against_headline = predictor.stance(
        ["الفريق فاز بالكأس"] * 2, [article, "الفريق يفوز بالكأس"]
    )
    assert against_article.label in STANCE_LABELS and against_article.label_set == "article"
    assert against_headline.label in HEADLINE_STANCE_LABELS
    assert against_headline.label_set == "headline"
    assert len(predictor.summary([article], k=1)[0].sentences) == 1


def test_add_fusion_fits_a_sentence_encoder_part_into_a_trained_bundle(tiny_base, tmp_path):
    from akhbar.training.add_fusion import add_fusion

    data = tmp_path / "stance"
    write_jsonl(data / "train.jsonl", stance_rows(24, seed=1))
    write_jsonl(data / "validation.jsonl", stance_rows(20, seed=2))  # 5 per class for 5-fold CV
    result = run(
        tiny(
            tiny_base,
            data,
            tmp_path / "out",
            task="stance",
            labels=",".join(STANCE_LABELS),
            max_length=48,
        )
    )
    config = tmp_path / "stance.yaml"
    config.write_text(f"data: {data}\nlabels: {','.join(STANCE_LABELS)}\nclass_weighting: true\n")

    report = add_fusion(result.bundle, "stance", "sentence_encoder", str(config))
    fusion = report["fusion"]
    assert fusion["kind"] == "sentence_encoder" and fusion["chosen"] in ("fused", "encoder")
    assert set(fusion) >= {"encoder", "sentence_encoder", "fused_cv"}
    kept = fusion["chosen"] == "fused"
    assert (result.bundle / "sentence_encoder_stance.safetensors").exists() == kept
    bundle = load_bundle(result.bundle)
    assert ("stance" in bundle.fusions) == kept
    assert (
        json.loads((result.bundle / "metrics.json").read_text())["tasks"]["stance"]["validation"][
            "fusion"
        ]
        == fusion
    )
    if kept:
        assert bundle.settings.tasks["stance"].temperature == 1.0


def test_fusion_kind_is_checked():
    with pytest.raises(ValueError, match="--fusion"):
        FinetuneConfig(task="summary", data="x", fusion="tfidf")
    with pytest.raises(ValueError, match="--fusion"):
        FinetuneConfig(task="topic", data="x", fusion="bm25")


def test_refit_on_shared_windows_keeps_topic_within_the_allowed_loss(
    tiny_base, topic_data, tmp_path
):
    from akhbar.models.predict import Predictor
    from akhbar.training.refit_shared_windows import refit_on_shared_windows

    summary = tmp_path / "summary"
    write_jsonl(summary / "train.jsonl", summary_rows(8, seed=1))
    write_jsonl(summary / "validation.jsonl", summary_rows(4, seed=2))
    out = tmp_path / "shared"
    result = run(
        [
            tiny(tiny_base, topic_data, out, max_steps=-1, epochs=1),
            tiny(
                tiny_base,
                summary,
                out,
                task="summary",
                max_length=64,
                max_steps=-1,
                epochs=1,
                batch_size=4,
            ),
        ]
    )
    config = tmp_path / "topic.yaml"
    config.write_text(f"data: {topic_data}\nlabels: {','.join(TAXONOMY)}\nfusion: tfidf\n")
    settings_before = (result.bundle / "akhbar.json").read_bytes()

    refused = refit_on_shared_windows(
        result.bundle, "topic", "summary", str(config), max_loss=-100.0
    )  # must gain 100 points
    assert refused["kept"] is False
    assert (result.bundle / "akhbar.json").read_bytes() == settings_before

    kept = refit_on_shared_windows(result.bundle, "topic", "summary", str(config), max_loss=100.0)
    assert kept["kept"] is True and kept["head"]["train_windows"] == 40
    assert {"macro_f1_own_windows", "macro_f1_shared_pass"} <= kept.keys()
    bundle = load_bundle(result.bundle)
    assert bundle.settings.tasks["topic"].reads == "summary"
    validation = json.loads((result.bundle / "metrics.json").read_text())["tasks"]["topic"][
        "validation"
    ]
    assert validation["shared_pass"] == kept
    assert ("topic" in bundle.fusions) == (validation["fusion"]["chosen"] == "fused")
    topics, scored = Predictor(bundle).topic_and_sentences(
        [r["text"] for r in topic_rows(3, seed=5)]
    )
    assert all(t.label in TAXONOMY for t in topics) and len(scored) == 3

    # A side model can still be added to a head that reads the summary's windows.
    from akhbar.training.add_fusion import add_fusion

    report = add_fusion(result.bundle, "topic", "tfidf", str(config))
    assert report["fusion"]["kind"] == "tfidf" and report["fusion"]["chosen"] in (
        "fused",
        "encoder",
    )
