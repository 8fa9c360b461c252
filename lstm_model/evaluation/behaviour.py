"""Behavioural checks of a sentiment model on fixed sentences (CheckList, Ribeiro et al. 2020).

Three kinds of case, each a plain sentence or a pair of them; no data set, no file I/O:

- minimum functionality: a clearly positive or clearly negative sentence gets its label;
- invariance: changing a name, punctuation, casing or whitespace keeps the label (the
  probability shift is reported too);
- directional: "not" before the sentiment word flips the label; an intensifier ("very",
  "really") keeps it and does not move the probability against the sentiment.

``check_behaviour`` scores every text with one call of a ``predict`` function (texts ->
probabilities of the positive label), so the same cases run against a Keras model, an
export or a stub. The thresholds and the reasons for them are in ``docs/model-behaviour.md``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, computed_field

from lstm_model.model.labels import LABELS, THRESHOLD

log = logging.getLogger(__name__)

Kind = Literal["minimum_functionality", "invariance", "directional"]
Label = Literal["negative", "positive"]
Perturbation = Literal["names", "punctuation", "casing", "whitespace"]
Edit = Literal["negation", "intensifier"]

KINDS: tuple[Kind, ...] = ("minimum_functionality", "invariance", "directional")

MIN_PASS_RATE: dict[Kind, float] = {
    # A model that gets a plain "one of the worst films I have ever seen" wrong is broken.
    "minimum_functionality": 1.0,
    # Casing, whitespace and punctuation cannot change the tokens, so only a name can flip
    # a label: 11 of 12 lets one name in four move a borderline sentence across 0.5.
    "invariance": 0.9,
    # 8 of 12 directional cases are negations: a model that ignores "not" passes at most
    # 4 (0.33); 0.75 (9 of 12) asks for most negations and every intensifier but one.
    "directional": 0.75,
}
"""Smallest pass rate of each kind for the model to pass."""

DIRECTION_TOLERANCE = 0.01
"""How far an intensifier may move the probability against the sentiment and still pass:
a saturated probability (0.999) has no room to move further, only float noise."""


@dataclass(frozen=True)
class MinimumCase:
    """A plain sentence whose label is not in doubt."""

    text: str
    expected: Label


@dataclass(frozen=True)
class InvarianceCase:
    """A sentence and a copy with a change that must not change the label."""

    perturbation: Perturbation
    text: str
    perturbed: str


@dataclass(frozen=True)
class DirectionalCase:
    """A sentence of known sentiment and an edit of it with a known effect."""

    edit: Edit
    text: str
    edited: str
    expected: Label
    """The original sentence's label."""

    @property
    def expected_edited(self) -> Label:
        """The edited sentence's label: flipped by a negation, kept by an intensifier."""
        if self.edit == "intensifier":
            return self.expected
        return "negative" if self.expected == "positive" else "positive"


MINIMUM_CASES: tuple[MinimumCase, ...] = (
    MinimumCase("This movie was wonderful, I loved every minute of it.", "positive"),
    MinimumCase("A brilliant film with superb acting and a moving story.", "positive"),
    MinimumCase("One of the best films I have ever seen.", "positive"),
    MinimumCase("Great cast, great script, great fun.", "positive"),
    MinimumCase("I highly recommend this beautiful and touching film.", "positive"),
    MinimumCase("An excellent movie, funny and smart from start to finish.", "positive"),
    MinimumCase("This movie was terrible, I hated every minute of it.", "negative"),
    MinimumCase("A boring film with awful acting and a stupid story.", "negative"),
    MinimumCase("One of the worst films I have ever seen.", "negative"),
    MinimumCase("Bad cast, bad script, a complete waste of time.", "negative"),
    MinimumCase("Avoid this dull and pointless film.", "negative"),
    MinimumCase("A horrible movie, just painful to sit through.", "negative"),
)

