"""Tests for akhbar.models.predict (topic, stance and summary scoring through one bundle),
``pick_sentences``, and the sentence windows summary scoring is built on."""

from __future__ import annotations

import copy
import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from akhbar.models.bundle import load_bundle, save_bundle
from akhbar.models.fusion import SentenceEncoderFusion
from akhbar.models.inputs import candidate_sentences
from akhbar.models.predict import Predictor, SummaryPrediction, pick_sentences
from akhbar.models.sentences import Sentence, split_sentences
from akhbar.models.tasks import HEADLINE_STANCE_LABELS, STANCE_LABELS, TOPIC_LABELS
from akhbar.models.windowing import encode_sentence_windows, pad_features

SHORT = "هطلت أمطار غزيرة على المدينة."
MEDIUM = (
    "أعلنت الحكومة خطة لبناء مدارس جديدة في القرى. "
    "وقال المتحدث باسمها إن العمل يبدأ في الربيع. "
    "ورحب المعلمون بالقرار وطالبوا بزيادة الرواتب."
)
LONG_SENTENCES = [
    "افتتحت البلدية حديقة عامة كبيرة وسط الحي القديم.",
    "وتضم الحديقة ملاعب للأطفال وممرات للمشي ومقاعد تحت الأشجار.",
    "وقال رئيس البلدية إن المشروع استغرق عامين من العمل المتواصل.",
    "وأضاف أن الحديقة تفتح أبوابها يوميا من الصباح حتى منتصف الليل.",
    "وعبر السكان عن سعادتهم بالمكان الجديد الذي طال انتظاره.",
    "ويأمل الأهالي أن تحافظ البلدية على نظافة الحديقة وسلامة زوارها.",
    "وتخطط البلدية لزراعة ألف شجرة إضافية في الشوارع المجاورة.",
    "كما تدرس إنشاء مكتبة صغيرة ومقهى عند المدخل الرئيسي.",
]
LONG = " ".join(LONG_SENTENCES * 5)  # 40 sentences: far beyond 4 windows of 64 tokens
BOILERPLATE_ARTICLE = "\n".join(
    [
        "قال الوزير إن مشروع الطريق السريع سيكتمل قبل نهاية العام.",
        "اقرأ أيضاً: الحكومة تعلن خطة جديدة للنقل العام",
        "وأضاف أن تكلفة المشروع بلغت مليار دينار.",
        "اقرأ أيضاً",
        "عنوان خبر آخر عن حالة الطقس",
        "تابعونا على تويتر",
        "وختم بالقول إن العمل مستمر ليلا ونهارا.",
    ]
)
BOILERPLATE_CONTENT = [
    "قال الوزير إن مشروع الطريق السريع سيكتمل قبل نهاية العام.",
    "وأضاف أن تكلفة المشروع بلغت مليار دينار.",
    "وختم بالقول إن العمل مستمر ليلا ونهارا.",
]
NO_PUNCTUATION = "الرياح قوية على الساحل والبحر هائج والصيادون باقون في بيوتهم منذ يومين"
CLAIM = "الحكومة سترفع رواتب المعلمين"


@pytest.fixture(scope="module")
def bundle(tiny_bundle: Path):
    return load_bundle(tiny_bundle)


@pytest.fixture(scope="module")
def predictor(bundle) -> Predictor:
    return Predictor(bundle)


def assert_slices(sentences, text: str) -> None:
    for s in sentences:
        assert isinstance(s, Sentence)
        assert s.text == text[s.start : s.end]


# --- topic ---------------------------------------------------------------------------------


def test_topic_one_distribution_per_article(predictor: Predictor) -> None:
    texts = [SHORT, MEDIUM, LONG]
    preds = predictor.topic(texts)
    assert len(preds) == len(texts)
    for p in preds:
        assert list(p.scores) == list(TOPIC_LABELS)
        assert sum(p.scores.values()) == pytest.approx(1.0, abs=1e-6)
        assert all(0.0 <= v <= 1.0 for v in p.scores.values())
        assert p.label == max(p.scores, key=p.scores.get)
        # The bundle's threshold is the default 0.5.
        assert p.low_confidence == (p.scores[p.label] < 0.5)


