from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from lstm_model.data.config import TokeniserConfig
from lstm_model.data.tokeniser import OOV_ID, PAD_ID, RESERVED, Tokeniser, split_words
from lstm_model.errors import ArtifactError

TRAIN = ["the film was good", "the film was bad", "good good acting", "the end"]


def _tok(**config: object) -> Tokeniser:
    return Tokeniser.fit(TRAIN, TokeniserConfig(**{"vocab_size": 100, "maxlen": 6, **config}))


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("Great film.<br /><br />Loved it", ["great", "film", "loved", "it"]),
        ("line<br/>break<BR>here<br >", ["line", "break", "here"]),
        ("Don't DO it, it's bad", ["dont", "do", "it", "its", "bad"]),
        ("curly don’t", ["curly", "dont"]),
        ("10/10 - a must-see!!!", ["10", "10", "a", "must", "see"]),
        ("Café déjà vu, ÉLAN", ["café", "déjà", "vu", "élan"]),
        ("  \t\n ", []),
        ("", []),
        ("?!...", []),
        ("snake_case and tabs\tand\nnewlines", ["snake", "case", "and", "tabs", "and", "newlines"]),
    ],
)
def test_normalisation_and_split(text: str, tokens: list[str]) -> None:
    assert split_words([text]) == [tokens]


def test_vocabulary_is_ranked_by_count_then_word() -> None:
    tok = _tok()
    # the x3, good x3, film x2, was x2, then single words alphabetically
    assert tok.vocabulary[:8] == (*RESERVED, "good", "the", "film", "was", "acting", "bad")


def test_vocab_size_counts_the_reserved_ids() -> None:
    tok = _tok(vocab_size=4)
    assert tok.vocabulary == (*RESERVED, "good", "the")
    assert tok.encode(["film good the"]).max() == 3
    assert tok.encode(["film"])[0, -1] == OOV_ID


def test_words_never_seen_in_training_are_out_of_vocabulary() -> None:
    ids = _tok().encode(["the zebra"])[0]
    assert list(ids[-2:]) == [_tok().vocabulary.index("the"), OOV_ID]


@pytest.mark.parametrize(
    ("padding", "truncating", "expected"),
    [
        ("pre", "pre", [[0, 0, 0, 2, 3, 4], [3, 5, 7, 2, 3, 4]]),
        ("post", "pre", [[2, 3, 4, 0, 0, 0], [3, 5, 7, 2, 3, 4]]),
        ("pre", "post", [[0, 0, 0, 2, 3, 4], [2, 3, 4, 5, 3, 5]]),
        ("post", "post", [[2, 3, 4, 0, 0, 0], [2, 3, 4, 5, 3, 5]]),
    ],
)
def test_padding_and_truncation_sides(padding: str, truncating: str, expected: list) -> None:
    tok = _tok(padding=padding, truncating=truncating)
    good, the, film, was, bad = (
        tok.vocabulary.index(w) for w in ("good", "the", "film", "was", "bad")
    )
    assert (good, the, film, was, bad) == (2, 3, 4, 5, 7)
    long = "good the film was the was bad good the film"
    ids = tok.encode(["good the film", long])
    assert ids.tolist() == expected
    assert ids.dtype == np.int32


def test_empty_text_is_all_padding_and_lengths_are_reported() -> None:
    ids, lengths = _tok().encode_with_lengths(["", "good " * 9])
    assert (ids[0] == PAD_ID).all()
    assert lengths.tolist() == [0, 9]


def test_batch_encoding_across_chunks_matches_one_by_one() -> None:
    rng = np.random.default_rng(0)
    words = np.array(["good", "the", "film", "bad", "zebra", "<br />", "!", "Don't"])
    texts = [" ".join(rng.choice(words, rng.integers(0, 12))) for _ in range(20_000)]
    tok = _tok()
    batch = tok.encode(texts)
    singles = np.vstack([tok.encode([t]) for t in texts[::997]])
    assert np.array_equal(batch[::997], singles)
    assert np.array_equal(tok.encode(pa.chunked_array([texts[:7], texts[7:]])), batch)


def test_fit_accepts_an_iterable_of_batches() -> None:
    whole = Tokeniser.fit(TRAIN, TokeniserConfig(vocab_size=50))
    streamed = Tokeniser.fit(iter([TRAIN[:1], TRAIN[1:]]), TokeniserConfig(vocab_size=50))
    assert whole.vocabulary == streamed.vocabulary


def test_null_text_is_refused_with_its_position() -> None:
    with pytest.raises(ValueError, match=r"1 null value.*first at 1"):
        _tok().encode(["good", None])  # type: ignore[list-item]


def test_save_then_load_gives_identical_ids(tmp_path: Path) -> None:
    tok = _tok()
    vocab_sha = tok.save(tmp_path)
    loaded = Tokeniser.load(tmp_path)
    texts = ["the film was good", "zebra", ""]
    assert np.array_equal(loaded.encode(texts), tok.encode(texts))
    assert loaded.config == tok.config
    meta = json.loads((tmp_path / "tokenizer.json").read_text())
    assert meta["vocab_sha256"] == vocab_sha
    assert (tmp_path / "vocab.txt").read_text().splitlines()[:3] == ["[PAD]", "[UNK]", "good"]


def test_changed_vocabulary_file_is_refused(tmp_path: Path) -> None:
    _tok().save(tmp_path)
    vocab = tmp_path / "vocab.txt"
    vocab.write_text(vocab.read_text().replace("good", "bad!"))
    with pytest.raises(ArtifactError, match=r"vocab\.txt: sha256 .* the vocabulary was changed"):
        Tokeniser.load(tmp_path)


def test_fit_on_nothing_is_an_error() -> None:
    with pytest.raises(ValueError, match="no texts"):
        Tokeniser.fit([], TokeniserConfig())