INVARIANCE_CASES: tuple[InvarianceCase, ...] = (
    # Names the IMDB reviews praise or pan, swapped into sentences that say the opposite.
    InvarianceCase(
        "names",
        "Tom Hanks gave a wonderful performance in this film.",
        "Steven Seagal gave a wonderful performance in this film.",
    ),
    InvarianceCase(
        "names",
        "Paris Hilton was awful in this movie.",
        "Meryl Streep was awful in this movie.",
    ),
    InvarianceCase(
        "names",
        "My friend John thought it was a great film.",
        "My friend Aisha thought it was a great film.",
    ),
    InvarianceCase(
        "names",
        "Sarah said the movie was a waste of money.",
        "Mohammed said the movie was a waste of money.",
    ),
    InvarianceCase("punctuation", "Great film, I loved it.", "Great film!!! I loved it..."),
    InvarianceCase("punctuation", "Terrible film. I hated it.", "Terrible film -- I hated it?!"),
    InvarianceCase("punctuation", "A lovely, warm story.", "A lovely (warm) story!"),
    InvarianceCase("casing", "What a wonderful film.", "WHAT A WONDERFUL FILM."),
    InvarianceCase("casing", "The worst movie of the year.", "the WORST movie of the YEAR."),
    InvarianceCase("whitespace", "A truly beautiful story.", "  A   truly\tbeautiful\n story.  "),
    InvarianceCase("whitespace", "An awful, boring film.", "An awful,\n\nboring   film."),
    # <br /> is how the IMDB reviews break lines.
    InvarianceCase("whitespace", "Dull film. Skip it.", "Dull film.<br /><br />Skip it."),
)

DIRECTIONAL_CASES: tuple[DirectionalCase, ...] = (
    DirectionalCase("negation", "The acting was good.", "The acting was not good.", "positive"),
    DirectionalCase("negation", "This film is great.", "This film is not great.", "positive"),
    DirectionalCase(
        "negation", "The story was interesting.", "The story was not interesting.", "positive"
    ),
    DirectionalCase(
        "negation", "The ending was satisfying.", "The ending was not satisfying.", "positive"
    ),
    DirectionalCase("negation", "The movie was funny.", "The movie was not funny.", "positive"),
    DirectionalCase("negation", "It is worth watching.", "It is not worth watching.", "positive"),
    DirectionalCase("negation", "The film was bad.", "The film was not bad.", "negative"),
    DirectionalCase("negation", "The plot was boring.", "The plot was not boring.", "negative"),
    DirectionalCase("intensifier", "The acting was good.", "The acting was very good.", "positive"),
    DirectionalCase("intensifier", "This film is great.", "This film is really great.", "positive"),
    DirectionalCase("intensifier", "The film was bad.", "The film was very bad.", "negative"),
    DirectionalCase(
        "intensifier", "The plot was boring.", "The plot was really boring.", "negative"
    ),
)


class CaseResult(BaseModel):
    """One case as the model answered it."""

    model_config = ConfigDict(frozen=True)

    kind: Kind
    check: str
    """The expected label (minimum functionality), the perturbation or the edit."""
    text: str
    edited: str | None = None
    expected: str
    predicted: str
    probability: float
    edited_probability: float | None = None
    shift: float | None = None
    """``edited_probability - probability``."""
    passed: bool


class KindSummary(BaseModel):
    """Pass count of one kind of case against its threshold."""

    model_config = ConfigDict(frozen=True)

    passed: int
    total: int
    rate: float
    min_rate: float
    max_abs_shift: float | None = None
    """Largest probability shift of a pair (invariance and directional)."""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ok(self) -> bool:
        """The rate is at or above the threshold."""
        return self.rate >= self.min_rate


class BehaviourReport(BaseModel):
    """Every case's result, the pass count per kind and the verdict."""

    model_config = ConfigDict(frozen=True)

    version: int | None = None
    """The registry version checked, when it came from a registry."""
    summary: dict[Kind, KindSummary]
    results: list[CaseResult]
    passed: bool
    """Every kind at or above its ``MIN_PASS_RATE`` (all minimum-functionality cases)."""

    def render(self) -> str:
        """Markdown: the verdict, the pass counts per kind, and every case."""
        title = "Behavioural checks" + (
            "" if self.version is None else f": model version {self.version}"
        )
        summary = "\n".join(
            f"| {kind.replace('_', ' ')} | {s.passed}/{s.total} | {s.rate:.0%} | "
            f"{s.min_rate:.0%} | {_number(s.max_abs_shift, '.3f')} | {'pass' if s.ok else 'FAIL'} |"
            for kind, s in self.summary.items()
        )
        cases = "\n".join(
            f"| {r.kind.replace('_', ' ')} | {r.check} | {_cell(r.text)} | "
            f"{'' if r.edited is None else _cell(r.edited)} | {r.expected} | {r.predicted} | "
            f"{r.probability:.3f} | {_number(r.edited_probability, '.3f')} | "
            f"{_number(r.shift, '+.3f')} | {'pass' if r.passed else 'FAIL'} |"
            for r in self.results
        )
        return (
            f"## {title}\n\n**{'Passed' if self.passed else 'Failed'}**: every "
            "minimum-functionality case must pass, and invariance and directional cases at "
            "the rates below. Probabilities are of the positive label.\n\n"
            "| kind | passed | rate | required | largest shift | |\n|---|---|---|---|---|---|\n"
            f"{summary}\n\n"
            "| kind | check | text | edited | expected | predicted | p | p edited | shift | |\n"
            "|---|---|---|---|---|---|---|---|---|---|\n"
            f"{cases}\n"
        )