def test_empty_inputs(predictor: Predictor) -> None:
    assert predictor.topic([]) == []
    assert predictor.stance([], []) == []
    assert predictor.summary([], k=2) == []


def test_long_article_is_truncated(predictor: Predictor) -> None:
    short, long = predictor.topic([MEDIUM, LONG])
    assert short.truncated is False
    assert long.truncated is True


def with_threshold(tiny_bundle: Path, tmp_path: Path, threshold: float):
    copy = tmp_path / f"bundle-{threshold}"
    shutil.copytree(tiny_bundle, copy)
    settings_file = copy / "akhbar.json"
    settings = json.loads(settings_file.read_text(encoding="utf-8"))
    settings["tasks"]["topic"]["low_confidence_threshold"] = threshold
    settings_file.write_text(json.dumps(settings, ensure_ascii=False), encoding="utf-8")
    return Predictor(load_bundle(copy))


@pytest.mark.parametrize(("threshold", "expected"), [(0.99, True), (0.0, False)])
def test_low_confidence_follows_bundle_threshold(
    tiny_bundle: Path, tmp_path: Path, threshold: float, expected: bool
) -> None:
    preds = with_threshold(tiny_bundle, tmp_path, threshold).topic([SHORT, MEDIUM, LONG])
    # Six labels and random weights: no top probability reaches 0.99.
    assert all(p.scores[p.label] < 0.99 for p in preds)
    assert [p.low_confidence for p in preds] == [expected] * 3


def test_batches_keep_input_order(bundle) -> None:
    # Lengths deliberately out of order, so the length-sorted batches permute them.
    texts = [MEDIUM, SHORT, LONG, "نتيجة المباراة.", " ".join(LONG_SENTENCES[:4]), NO_PUNCTUATION]
    batched = Predictor(bundle, batch_size=2)
    together = batched.topic(texts)
    alone = [batched.topic([t])[0] for t in texts]
    for a, b in zip(together, alone):
        assert a.label == b.label
        assert a.truncated == b.truncated
        np.testing.assert_allclose(list(a.scores.values()), list(b.scores.values()), atol=1e-5)
    # Different texts really get different outputs (so the comparison above means something).
    assert len({round(p.scores[TOPIC_LABELS[0]], 6) for p in together}) > 1


def test_summary_scores_keep_input_order(bundle) -> None:
    texts = [LONG, SHORT, MEDIUM, BOILERPLATE_ARTICLE]
    batched = Predictor(bundle, batch_size=3)
    together = batched.sentence_scores(texts)
    for text, (sentences, scores, truncated) in zip(texts, together):
        s1, sc1, t1 = batched.sentence_scores([text])[0]
        assert sentences == s1 and truncated == t1
        np.testing.assert_allclose(scores, sc1, atol=1e-5)


# --- stance --------------------------------------------------------------------------------


def test_stance_one_result_per_claim_with_exact_evidence(predictor: Predictor) -> None:
    claims = [CLAIM, "البلدية افتتحت حديقة جديدة", "الوزير أعلن موعد انتهاء الطريق"]
    texts = [MEDIUM, LONG, BOILERPLATE_ARTICLE]
    preds = predictor.stance(claims, texts)
    assert len(preds) == 3
    for p, claim, text in zip(preds, claims, texts):
        assert p.claim == claim
        assert list(p.scores) == list(STANCE_LABELS)
        assert sum(p.scores.values()) == pytest.approx(1.0, abs=1e-6)
        assert p.label == max(p.scores, key=p.scores.get)
        assert 1 <= len(p.evidence) <= predictor.bundle.settings.tasks["stance"].evidence_sentences
        assert_slices(p.evidence, text)
        starts = [s.start for s in p.evidence]
        assert starts == sorted(starts)  # article order
    # Boilerplate is never evidence.
    assert all(s.text in BOILERPLATE_CONTENT for s in preds[2].evidence)
    # The claim's words pull the matching sentence in.
    assert any("افتتحت البلدية حديقة" in s.text for s in preds[1].evidence)


