"""The shipped task models in models/default/shared/: one bundle that serves every task.

These load the real shipped weights, so they also guard the commit: a bundle that fails to
load, lost a head, or grew past the size budget fails here, not in a newsroom.
"""

from __future__ import annotations

import json
from pathlib import Path

from huggingface_hub import ModelCard
from safetensors import safe_open

from akhbar.models.bundle import NOT_A_CLASSIFIER, load_bundle
from akhbar.models.predict import Predictor
from akhbar.models.tasks import HEADLINE_STANCE_LABELS, STANCE_LABELS, TOPIC_LABELS

DEFAULTS = Path(__file__).resolve().parents[2] / "models" / "default"
SHARED = DEFAULTS / "shared"
BUDGET_BYTES = 60 * 1024 * 1024  # base and task models together

# Written for this test (not from any dataset): a football report and a central-bank story.
SPORT = (
    "تأهل المنتخب الوطني لكرة القدم إلى نهائي البطولة بعد فوزه على منافسه بهدفين نظيفين. "
    "وسجل المهاجم الهدف الأول في الدقيقة العشرين من ضربة رأس، ثم أضاف زميله الهدف الثاني قبل "
    "نهاية الشوط الأول. وقال المدرب بعد المباراة إن اللاعبين قدموا أداء كبيراً أمام جماهير الملعب."
)
ECONOMY = (
    "رفع البنك المركزي سعر الفائدة الرئيسي بمقدار ربع نقطة مئوية لمواجهة ارتفاع التضخم. "
    "وتراجعت أسهم المصارف في البورصة بعد القرار، فيما ارتفع سعر صرف العملة المحلية أمام الدولار. "
    "وتوقع محللون أن يبطئ القرار نمو القروض خلال الأشهر المقبلة."
)


def test_the_defaults_fit_the_size_budget():
    total = sum(p.stat().st_size for p in DEFAULTS.rglob("*") if p.is_file())
    assert total <= BUDGET_BYTES, f"models/default holds {total / 2**20:.1f} MiB"


def test_one_bundle_with_every_head_in_fp16_safetensors():
    bundle = load_bundle(SHARED)
    assert set(bundle.tasks) == {"topic", "stance", "stance_headline", "summary"}
    assert set(bundle.settings.tasks["topic"].labels) == set(TOPIC_LABELS)
    assert bundle.settings.tasks["stance"].labels == STANCE_LABELS
    assert bundle.settings.tasks["stance_headline"].labels == HEADLINE_STANCE_LABELS
    with safe_open(str(SHARED / "model.safetensors"), "pt") as f:
        assert {str(f.get_tensor(k).dtype) for k in f.keys()} == {"torch.float16"}
    card = ModelCard.load(SHARED / "README.md")
    assert "CC BY-NC-SA 4.0" in card.text
    assert card.data.pipeline_tag == "text-classification" and card.data.base_model
    tested = {(r.task_name, r.dataset_type) for r in card.data.eval_results}
    assert {("topic", "topic/ant_v2.1_multisource"), ("summary", "summary/ant_bbc")} <= tested
    # A classifier pipeline pointed at the bundle answers with this label, never a plausible one.
    assert json.loads((SHARED / "config.json").read_text())["id2label"] == {"0": NOT_A_CLASSIFIER}


def test_obvious_articles_get_obvious_answers():
    predictor = Predictor(load_bundle(SHARED))
    sport, economy = predictor.topic([SPORT, ECONOMY])
    assert sport.label == "sport" and economy.label == "economy"
    assert abs(sum(sport.scores.values()) - 1) < 1e-5
    [summary] = predictor.summary([SPORT], k=2)
    assert len(summary.sentences) == 2
    assert all(SPORT[s.start : s.end] == s.text for s in summary.sentences)
    [stance] = predictor.stance(["فاز المنتخب الوطني في المباراة"], [SPORT])
    assert stance.label in STANCE_LABELS and stance.evidence
    assert all(SPORT[s.start : s.end] == s.text for s in stance.evidence)
