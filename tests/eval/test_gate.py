"""The evaluation gate runs in CI: detection quality below the thresholds fails the build."""

from policywatch.monitor.detection.extract import extract_html
from tests.eval.gate import TEMPLATE_THRESHOLDS, THRESHOLDS, all_cases, evaluate, site_cases


def test_corpus_is_complete():
    cats = {c.category for c in all_cases()}
    assert cats == {"noise_real", "noise_synthetic", "substantive", "json", "story", "templates"}
    assert sum(1 for c in all_cases() if c.holdout) >= 10


def test_template_sites_are_many_labelled_pairs_on_other_templates():
    """At least 80 labelled consecutive pairs across at least 3 templates that are not GCWeb, both kinds of
    pair in each, and none of them extracted with the GCWeb extractor."""
    sites = site_cases()
    pairs = sum(len(c.expect) for c in sites)
    assert pairs >= 80 and len(sites) >= 3
    for case in sites:
        kinds = {label.label for label in case.expect}
        assert kinds == {"substantive", "noise"}, case.name
        assert extract_html(case.nights[0].body, case.url).extractor == "generic", case.name


def test_gate(capsys):
    result = evaluate()
    with capsys.disabled():  # the scores are the CI report, pass or fail
        print("\ndetection gate:", result["scores"])
        for name, row in result["templates"].items():
            print(f"  {name}: {row}")
    assert result["failing"] == [], (result["scores"], result["templates"], result["problems"])
    for row in result["scores"].values():
        assert row["false_alarms"] <= THRESHOLDS["false_alarms"]
    overall = result["templates"]["all templates"]
    assert overall["pairs"] >= 80
    assert overall["alarms"] == 0
    assert overall["recall"] >= TEMPLATE_THRESHOLDS["recall"]
    assert overall["key_in_summary"] >= TEMPLATE_THRESHOLDS["key_in_summary"]