def check_behaviour(predict: Callable[[list[str]], np.ndarray]) -> BehaviourReport:
    """Run every case through ``predict`` (one call with every distinct text)."""
    texts = list(
        dict.fromkeys(
            [c.text for c in MINIMUM_CASES]
            + [t for c in INVARIANCE_CASES for t in (c.text, c.perturbed)]
            + [t for c in DIRECTIONAL_CASES for t in (c.text, c.edited)]
        )
    )
    probabilities = _probabilities(predict(texts), len(texts))
    p = dict(zip(texts, probabilities, strict=True))
    results = (
        [_minimum(case, p) for case in MINIMUM_CASES]
        + [_invariance(case, p) for case in INVARIANCE_CASES]
        + [_directional(case, p) for case in DIRECTIONAL_CASES]
    )
    summary = {kind: _summarise([r for r in results if r.kind == kind], kind) for kind in KINDS}
    report = BehaviourReport(
        summary=summary, results=results, passed=all(s.ok for s in summary.values())
    )
    log.info(
        "behavioural checks %s: %s",
        "passed" if report.passed else "failed",
        ", ".join(f"{kind} {s.passed}/{s.total}" for kind, s in summary.items()),
    )
    return report


def _label(probability: float) -> Label:
    return LABELS[int(probability >= THRESHOLD)]  # type: ignore[return-value]


def _minimum(case: MinimumCase, p: dict[str, float]) -> CaseResult:
    predicted = _label(p[case.text])
    return CaseResult(
        kind="minimum_functionality",
        check=case.expected,
        text=case.text,
        expected=case.expected,
        predicted=predicted,
        probability=p[case.text],
        passed=predicted == case.expected,
    )


def _invariance(case: InvarianceCase, p: dict[str, float]) -> CaseResult:
    before, after = _label(p[case.text]), _label(p[case.perturbed])
    return CaseResult(
        kind="invariance",
        check=case.perturbation,
        text=case.text,
        edited=case.perturbed,
        expected="unchanged",
        predicted=f"{before} -> {after}",
        probability=p[case.text],
        edited_probability=p[case.perturbed],
        shift=p[case.perturbed] - p[case.text],
        passed=before == after,
    )


def _directional(case: DirectionalCase, p: dict[str, float]) -> CaseResult:
    before, after = _label(p[case.text]), _label(p[case.edited])
    shift = p[case.edited] - p[case.text]
    passed = before == case.expected and after == case.expected_edited
    if case.edit == "intensifier":
        towards = shift if case.expected == "positive" else -shift
        passed = passed and towards >= -DIRECTION_TOLERANCE
    return CaseResult(
        kind="directional",
        check=case.edit,
        text=case.text,
        edited=case.edited,
        expected=f"{case.expected} -> {case.expected_edited}",
        predicted=f"{before} -> {after}",
        probability=p[case.text],
        edited_probability=p[case.edited],
        shift=shift,
        passed=passed,
    )


def _summarise(results: Sequence[CaseResult], kind: Kind) -> KindSummary:
    passed = sum(r.passed for r in results)
    shifts = [abs(r.shift) for r in results if r.shift is not None]
    return KindSummary(
        passed=passed,
        total=len(results),
        rate=passed / len(results),
        min_rate=MIN_PASS_RATE[kind],
        max_abs_shift=max(shifts) if shifts else None,
    )


def _probabilities(values: object, n: int) -> list[float]:
    array = np.asarray(values, dtype="float64").ravel()
    if array.shape != (n,):
        raise ValueError(f"predict gave {array.size} values for {n} texts")
    if not (np.isfinite(array) & (array >= 0.0) & (array <= 1.0)).all():
        raise ValueError("predict gave values that are not probabilities in [0, 1]")
    return [float(v) for v in array]


def _cell(text: str) -> str:
    """A text as a table cell: control characters escaped, spaces kept, pipes escaped."""
    return "`" + json.dumps(text, ensure_ascii=False)[1:-1].replace("|", "\\|") + "`"


def _number(value: float | None, spec: str) -> str:
    return "" if value is None else format(value, spec)