def test_a_side_model_that_answers_alone_spares_the_encoder_pass(
    tiny_bundle: Path, monkeypatch
) -> None:
    bundle = load_bundle(tiny_bundle)
    n = len(STANCE_LABELS)
    side = SentenceEncoderFusion(
        np.random.default_rng(0).normal(size=(n, 2048)).astype(np.float32),
        np.zeros(n, np.float32),
        np.hstack([np.zeros((n, n)), np.eye(n)]).astype(np.float32),  # encoder columns zero
        np.zeros(n, np.float32),
    )
    bundle.fusions["stance"] = side
    predictor = Predictor(bundle)
    passes: list[tuple[str, ...]] = []
    forward = predictor._forward

    def counted(features, heads, **kwargs):
        passes.append(tuple(heads))
        return forward(features, heads, **kwargs)

    monkeypatch.setattr(predictor, "_forward", counted)
    claims, texts = [CLAIM, "البلدية افتتحت حديقة جديدة"], [MEDIUM, LONG]
    alone = predictor.stance(claims, texts)
    assert passes == []
    evidence = ["\n".join(s.text for s in p.evidence) for p in alone]
    temperature = bundle.settings.tasks["stance"].temperature
    expected = torch.softmax(torch.from_numpy(side.scores(evidence, claims)) / temperature, 1)
    for p, row in zip(alone, expected.numpy()):
        assert list(p.scores.values()) == pytest.approx(row.tolist(), abs=1e-5)
    # A stacker that reads the encoder's logits still gets them.
    side.stack_weight = np.hstack([np.eye(n), np.eye(n)]).astype(np.float32)
    predictor.stance(claims, texts)
    assert passes == [("stance",)]


# --- summary -------------------------------------------------------------------------------


def test_each_pair_goes_to_its_stance_head_and_says_which_label_set(
    predictor: Predictor, tiny_bundle: Path, tmp_path: Path
) -> None:
    claims = [CLAIM, CLAIM, CLAIM]
    texts = [MEDIUM, SHORT, LONG]
    preds = predictor.stance(claims, texts)
    assert [p.label_set for p in preds] == ["article", "headline", "article"]
    assert list(preds[1].scores) == list(HEADLINE_STANCE_LABELS)
    assert [s.text for s in preds[1].evidence] == [SHORT]
    for alone, p in zip(predictor.stance(claims[::2], texts[::2]), preds[::2]):
        assert alone.scores == pytest.approx(p.scores, abs=1e-5)  # routing never mixes heads
    # A bundle without a headline head (any older one) answers every pair with the article head.
    older = load_bundle(tiny_bundle)
    del older.model.heads["stance_headline"], older.settings.tasks["stance_headline"]
    save_bundle(tmp_path / "older", older.model, older.tokenizer, older.settings)
    only_article = Predictor(load_bundle(tmp_path / "older")).stance(claims, texts)
    assert [p.label_set for p in only_article] == ["article"] * 3
    assert list(only_article[1].scores) == list(STANCE_LABELS)


def test_summary_k2_in_article_order_with_exact_offsets(predictor: Predictor) -> None:
    texts = [MEDIUM, " ".join(LONG_SENTENCES)]
    for text, pred in zip(texts, predictor.summary(texts, k=2)):
        assert isinstance(pred, SummaryPrediction)
        assert len(pred.sentences) == len(pred.indices) == 2
        assert list(pred.indices) == sorted(pred.indices)
        assert_slices(pred.sentences, text)
        candidates = candidate_sentences(text)
        assert [candidates[i] for i in pred.indices] == list(pred.sentences)


def test_summary_k_beyond_sentence_count_returns_all(predictor: Predictor) -> None:
    pred = predictor.summary([MEDIUM], k=10)[0]
    assert [s.text for s in pred.sentences] == [s.text for s in split_sentences(MEDIUM)]
    assert pred.indices == (0, 1, 2)
    assert pred.truncated is False


