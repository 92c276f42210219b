"""The pretraining corpus keeps every held-out text out, by normalised hash.

A fake data root in tmp_path mirrors the real layout (gzip-compressed JSON Lines), with
planted leaks: a validation article re-published in the unlabelled news with other
diacritics and white space, an EASC text and an EASC summary inside a train split, and
exact duplicates inside the corpus.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from akhbar.models.normalize import normalize
from akhbar.training.corpus import (
    UNLABELLED,
    CorpusStats,
    build_corpus,
    corpus_texts,
    held_out_hashes,
    read_corpus,
    text_hash,
)

# Texts written for this test; each is distinct after normalisation.
N1_TITLE = "افتتاح طريق سريع جديد"
N1 = "افتتحت البلدية طريقا سريعا يربط الأحياء الشمالية بوسط المدينة."
N2_TITLE = "أمطار غزيرة على الساحل"
N3_TITLE = "المعرض الزراعي يستقبل الزوار"
N4 = "استقبل المعرض الزراعي آلاف الزوار في يومه الأول."
V1_TITLE = "البنك المركزي يثبت الفائدة"
V1 = "قرر البنك المركزي الإبقاء على سعر الفائدة دون تغيير للشهر الثالث."
# V1 as another site re-published it: diacritics, tatweel, doubled and odd white space.
V1_VARIANT = "  قَرَّرَ البنـــك المركزيُّ   الإبقاءَ على سعر\nالفائدة دون تغييرٍ للشهر الثالث.\t"
V2_TITLE = "فوز المنتخب في التصفيات"
V2 = "فاز المنتخب الوطني على ضيفه بثلاثة أهداف في التصفيات القارية."
T1_TITLE = "مهرجان للمسرح في الصيف"
T1 = "تستضيف المدينة مهرجانا للمسرح يشارك فيه عشرون فرقة عربية."
E1_TITLE = "تاريخ الخط العربي"
E1 = "يعد الخط العربي من أقدم الفنون التي اهتم بها العرب عبر العصور."
ES1 = "الخط العربي فن قديم."
ES2 = "اهتم العرب بالخط منذ القدم."
E2 = "تزرع النخيل في الواحات منذ آلاف السنين وتعد التمور غذاء رئيسيا."
ES3 = "النخيل شجرة الواحات."
E3 = "تعتمد الزراعة في الوادي على مياه النهر والأمطار الموسمية."
ES4 = "الزراعة تعتمد على النهر."
TR1_TITLE = "مقال عن الفنون"
TR2_TITLE = "الشركة تطلق خدمة دفع جديدة"
TR2 = "أطلقت الشركة خدمة دفع إلكتروني جديدة للمتاجر الصغيرة."
B1_TITLE = "انخفاض درجات الحرارة"
B1_SUMMARY = "توقعات بطقس بارد نهاية الأسبوع."
B1 = "توقعت هيئة الأرصاد انخفاض درجات الحرارة في معظم المناطق نهاية الأسبوع."


def write_gz(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


@pytest.fixture
def data(tmp_path) -> Path:
    root = tmp_path / "data"
    write_gz(
        root / UNLABELLED,
        [
            {"id": 1, "title": N1_TITLE, "text": N1},
            {"id": 2, "title": N2_TITLE, "text": V1_VARIANT},  # validation leak → removed
            {"id": 3, "title": N3_TITLE, "text": N1},  # exact duplicate → dropped
            {"id": 4, "title": "", "text": N4},  # empty title is no text at all
        ],
    )
    topic = root / "topic" / "ant_v2.1_multisource"
    write_gz(
        topic / "train.jsonl.gz",
        [
            {
                "id": "tr1",
                "title": TR1_TITLE,
                "text": E1,
                "label": "culture",
            },  # EASC text → removed
            {"id": "tr2", "title": TR2_TITLE, "text": TR2, "label": "economy"},
            {
                "id": "tr3",
                "title": ES2,
                "text": N4,
                "label": "culture",
            },  # EASC summary → removed; N4 dup
        ],
    )
    write_gz(
        topic / "validation.jsonl.gz",
        [
            {"id": "v1", "title": V1_TITLE, "text": V1, "label": "economy"},
            {"id": "v2", "title": V2_TITLE, "text": V2, "label": "sport"},
        ],
    )
    write_gz(
        topic / "test.jsonl.gz", [{"id": "t1", "title": T1_TITLE, "text": T1, "label": "culture"}]
    )
    easc = root / "summary" / "easc"
    write_gz(
        easc / "train.jsonl.gz",
        [{"id": "e1", "title": E1_TITLE, "text": E1, "summaries": [ES1, ES2]}],
    )
    write_gz(easc / "validation.jsonl.gz", [{"id": "e2", "text": E2, "summaries": [ES3]}])
    write_gz(easc / "test.jsonl.gz", [{"id": "e3", "text": E3, "summaries": [ES4]}])
    write_gz(
        root / "summary" / "ant_bbc" / "train.jsonl.gz",
        [{"id": "b1", "title": B1_TITLE, "summary": B1_SUMMARY, "text": B1}],
    )
    return root


HELD_OUT = [V1_TITLE, V1, V2_TITLE, V2, T1_TITLE, T1, E1_TITLE, E1, ES1, ES2, E2, ES3, E3, ES4]
# Corpus order: unlabelled news (title, text), then each train split in TRAIN_SPLITS order.
EXPECTED_KEPT = [
    N1_TITLE,
    N1,
    N2_TITLE,
    N3_TITLE,
    N4,
    TR1_TITLE,
    TR2_TITLE,
    TR2,
    B1_TITLE,
    B1_SUMMARY,
    B1,
]
NEVER = [V1, V1_VARIANT, E1, ES2]


def test_variant_has_the_same_normalised_hash():
    assert V1_VARIANT != V1
    assert normalize(V1_VARIANT) == normalize(V1)
    assert text_hash(V1_VARIANT) == text_hash(V1)
    assert text_hash(V1) != text_hash(V2)


def test_held_out_hashes_cover_validation_test_and_all_of_easc(data):
    hashes = held_out_hashes(data)
    assert hashes == {text_hash(t) for t in HELD_OUT}
    assert len(hashes) == 14
    # Train splits of labelled sets (other than EASC) and the unlabelled news are not held out.
    assert (
        text_hash(TR2) not in hashes and text_hash(N1) not in hashes and text_hash(B1) not in hashes
    )


def test_corpus_texts_order_and_fields(data):
    texts = list(corpus_texts(data))
    assert texts == [
        N1_TITLE,
        N1,
        N2_TITLE,
        V1_VARIANT,
        N3_TITLE,
        N1,
        N4,
        TR1_TITLE,
        E1,
        TR2_TITLE,
        TR2,
        ES2,
        N4,
        B1_TITLE,
        B1_SUMMARY,
        B1,
    ]


def test_build_corpus_removes_held_out_and_duplicates(data, tmp_path):
    out = tmp_path / "corpus"
    # A modulus far above 2**32 puts no text aside for the loss (the hash prefix is 32 bits).
    stats = build_corpus(data, out, loss_holdout_every=10**12)
    assert isinstance(stats, CorpusStats)
    train = list(read_corpus(out / "train.jsonl"))
    expected = CorpusStats(
        texts_seen=16,
        removed_held_out=3,  # V1_VARIANT, E1 (in topic train), ES2 (as a topic train title)
        removed_duplicates=2,  # N1 again in the news, N4 again in topic train
        kept=11,
        held_out_for_loss=0,
        characters=sum(len(t) for t in EXPECTED_KEPT),
        held_out_hashes=14,
    )
    assert stats == expected
    assert train == EXPECTED_KEPT
    assert list(read_corpus(out / "heldout.jsonl")) == []
    assert json.loads((out / "stats.json").read_text()) == expected.to_dict()


def test_planted_texts_never_reach_train_or_loss_files(data, tmp_path):
    out = tmp_path / "corpus"
    stats = build_corpus(data, out)  # the default hold-out for the loss
    train = list(read_corpus(out / "train.jsonl"))
    heldout = list(read_corpus(out / "heldout.jsonl"))
    assert stats.texts_seen == 16 and stats.removed_held_out == 3 and stats.removed_duplicates == 2
    assert stats.kept + stats.held_out_for_loss == 11
    assert (len(train), len(heldout)) == (stats.kept, stats.held_out_for_loss)
    assert sorted(train + heldout) == sorted(EXPECTED_KEPT)
    forbidden = {text_hash(t) for t in HELD_OUT}
    for text in train + heldout:
        assert text_hash(text) not in forbidden
    for planted in NEVER:
        assert planted not in train and planted not in heldout
    raw = (out / "train.jsonl").read_text(encoding="utf-8") + (out / "heldout.jsonl").read_text(
        encoding="utf-8"
    )
    assert normalize(V1) not in normalize(raw) and normalize(E1) not in normalize(raw)
    # No duplicates survive either.
    assert len({text_hash(t) for t in train + heldout}) == len(train + heldout)


def test_loss_holdout_takes_texts_from_train_only(data, tmp_path):
    stats = build_corpus(data, tmp_path / "all", loss_holdout_every=1)
    assert (stats.kept, stats.held_out_for_loss, stats.characters) == (0, 11, 0)
    assert list(read_corpus(tmp_path / "all" / "train.jsonl")) == []
    assert list(read_corpus(tmp_path / "all" / "heldout.jsonl")) == EXPECTED_KEPT


def test_data_root_comes_from_akhbar_data(data, monkeypatch):
    from akhbar.models.reader import data_root

    monkeypatch.setenv("AKHBAR_DATA", str(data))
    assert data_root() == data
    assert held_out_hashes(data_root()) == {text_hash(t) for t in HELD_OUT}
