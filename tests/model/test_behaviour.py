"""Behavioural checks (minimum functionality, invariance, directional): the mechanics on
stub models whose answers are known, then the real tiny model end to end."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from lstm_model.errors import ArtifactError
from lstm_model.evaluation.behaviour import (
    DIRECTIONAL_CASES,
    INVARIANCE_CASES,
    MIN_PASS_RATE,
    MINIMUM_CASES,
    BehaviourReport,
    check_behaviour,
)
from lstm_model.evaluation.evaluate import BEHAVIOUR_FILE
from lstm_model.release.checks import check_version
from lstm_model.release.registry import Registry, RegistryError

POSITIVE = {
    *("wonderful", "loved", "brilliant", "superb", "moving", "best", "great", "fun"),
    *("recommend", "beautiful", "touching", "excellent", "funny", "smart", "good"),
    *("interesting", "satisfying", "worth", "lovely", "warm"),
}
NEGATIVE = {
    *("terrible", "hated", "boring", "awful", "stupid", "worst", "bad", "waste", "avoid"),
    *("dull", "pointless", "horrible", "painful", "skip"),
}
INTENSIFIERS = {"very", "really"}


def lexicon_model(*, negation: bool = True) -> Callable[[list[str]], np.ndarray]:
    """A rule-based stub: word polarities, "not" flips the next word, an intensifier
    doubles it; names, case, punctuation and whitespace mean nothing to it."""

    def score(text: str) -> float:
        words = re.findall(r"[a-z]+", text.lower())
        total = 0.0
        for before, word in zip(["", *words], words, strict=False):
            polarity = (word in POSITIVE) - (word in NEGATIVE)
            if negation and before == "not":
                polarity = -polarity
            total += 2 * polarity if before in INTENSIFIERS else polarity
        return 1.0 / (1.0 + np.exp(-2.0 * total))

    return lambda texts: np.array([score(t) for t in texts])


def constant_model(texts: list[str]) -> np.ndarray:
    return np.full(len(texts), 0.5)


# ------------------------------------------------------------- the cases themselves


def test_each_kind_has_cases_of_both_polarities_and_every_change() -> None:
    assert {c.expected for c in MINIMUM_CASES} == {"positive", "negative"}
    assert {c.perturbation for c in INVARIANCE_CASES} == {
        "names",
        "punctuation",
        "casing",
        "whitespace",
    }
    assert {(c.edit, c.expected) for c in DIRECTIONAL_CASES} == {
        (edit, label) for edit in ("negation", "intensifier") for label in ("positive", "negative")
    }


def test_a_directional_edit_inserts_one_word_before_the_sentiment_word() -> None:
    for case in DIRECTIONAL_CASES:
        before, after = case.text.split(), case.edited.split()
        at = next(i for i in range(len(after)) if after[:i] + after[i + 1 :] == before)
        assert after[at] in ({"not"} if case.edit == "negation" else INTENSIFIERS), case
        assert after[at + 1].strip(".") in POSITIVE | NEGATIVE, case


def test_a_model_that_ignores_negation_cannot_reach_the_directional_threshold() -> None:
    intensifiers = sum(c.edit == "intensifier" for c in DIRECTIONAL_CASES)
    assert intensifiers / len(DIRECTIONAL_CASES) < MIN_PASS_RATE["directional"]
    assert MIN_PASS_RATE["minimum_functionality"] == 1.0


# ------------------------------------------------------------------ stub models


def test_a_rule_based_model_passes_every_case() -> None:
    report = check_behaviour(lexicon_model())
    failed = [r for r in report.results if not r.passed]
    assert failed == []
    assert report.passed
    assert {k: (s.passed, s.total) for k, s in report.summary.items()} == {
        "minimum_functionality": (12, 12),
        "invariance": (12, 12),
        "directional": (12, 12),
    }
    assert report.summary["invariance"].max_abs_shift == 0.0
    assert report.version is None


def test_a_model_that_ignores_not_fails_the_negations_only() -> None:
    report = check_behaviour(lexicon_model(negation=False))
    failed = {(r.kind, r.check) for r in report.results if not r.passed}
    assert failed == {("directional", "negation")}
    assert sum(not r.passed for r in report.results) == 8
    assert not report.summary["directional"].ok
    assert report.summary["minimum_functionality"].ok and report.summary["invariance"].ok
    assert not report.passed


def test_a_constant_model_fails_minimum_functionality() -> None:
    report = check_behaviour(constant_model)
    mft = report.summary["minimum_functionality"]
    assert (mft.passed, mft.total) == (6, 12)  # 0.5 is the positive label: the positives pass
    assert not mft.ok and not report.passed
    # A constant never flips, so invariance alone holds: it says nothing about accuracy.
    assert report.summary["invariance"].ok


def test_a_one_case_regression_in_minimum_functionality_fails_the_model() -> None:
    good = lexicon_model()
    victim = MINIMUM_CASES[0].text

    def predict(texts: list[str]) -> np.ndarray:
        return np.array(
            [0.1 if t == victim else p for t, p in zip(texts, good(texts), strict=True)]
        )

    report = check_behaviour(predict)
    assert report.summary["minimum_functionality"].passed == 11
    assert not report.passed


def test_an_intensifier_that_moves_against_the_sentiment_fails_even_without_a_flip() -> None:
    good = lexicon_model()

    def predict(texts: list[str]) -> np.ndarray:
        # "very"/"really" push towards 0.5 without crossing it
        return np.array(
            [
                0.5 + (p - 0.5) / 4 if re.search(r"\b(very|really)\b", t) else p
                for t, p in zip(texts, good(texts), strict=True)
            ]
        )

    report = check_behaviour(predict)
    failed = [r for r in report.results if not r.passed]
    assert {r.check for r in failed} == {"intensifier"} and len(failed) == 4
    assert all(r.predicted == r.expected for r in failed)  # the labels were right


def test_invariance_reports_the_probability_shift_of_each_pair() -> None:
    def predict(texts: list[str]) -> np.ndarray:
        base = lexicon_model()(texts)
        return np.clip(base + np.array(["Seagal" in t for t in texts]) * -0.05, 0.0, 1.0)

    report = check_behaviour(predict)
    seagal = next(r for r in report.results if r.edited and "Seagal" in r.edited)
    assert seagal.passed and seagal.shift == pytest.approx(-0.05, abs=1e-3)
    assert report.summary["invariance"].max_abs_shift == pytest.approx(0.05, abs=1e-3)


@pytest.mark.parametrize(
    "predict",
    [
        lambda texts: np.full(len(texts) - 1, 0.5),
        lambda texts: np.full(len(texts), np.nan),
        lambda texts: np.full(len(texts), 1.5),
    ],
    ids=["too-few", "nan", "above-one"],
)
def test_outputs_that_are_not_one_probability_per_text_are_refused(
    predict: Callable[[list[str]], np.ndarray],
) -> None:
    with pytest.raises(ValueError, match="predict gave"):
        check_behaviour(predict)


def test_predict_is_called_once_with_each_distinct_text() -> None:
    calls: list[list[str]] = []

    def predict(texts: list[str]) -> np.ndarray:
        calls.append(texts)
        return lexicon_model()(texts)

    check_behaviour(predict)
    assert len(calls) == 1 and len(calls[0]) == len(set(calls[0]))


def test_render_is_a_markdown_summary_and_a_row_per_case() -> None:
    report = check_behaviour(lexicon_model(negation=False)).model_copy(update={"version": 3})
    text = report.render()
    assert text.startswith("## Behavioural checks: model version 3\n")
    assert "**Failed**" in text
    assert "| directional | 4/12 | 33% | 75% |" in text
    assert "| minimum functionality | 12/12 | 100% | 100% |  | pass |" in text
    rows = [line for line in text.splitlines() if line.startswith("| ") and "`" in line]
    assert len(rows) == len(report.results) == 36
    assert all(line.count(" | ") == 9 for line in rows)  # escaped texts keep ten columns
    assert "`  A   truly\\tbeautiful\\n story.  `" in text  # whitespace shown, not collapsed


def test_the_report_round_trips_through_json() -> None:
    report = check_behaviour(lexicon_model())
    dumped = json.loads(json.dumps(report.model_dump(mode="json")))
    assert dumped["summary"]["directional"]["ok"] is True
    assert BehaviourReport.model_validate(dumped) == report


# ------------------------------------------------------- the real tiny model


def test_the_tiny_model_is_checked_and_recorded_by_its_evaluation(  # type: ignore[no-untyped-def]
    evaluation, trained, tokenised
) -> None:
    from lstm_model.data.tokeniser import Tokeniser
    from lstm_model.model.builders import load_model, predict_ids

    behaviour = evaluation.behaviour
    assert behaviour is not None
    assert sum(s.total for s in behaviour.summary.values()) == 36
    folder = evaluation.report_path.parent
    recorded = json.loads((folder / BEHAVIOUR_FILE).read_text())
    assert BehaviourReport.model_validate(recorded) == behaviour
    report = evaluation.report_path.read_text()
    assert "## Behavioural checks\n" in report
    assert behaviour.render() in report
    # The same model checked again, outside evaluation, gives the same answers.
    model, tokeniser = load_model(trained.model_path), Tokeniser.load(tokenised.tokeniser_dir)
    again = check_behaviour(lambda texts: predict_ids(model, tokeniser.encode(texts)))
    assert [r.passed for r in again.results] == [r.passed for r in behaviour.results]
    np.testing.assert_allclose(
        [r.probability for r in again.results],
        [r.probability for r in behaviour.results],
        atol=1e-5,
    )


def test_check_version_runs_on_the_champion_and_on_a_named_version(  # type: ignore[no-untyped-def]
    registry_with_champion, evaluation
) -> None:
    champion = check_version(registry_with_champion)
    assert champion.version == Registry(registry_with_champion).champion() == 1
    assert champion.render().startswith("## Behavioural checks: model version 1\n")
    assert [r.passed for r in champion.results] == [r.passed for r in evaluation.behaviour.results]
    named = check_version(registry_with_champion, 1)
    assert named.version == 1 and named.results == champion.results
    # Registration copied the evaluation's behaviour.json into the version, hashed.
    files = Registry(registry_with_champion).manifest(1)["files"]
    assert f"evaluation/{BEHAVIOUR_FILE}" in files


def test_check_version_refuses_a_missing_version_a_tampered_one_and_no_champion(  # type: ignore[no-untyped-def]
    registry_with_champion, tmp_path: Path
) -> None:
    with pytest.raises(RegistryError, match="no model version 9"):
        check_version(registry_with_champion, 9)
    root = tmp_path / "registry"
    shutil.copytree(registry_with_champion, root, symlinks=True)
    vocab = root / "versions" / "1" / "tokenizer" / "vocab.txt"
    vocab.write_text(vocab.read_text() + "extra\n")
    with pytest.raises(ArtifactError, match=r"tokenizer/vocab\.txt"):
        check_version(root)
    (root / "champion.json").unlink()
    with pytest.raises(RegistryError, match="no champion"):
        check_version(root)
