"""Tiny random-weight models for tests and benchmarks: a 1-layer, hidden-32 BERT with its own
WordPiece tokenizer, and a bundle on it with the shipped bundle's heads.

Made from sentences the project writes itself, with no network, in a second or two: what a test
or a memory benchmark needs when the cost of the models must not matter.
"""

from __future__ import annotations

from pathlib import Path

ARABIC_SENTENCES = [
    "قال وزير المالية إن الحكومة سترفع ميزانية التعليم في العام المقبل.",
    "سجل المهاجم هدفين في المباراة النهائية وفاز فريقه بالكأس.",
    "ارتفعت أسعار النفط في الأسواق العالمية بعد اجتماع المنتجين.",
    "افتتح المهرجان السينمائي دورته الجديدة بعرض فيلم وثائقي عن البحر.",
    "أعلنت الشركة عن هاتف جديد يعمل بالذكاء الاصطناعي وبطارية أطول عمرا.",
    "التقى الرئيس نظيره في العاصمة لبحث العلاقات الثنائية والأمن الإقليمي.",
    "تراجعت البورصة المحلية بنسبة ٢٫٥ في المئة مع نهاية جلسة التداول.",
    "أكد المدرب أن اللاعبين جاهزون للمواجهة المقبلة رغم الإصابات.",
    "نظمت وزارة الثقافة معرضا للكتاب شارك فيه مئات الناشرين العرب.",
    "حذرت الأمم المتحدة من تفاقم الأزمة الإنسانية في المنطقة.",
]


def tiny_base(out: Path) -> Path:
    """Write the tiny base (model and tokenizer) to ``out``; returns ``out``."""
    from transformers import BertConfig, BertModel

    from akhbar.models.normalize import NormalizerConfig
    from akhbar.training.tokenizer_training import save_tokenizer, train_tokenizer

    tokenizer = train_tokenizer(ARABIC_SENTENCES * 20, vocab_size=400, min_frequency=1)
    save_tokenizer(tokenizer, out, NormalizerConfig())
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        pad_token_id=tokenizer.pad_token_id,
    )
    BertModel(config).save_pretrained(out)
    return out


def tiny_bundle(base: Path, out: Path) -> Path:
    """Write a random-weight bundle over ``base`` to ``out``: topic, both stance heads
    (article and headline) and summary; returns ``out``."""
    from transformers import AutoModel, AutoTokenizer

    from akhbar.models.bundle import BundleSettings, TaskSettings, save_bundle
    from akhbar.models.modeling import AkhbarModel
    from akhbar.models.tasks import (
        HEADLINE_STANCE_LABELS,
        SENTENCE,
        SEQUENCE,
        STANCE_LABELS,
        TOPIC_LABELS,
    )

    tasks = {
        "topic": TaskSettings(SEQUENCE, TOPIC_LABELS, max_length=64, stride=16),
        "stance": TaskSettings(SEQUENCE, STANCE_LABELS, max_length=64, stride=16),
        "stance_headline": TaskSettings(
            SEQUENCE, HEADLINE_STANCE_LABELS, max_length=64, stride=16, evidence_sentences=1
        ),
        "summary": TaskSettings(SENTENCE, ("selected",), max_length=64, stride=0),
    }
    model = AkhbarModel(AutoModel.from_pretrained(base), {t: s.head for t, s in tasks.items()})
    save_bundle(
        out,
        model,
        AutoTokenizer.from_pretrained(base),
        BundleSettings(tasks=tasks, base_model=str(base)),
    )
    return out
