"""The tokenise step: fit on train only, encode all, publish with a manifest, cache."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pytest

from lstm_model.data.config import TokeniserConfig
from lstm_model.data.dataset import load_split, tokenise_reviews
from lstm_model.data.ingest import load_reviews
from lstm_model.data.tokeniser import Tokeniser, split_words
from lstm_model.errors import ArtifactError

CONFIG = TokeniserConfig(vocab_size=50_000, maxlen=64)


@pytest.fixture(scope="module")
def tokenised(ingested, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    return tokenise_reviews(ingested, CONFIG, tmp_path_factory.mktemp("tok"))


def test_vocabulary_comes_from_the_train_split_only(tokenised, ingested) -> None:  # type: ignore[no-untyped-def]
    table = load_reviews(ingested)
    words = {
        split: {
            w for t in split_words(table.filter(pc.equal(table["split"], split))["text"]) for w in t
        }
        for split in ("train", "test")
    }
    vocabulary = set(Tokeniser.load(tokenised.tokeniser_dir).vocabulary[2:])
    assert vocabulary == words["train"]  # vocab_size is large enough to keep every word
    assert words["test"] - words["train"]  # test has words of its own ...
    assert not vocabulary & (words["test"] - words["train"])  # ... and none leaked in


def test_rows_align_with_the_reviews_and_the_saved_tokeniser(tokenised, ingested) -> None:  # type: ignore[no-untyped-def]
    reviews = load_reviews(ingested)
    tokeniser = Tokeniser.load(tokenised.tokeniser_dir)
    for split in ("train", "test"):
        ids, labels = load_split(tokenised, split)
        part = reviews.filter(pc.equal(reviews["split"], split))
        assert ids.shape == (part.num_rows, 64) and ids.dtype == np.int32
        assert np.array_equal(labels, part["label"].to_numpy())
        assert np.array_equal(ids, tokeniser.encode(part["text"]))


def test_manifest_links_inputs_config_and_vocabulary(tokenised, ingested) -> None:  # type: ignore[no-untyped-def]
    manifest = json.loads((tokenised.tokeniser_dir / "manifest.json").read_text())
    assert manifest["inputs"] == {"reviews": ingested.sha256}
    assert manifest["config"] == CONFIG.model_dump()
    assert manifest["files"]["vocab.txt"] == tokenised.vocab_sha256
    assert manifest["details"]["fit_rows"] == 204


def test_unchanged_input_is_a_cache_hit(ingested, tokenised) -> None:  # type: ignore[no-untyped-def]
    again = tokenise_reviews(ingested, CONFIG, tokenised.tokeniser_dir.parents[1])
    assert again.cached and again.sha256 == tokenised.sha256


def test_new_config_is_new_work(ingested, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    a = tokenise_reviews(ingested, TokeniserConfig(maxlen=10), tmp_path)
    b = tokenise_reviews(ingested, TokeniserConfig(maxlen=10, truncating="post"), tmp_path)
    assert a.tokeniser_dir != b.tokeniser_dir and a.sha256 != b.sha256


def test_changed_file_is_refused_on_load(ingested, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = tokenise_reviews(ingested, TokeniserConfig(maxlen=8), tmp_path)
    result.path.write_bytes(result.path.read_bytes()[:-10])
    with pytest.raises(ArtifactError, match="re-run the tokenise step"):
        load_split(result, "train")


def test_a_published_folder_describes_itself(tokenised) -> None:  # type: ignore[no-untyped-def]
    from lstm_model.data.dataset import open_tokenised

    opened = open_tokenised(tokenised.tokeniser_dir)
    assert opened.model_copy(update={"cached": tokenised.cached}) == tokenised
