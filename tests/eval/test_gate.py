"""The evaluation gate runs in CI: detection quality below the thresholds fails the build."""

from tests.eval.gate import THRESHOLDS, all_cases, evaluate


def test_corpus_is_complete():
    cats = {c.category for c in all_cases()}
    assert cats == {"noise_real", "noise_synthetic", "substantive", "json", "story"}
    assert sum(1 for c in all_cases() if c.holdout) >= 10


def test_gate():
    result = evaluate()
    assert result["failing"] == [], (result["scores"], result["problems"])
    for row in result["scores"].values():
        assert row["false_alarms"] <= THRESHOLDS["false_alarms"]
