"""Texts, a time bound and a stand-in model shared by the scoring tests."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lstm_model.scoring import infer
from lstm_model.scoring.infer import ScoringModel, load_scoring_model

if TYPE_CHECKING:
    import pytest

ROOT = Path(__file__).resolve().parents[2]
"""The repository: PYTHONPATH of the scoring runs started as processes."""

TEXTS = [
    "A wonderful film, the acting was superb and I loved every minute.",
    "Terrible plot, wooden acting, a waste of two hours.",
    "It was fine. Nothing special but watchable.",
]
ODD_OUTPUTS = np.array([0.2, np.nan, 1.5, -0.1, np.inf, 0.9], dtype="float32")


class Hang(BaseException):
    """Raised by ``within`` when time is up: not an Exception, so that no handler in the
    code under test takes it for the error of one file and carries on."""


@contextmanager
def within(seconds: int) -> Iterator[None]:
    """Fail, rather than hang the suite, if the block runs longer than ``seconds``."""

    def expired(*_: object) -> None:
        raise Hang(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


class StandInModel:
    """A stand-in model whose outputs for a batch of n texts are ``outputs(n)``."""

    def __init__(self, outputs: Callable[[int], np.ndarray]) -> None:
        self.outputs = outputs

    def predict_on_batch(self, ids: np.ndarray) -> np.ndarray:
        return self.outputs(len(ids))


def use_model(
    monkeypatch: pytest.MonkeyPatch, registry: Path, outputs: Callable[[int], np.ndarray]
) -> ScoringModel:
    """The champion, loaded (and checked) before its model is replaced by a stand-in (with
    the champion's real tokeniser) for the scoring that follows."""
    champion = load_scoring_model(registry)
    _, tokeniser = infer._model_and_tokeniser(champion.folder, champion.model_sha256)
    monkeypatch.setattr(
        infer, "_model_and_tokeniser", lambda *_: (StandInModel(outputs), tokeniser)
    )
    return champion