def test_summary_of_text_without_punctuation(predictor: Predictor) -> None:
    long_run = " ".join([NO_PUNCTUATION] * 12)  # > 400 characters: cut at white space
    one, many = predictor.summary([NO_PUNCTUATION, long_run], k=2)
    assert [s.text for s in one.sentences] == [NO_PUNCTUATION]
    assert len(many.sentences) == 2
    assert_slices(many.sentences, long_run)


def test_summary_max_words(predictor: Predictor) -> None:
    text = " ".join(LONG_SENTENCES)
    sentences, scores, _ = predictor.sentence_scores([text])[0]
    best = int(np.argmax(scores))
    words = [len(s.text.split()) for s in sentences]
    # A limit below every sentence still keeps the best one.
    tight = predictor.summary([text], k=3, max_words=1)[0]
    assert tight.indices == (best,)
    # A limit that fits exactly the two best: never exceeded, the third no longer fits.
    top = np.argsort(-scores, kind="stable")[:3].tolist()
    limit = words[top[0]] + words[top[1]]
    loose = predictor.summary([text], k=3, max_words=limit)[0]
    assert loose.indices == tuple(sorted(top[:2]))
    assert sum(words[i] for i in loose.indices) <= limit
    # No limit: plain top-3.
    free = predictor.summary([text], k=3)[0]
    assert free.indices == tuple(sorted(top))


def test_summary_never_picks_boilerplate(predictor: Predictor) -> None:
    pred = predictor.summary([BOILERPLATE_ARTICLE], k=10)[0]
    assert [s.text for s in pred.sentences] == BOILERPLATE_CONTENT
    assert_slices(pred.sentences, BOILERPLATE_ARTICLE)


def test_summary_of_long_article_is_truncated(predictor: Predictor) -> None:
    sentences, scores, truncated = predictor.sentence_scores([LONG])[0]
    assert truncated is True
    assert np.isinf(scores).any() and np.isfinite(scores[0])
    pred = predictor.summary([LONG], k=3)[0]
    assert pred.truncated is True
    assert all(np.isfinite(scores[i]) for i in pred.indices)  # only sentences the model saw


# --- pick_sentences ------------------------------------------------------------------------

HEAT = (
    "ارتفعت درجات الحرارة اليوم. "
    "أغلقت المدارس أبوابها مبكرا بسبب الحر الشديد. "
    "دعت السلطات المواطنين إلى البقاء في منازلهم. "
    "تتوقع الأرصاد انخفاض الحرارة غدا."
)


@pytest.fixture(scope="module")
def heat() -> list[Sentence]:
    sentences = split_sentences(HEAT)
    assert [len(s.text.split()) for s in sentences] == [4, 7, 7, 5]
    return sentences


@pytest.mark.parametrize(
    ("scores", "k", "max_words", "expected"),
    [
        ([0.1, 0.9, 0.5, 0.7], 2, None, (1, 3)),  # top-2, returned in article order
        ([0.1, 0.9, 0.5, 0.7], 1, None, (1,)),
        ([0.1, 0.9, 0.5, 0.7], 10, None, (0, 1, 2, 3)),  # k beyond the count: all
        ([0.5, 0.5, 0.5, 0.5], 2, None, (0, 1)),  # ties: earlier sentence first
        ([-np.inf, 0.2, -np.inf, 0.1], 2, None, (1, 3)),  # unscored sentences rank last
        ([0.1, 0.9, 0.5, 0.7], 3, 12, (1, 3)),  # 7 + 5 fit; 7 more would not
        ([0.1, 0.9, 0.5, 0.7], 3, 3, (1,)),  # best kept even over the limit
        ([0.1, 0.9, 0.5, 0.7], 4, 11, (0, 1)),  # skips 3 and 2, 4 words still fit
    ],
)
def test_pick_sentences(heat, scores, k, max_words, expected) -> None:
    pred = pick_sentences(heat, np.array(scores), k, max_words)
    assert pred.indices == expected
    assert pred.sentences == tuple(heat[i] for i in expected)
    assert pred.truncated is False


