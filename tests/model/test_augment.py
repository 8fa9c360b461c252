"""Augmentation: synonyms from the training rows that keep each word's lean, and short
crops of long rows."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from lstm_model.data.dataset import load_split
from lstm_model.data.tokeniser import Tokeniser
from lstm_model.training.augment import (
    _log_count_ratio,
    augment,
    build_synonyms,
    crop,
    is_negation,
)


@pytest.fixture(scope="module")
def train_rows(tokenised):  # type: ignore[no-untyped-def]
    return load_split(tokenised, "train")


def test_synonyms_come_from_the_data_and_keep_each_word_s_lean(tokenised, train_rows) -> None:  # type: ignore[no-untyped-def]
    ids, labels = train_rows
    vocab = tokenised.config.vocab_size
    words = Tokeniser.load(tokenised.tokeniser_dir).vocabulary
    synonyms = build_synonyms(ids, labels, vocab, words=words, top_words=500, min_similarity=0.3)
    assert synonyms.shape == (vocab,) and synonyms[0] == 0 and synonyms[1] == 1
    changed = np.flatnonzero(synonyms != np.arange(vocab))
    assert len(changed) > 10  # the fixture's 200 training reviews give some pairs
    assert (synonyms[changed] >= 2).all() and (synonyms[changed] < 502).all()
    lean = _log_count_ratio(ids, labels, 2, 500)
    assert (np.sign(lean[changed - 2]) == np.sign(lean[synonyms[changed] - 2])).all()
    assert all(is_negation(words[w]) == is_negation(words[synonyms[w]]) for w in changed)
    logging.getLogger(__name__).info(
        "e.g. %s", [(words[w], words[synonyms[w]]) for w in changed[:10]]
    )


def test_augment_swaps_only_words_with_synonyms() -> None:
    synonyms = np.arange(10, dtype=np.int32)
    synonyms[5] = 6  # only word 5 has a synonym
    ids = np.array([[0, 0, 5, 5, 3], [1, 5, 2, 5, 5]], dtype=np.int32)
    labels = np.array([0, 1], dtype=np.int8)
    x, y = augment(ids, labels, synonyms, rate=1.0, copies=2, seed=0)
    assert x.shape == (6, 5) and y.tolist() == [0, 1, 0, 1, 0, 1]
    assert np.array_equal(x[:2], ids)  # the originals first, unchanged
    assert np.array_equal(x[2], [0, 0, 6, 6, 3]) and np.array_equal(x[5], [1, 6, 2, 6, 6])
    same, _ = augment(ids, labels, synonyms, rate=0.0, copies=1, seed=0)
    assert np.array_equal(same[2:], ids)
    half_a, _ = augment(ids, labels, synonyms, rate=0.5, copies=3, seed=7)
    half_b, _ = augment(ids, labels, synonyms, rate=0.5, copies=3, seed=7)
    assert np.array_equal(half_a, half_b)  # seeded


def test_crops_are_runs_of_each_row_s_words_padded_as_the_tokeniser_pads() -> None:
    rng = np.random.default_rng(0)
    lengths = [0, 3, 12, 60, 80]
    ids = np.zeros((len(lengths), 80), dtype=np.int32)
    for i, n in enumerate(lengths):
        ids[i, 80 - n :] = rng.integers(2, 500, size=n)
    labels = np.array([0, 1, 1, 0, 1], dtype=np.int8)
    x, y = crop(ids, labels, copies=3, min_tokens=5, max_tokens=20, seed=1)
    assert x.shape == (20, 80) and y.tolist() == labels.tolist() * 4
    assert np.array_equal(x[:5], ids)  # the originals first, unchanged
    kept = []
    for row, source in zip(x[5:], np.tile(ids, (3, 1)), strict=True):
        words, tokens = row[row != 0], source[source != 0]
        assert (row[: 80 - len(words)] == 0).all()  # padding in front, words at the end
        assert len(words) == min(len(tokens), len(words)) and len(words) <= 20
        assert len(words) >= min(5, len(tokens))
        starts = [s for s in range(len(tokens) - len(words) + 1)
                  if np.array_equal(tokens[s : s + len(words)], words)]  # fmt: skip
        assert starts, "a crop is a run of its row's words"
        kept.append(len(words))
    assert len(set(kept)) > 3  # lengths vary
    longest = ids[4][ids[4] != 0]
    starts = {
        next(s for s in range(81 - len(w)) if np.array_equal(longest[s : s + len(w)], w))
        for w in (row[row != 0] for row in x[9::5])
    }
    assert len(starts) > 1  # so do the places the crops start
    post, _ = crop(ids[:, ::-1].copy(), labels, copies=1, min_tokens=5, max_tokens=5, seed=1,
                   padding="post")  # fmt: skip
    assert (post[8, :5] != 0).all() and (post[8, 5:] == 0).all()
    again, _ = crop(ids, labels, copies=3, min_tokens=5, max_tokens=20, seed=1)
    assert np.array_equal(again, x)  # seeded


def test_training_with_augmentation_fits_on_more_rows(tokenised, tmp_path, caplog) -> None:  # type: ignore[no-untyped-def]
    from lstm_model.model.config import ModelConfig
    from lstm_model.training.config import TrainConfig
    from lstm_model.training.fit import train_model

    model = ModelConfig(units=4, embedding_dim=8, ngram_order=0, lstm_maxlen=None)
    train = TrainConfig(epochs=1, batch_size=32, augment_copies=1, augment_rate=0.2, crop_copies=1)
    with caplog.at_level(logging.INFO, logger="lstm_model.training.fit"):
        result = train_model(tokenised, model, train, tmp_path, verbose=0)
    fit_rows = len(load_split(tokenised, "train")[1]) - round(0.1 * 204)
    assert f"augmented the fit rows with synonyms: {2 * fit_rows} rows" in caplog.text
    # crops of the training rows themselves, not of their synonym copies
    assert f"augmented the fit rows with short crops: {3 * fit_rows} rows" in caplog.text
    assert result.model_path.is_file()


def test_negations_are_never_paired_with_plain_words() -> None:
    assert all(map(is_negation, ["not", "never", "wasnt", "cant", "dont", "didnt", "wont"]))
    assert not any(map(is_negation, ["want", "went", "moment", "was", "can", "talent"]))


def test_a_crop_range_upside_down_is_refused_by_name() -> None:
    from pydantic import ValidationError

    from lstm_model.training.config import TrainConfig

    with pytest.raises(ValidationError, match="crop_min_tokens 50 > crop_max_tokens 40"):
        TrainConfig(crop_copies=1, crop_min_tokens=50)
    assert TrainConfig(crop_min_tokens=50).crop_copies == 0  # off: the range is not used
    with pytest.raises(ValueError, match="padding must be 'pre' or 'post'"):
        crop(np.ones((1, 4), np.int32), np.ones(1), copies=1, min_tokens=1, max_tokens=2,
             seed=0, padding="middle")  # type: ignore[arg-type]  # fmt: skip