def test_pick_sentences_passes_truncated_and_handles_empty(heat) -> None:
    assert pick_sentences(heat, np.zeros(4), 2, truncated=True).truncated is True
    empty = pick_sentences([], np.zeros(0), 3)
    assert empty.sentences == () and empty.indices == ()


# --- sentence windows ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def tokenizer(bundle):
    return bundle.tokenizer


def body(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def local_sentences(feature: dict) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for token, sid in zip(feature["input_ids"], feature["sentence_ids"]):
        if sid >= 0:
            out.setdefault(sid, []).append(token)
    return out


def test_sentence_windows_structure(tokenizer) -> None:
    max_length = 100  # sentences here are 29-41 tokens: two fit in a window, never three
    docs = [LONG_SENTENCES[:6], [SHORT]]
    windows = encode_sentence_windows(tokenizer, docs, max_length, max_windows=10)
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    assert len(windows) == len(windows.sentence_index) == len(windows.doc_index)
    assert windows.doc_index.dtype == np.int64
    assert windows.dropped == [[], []]
    assert windows.doc_index.tolist()[-1] == 1 and windows.doc_index.tolist().count(0) >= 2
    for feature, d, index in zip(windows.features, windows.doc_index, windows.sentence_index):
        ids, sids = feature["input_ids"], feature["sentence_ids"]
        assert len(ids) <= max_length
        assert len(sids) == len(feature["attention_mask"]) == len(ids)
        assert feature["attention_mask"] == [1] * len(ids)
        assert ids[0] == cls and ids[-1] == sep
        for token, sid in zip(ids, sids):
            assert (sid == -1) == (token in (cls, sep))
        # Local ids run 0, 1, ... and each sentence's tokens are its own, each closed by [SEP].
        pieces = local_sentences(feature)
        assert list(pieces) == list(range(len(index)))
        for j, i in enumerate(index):
            assert pieces[j] == body(tokenizer, docs[d][i])
    # Every sentence of the first document is in exactly one window, in order.
    assert [
        i for w, d in zip(windows.sentence_index, windows.doc_index) if d == 0 for i in w
    ] == list(range(6))


def test_sentence_windows_start_with_the_title_where_asked(tokenizer, bundle) -> None:
    title = "الحكومة تعلن خطة جديدة للنقل العام في المدن الكبرى"
    docs = [LONG_SENTENCES[:6], [SHORT], [SHORT]]
    titles = [title, None, ""]
    plain = encode_sentence_windows(tokenizer, docs, 100, max_windows=10)
    untitled = encode_sentence_windows(tokenizer, docs, 100, 10, titles=titles)  # 0 tokens
    assert untitled.features == plain.features and untitled.sentence_index == plain.sentence_index
    titled = encode_sentence_windows(tokenizer, docs, 100, 10, titles=titles, title_tokens=8)
    prefix = [tokenizer.cls_token_id, *body(tokenizer, title)[:8], tokenizer.sep_token_id]
    for feature, d in zip(titled.features, titled.doc_index):
        ids, sids = feature["input_ids"], feature["sentence_ids"]
        assert len(ids) <= 100
        if d == 0:  # every window of the titled document starts with the title
            assert ids[: len(prefix)] == prefix and sids[: len(prefix)] == [-1] * len(prefix)

    def untitled_docs(windows):  # a missing or empty title leaves the windows as they were
        return [f for f, d in zip(windows.features, windows.doc_index) if d > 0]

    assert untitled_docs(titled) == untitled_docs(plain)
    # The sentences behind the prefix are the same, each marked as before.
    for feature, d, index in zip(titled.features, titled.doc_index, titled.sentence_index):
        pieces = local_sentences(feature)
        assert [pieces[j] for j in range(len(index))] == [
            body(tokenizer, docs[d][i]) for i in index
        ]
    with pytest.raises(ValueError, match="2 titles for 3 documents"):
        encode_sentence_windows(tokenizer, docs, 100, 10, titles=titles[:2], title_tokens=8)

    # A summary head reading a title scores the same sentences differently, and the pass that
    # serves topic and summary reads the title too.
    titled_bundle = copy.deepcopy(bundle)
    titled_bundle.settings.tasks["summary"] = replace(
        bundle.settings.tasks["summary"], title_tokens=8
    )
    reader = Predictor(titled_bundle)
    [(sentences, with_title, _)] = reader.sentence_scores([MEDIUM], titles=[title])
    [(same, without, _)] = reader.sentence_scores([MEDIUM])
    assert sentences == same and not np.allclose(with_title, without)


def test_sentence_windows_drop_beyond_max_windows(tokenizer) -> None:
    docs = [LONG_SENTENCES, LONG_SENTENCES[:1]]
    full = encode_sentence_windows(tokenizer, docs, 40, max_windows=50)
    n_first = int((full.doc_index == 0).sum())
    assert n_first > 2
    capped = encode_sentence_windows(tokenizer, docs, 40, max_windows=2)
    assert capped.doc_index.tolist() == [0, 0, 1]
    kept = capped.sentence_index[0] + capped.sentence_index[1]
    assert kept == full.sentence_index[0] + full.sentence_index[1]
    assert capped.dropped[0] == list(range(len(kept), len(LONG_SENTENCES)))
    assert capped.dropped[1] == []


def test_sentence_windows_cut_long_and_empty_sentences(tokenizer) -> None:
    long_sentence = " ".join(LONG_SENTENCES)
    assert len(body(tokenizer, long_sentence)) > 64
    windows = encode_sentence_windows(
        tokenizer, [[long_sentence, ""]], 32, max_windows=5, max_sentence_tokens=64
    )
    first = windows.features[0]
    assert len(first["input_ids"]) == 32  # cut to fit one window exactly
    assert local_sentences(first)[0] == body(tokenizer, long_sentence)[:30]
    # An empty sentence still gets a slot (one unknown token), so its index stays aligned.
    second = windows.features[1]
    assert second["input_ids"] == [
        tokenizer.cls_token_id,
        tokenizer.unk_token_id,
        tokenizer.sep_token_id,
    ]
    assert windows.sentence_index == [[0], [1]]
    short_cap = encode_sentence_windows(
        tokenizer, [[long_sentence]], 200, max_windows=1, max_sentence_tokens=10
    )
    assert local_sentences(short_cap.features[0])[0] == body(tokenizer, long_sentence)[:10]


def test_pad_features_pads_every_key(tokenizer) -> None:
    windows = encode_sentence_windows(tokenizer, [[SHORT], LONG_SENTENCES[:3]], 128, max_windows=2)
    assert windows.doc_index.tolist() == [0, 1]
    features = [
        {**f, "labels": [1] * len(idx)} for f, idx in zip(windows.features, windows.sentence_index)
    ]
    batch = pad_features(features, tokenizer.pad_token_id)
    width = max(len(f["input_ids"]) for f in features)
    assert set(batch) == {"input_ids", "attention_mask", "sentence_ids", "labels"}
    assert batch["input_ids"].shape == (2, width)
    short = len(features[0]["input_ids"])
    assert short < width
    assert batch["input_ids"][0, short:].tolist() == [tokenizer.pad_token_id] * (width - short)
    assert batch["attention_mask"][0].tolist() == [1] * short + [0] * (width - short)
    assert batch["sentence_ids"][0, short:].tolist() == [-1] * (width - short)
    assert batch["labels"].tolist() == [[1, -100, -100], [1, 1, 1]]
    for key in ("input_ids", "attention_mask", "sentence_ids"):
        assert batch[key][1].tolist() == features[1][key]
    # Scalar features (sequence-task labels) become a plain tensor.
    scalar = pad_features(
        [{"input_ids": [1, 2, 3], "labels": 2}, {"input_ids": [1], "labels": 0}], 0
    )
    assert scalar["labels"].tolist() == [2, 0]
    assert scalar["input_ids"].dtype == torch.int64
    assert scalar["input_ids"].tolist() == [[1, 2, 3], [1, 0, 0]]
    # Inference rounds the width up (token keys only), never past the encoder's positions.
    rounded = pad_features(features, tokenizer.pad_token_id, multiple_of=32, max_width=512)
    assert rounded["input_ids"].shape == (2, -(-width // 32) * 32)
    assert rounded["sentence_ids"].shape == rounded["attention_mask"].shape
    assert rounded["labels"].tolist() == batch["labels"].tolist()
    assert rounded["attention_mask"].sum() == batch["attention_mask"].sum()
    capped = pad_features([{"input_ids": [1] * 130}], 0, multiple_of=32, max_width=140)
    assert capped["input_ids"].shape == (1, 140)


def test_lead_prior_moves_the_ranking_towards_lead_k():
    from akhbar.models.predict import with_lead_prior

    scores = np.array([0.0, 3.0, 1.0, -np.inf])
    assert np.array_equal(with_lead_prior(scores, 0.0), scores)
    shifted = with_lead_prior(scores, 4.0)
    assert (
        np.allclose(shifted[:3], [4.0, 5.0, 1 + 4 / 3]) and shifted[3] == -np.inf
    )  # unscored stays out
    # A large prior ranks sentences in article order whatever the head said.
    assert list(np.argsort(-with_lead_prior(scores, 1e4))[:3]) == [0, 1, 2]


# ---------------------------------------------------------------------------------------
# Precision: bf16 and int8 compute what fp32 computes, nearly; the bundle stays fp32


@pytest.mark.parametrize("precision", ["bf16", "int8", "onnx-int8"])
def test_lower_precisions_score_like_fp32_and_leave_the_bundle_alone(
    bundle, predictor, precision, tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("AKHBAR_CACHE", str(tmp_path))  # onnx-int8 caches its graph here
    fast = Predictor(bundle, precision=precision)
    assert fast.precision == precision
    texts, titles = [SHORT, MEDIUM, LONG], ["عنوان", None, None]
    exact, rough = predictor.topic(texts, titles), fast.topic(texts, titles)
    for e, r in zip(exact, rough):
        assert set(r.scores) == set(e.scores)
        assert max(abs(r.scores[k] - e.scores[k]) for k in e.scores) < 0.05
    # Stance: probabilities stay close, and the label is fp32's best up to that drift (the
    # tiny test model's labels may nearly tie, and int8 kernels differ between CPUs).
    ((exact_stance,), (rough_stance,)) = (p.stance([CLAIM], [MEDIUM]) for p in (predictor, fast))
    shift = max(abs(rough_stance.scores[k] - exact_stance.scores[k]) for k in exact_stance.scores)
    assert shift < 0.05
    best = max(exact_stance.scores.values())
    assert exact_stance.scores[rough_stance.label] >= best - 2 * shift
    # Sentence scores stay close; LONG repeats its sentences, so near-ties may swap places,
    # but every pick must be a top-3 sentence under fp32 up to that tolerance.
    ((_, exact_scores, _),) = predictor.sentence_scores([LONG])
    ((_, rough_scores, _),) = fast.sentence_scores([LONG])
    scored = np.isfinite(exact_scores)
    assert np.array_equal(scored, np.isfinite(rough_scores))
    drift = np.abs(rough_scores[scored] - exact_scores[scored]).max()
    assert drift < 0.05
    third_best = np.sort(exact_scores[scored])[-3]
    picked = fast.summary([LONG], k=3)[0].indices
    assert len(picked) == 3 and all(exact_scores[i] >= third_best - 2 * drift for i in picked)
    # int8 quantises a copy: the bundle's own model (shared with other predictors) stays fp32
    assert all(
        isinstance(m, torch.nn.Linear) and m.weight.dtype == torch.float32
        for m in bundle.model.modules()
        if type(m).__name__ == "Linear"
    )


@pytest.mark.parametrize("precision", ["int8", "onnx-int8"])
def test_an_int8_answer_does_not_depend_on_the_articles_scored_beside_it(
    bundle, precision, tmp_path, monkeypatch
) -> None:
    """int8 scales a pass's activations by its largest value, so windows get a pass each: an
    article scores the same alone as in a batch with longer ones."""
    monkeypatch.setenv("AKHBAR_CACHE", str(tmp_path))
    fast = Predictor(bundle, batch_size=8, precision=precision)
    [alone] = fast.topic([MEDIUM])
    beside = fast.topic([LONG, MEDIUM, SHORT])[1]
    assert alone.scores == beside.scores
    ((_, alone_scores, _),) = fast.sentence_scores([MEDIUM])
    beside_scores = fast.sentence_scores([LONG, MEDIUM])[1][1]
    assert np.array_equal(alone_scores, beside_scores)


def test_the_onnx_graph_is_built_once_and_reused(bundle, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("AKHBAR_CACHE", str(tmp_path))
    first = Predictor(bundle, precision="onnx-int8").ort_encoder.path
    assert first.is_file() and first.parent.parent == tmp_path
    built = first.stat().st_mtime_ns
    assert Predictor(bundle, precision="onnx-int8").ort_encoder.path == first
    assert first.stat().st_mtime_ns == built  # loaded, not exported again
    assert [p.name for p in first.parent.iterdir()] == [first.name]  # no partial file left


def test_auto_precision_follows_the_cpu_and_the_predictor_takes_only_resolved_ones(
    bundle, monkeypatch
) -> None:
    from akhbar.models import precision

    for flags, expected in (
        ({"avx2", "avx512_bf16"}, "int8"),
        ({"avx512_bf16"}, "bf16"),
        ({"amx_bf16"}, "bf16"),
        ({"sse4_2"}, "fp32"),
        (set(), "fp32"),
    ):
        monkeypatch.setattr(precision, "_cpu_flags", lambda flags=flags: flags)
        assert precision.resolve_precision("auto") == expected, flags
    assert precision.resolve_precision("int8") == "int8"
    for unresolved in ("auto", "fp16"):
        with pytest.raises(
            ValueError, match=f"precision must be one of fp32, .*, onnx-int8 .*got '{unresolved}'"
        ):
            Predictor(bundle, precision=unresolved)


# ---------------------------------------------------------------------------------------
# A topic head that reads the summary windows: one encoder pass serves both


def test_topic_reading_the_summary_windows_shares_one_pass(
    tiny_bundle: Path, tmp_path: Path, monkeypatch
) -> None:
    copy = tmp_path / "shared-pass"
    shutil.copytree(tiny_bundle, copy)
    settings = json.loads((copy / "akhbar.json").read_text(encoding="utf-8"))
    settings["tasks"]["topic"]["reads"] = "summary"
    (copy / "akhbar.json").write_text(json.dumps(settings, ensure_ascii=False), encoding="utf-8")
    shared, separate = Predictor(load_bundle(copy)), Predictor(load_bundle(tiny_bundle))
    passes: list[tuple[str, ...]] = []
    original = Predictor._forward

    def counted(self, features, heads, pooled=False):
        passes.append(tuple(heads))
        return original(self, features, heads, pooled)

    monkeypatch.setattr(Predictor, "_forward", counted)
    texts, titles = [MEDIUM, LONG, BOILERPLATE_ARTICLE], ["عنوان", None, None]
    topics, scored = shared.topic_and_sentences(texts, titles)
    assert passes == [("summary", "topic")]
    assert [t.label for t in topics] == [t.label for t in shared.topic(texts, titles)]
    assert [t.truncated for t in topics] == [
        False,
        True,
        False,
    ]  # LONG drops sentences beyond 4 windows
    for (sentences, scores, cut), (sentences2, scores2, cut2) in zip(
        scored, separate.sentence_scores(texts)
    ):
        assert sentences == sentences2 and cut == cut2
        np.testing.assert_allclose(scores, scores2, rtol=1e-5, atol=1e-5)
    passes.clear()
    separate.topic_and_sentences(texts, titles)
    assert passes == [("topic",), ("summary",)]  # a topic head on its own windows: two passes
    with pytest.raises(ValueError, match="reads the summary windows"):
        shared.encoder_logits("topic", texts)
