"""The n-gram branch of the default model: hashing, pooling, wiring."""

from __future__ import annotations

import itertools

import keras
import numpy as np
import pytest

from lstm_model.model.builders import branch_models, build_model
from lstm_model.model.config import PRESETS, ModelConfig
from lstm_model.model.layers import MAX_BUCKETS, HashedNgrams, LastSteps, MaskedMean


def _bigram_id(a: int, b: int, buckets: int) -> int:
    """The documented hash, in Python's unbounded ints (no overflow possible)."""
    return ((a % buckets) * 2039 + b % buckets) % buckets + 1


def _np(x: object) -> np.ndarray:
    return keras.ops.convert_to_numpy(x)


def test_bigram_ids_skip_padding_and_unknown_words() -> None:
    ids = np.array([[0, 0, 5, 6, 1, 7, 8, 5, 6]], dtype="int32")
    grams = _np(HashedNgrams(2, 1000)(ids))[0]
    assert grams.shape == (8,)
    # windows touching padding (0) or out-of-vocabulary (1) are "no n-gram"
    assert grams[[0, 1, 3, 4]].tolist() == [0, 0, 0, 0]
    assert grams[2] == grams[7] == _bigram_id(5, 6, 1000)  # same bigram, same id
    assert grams[5] == _bigram_id(7, 8, 1000)
    assert grams[2] != _bigram_id(6, 5, 1000)  # order matters


def test_hash_stays_exact_at_the_largest_ids() -> None:
    """int32 must not overflow for any id below the largest bucket count."""
    top = MAX_BUCKETS - 1
    ids = np.array([[top, top - 1, top, 50_000, 49_999]], dtype="int32")
    grams = _np(HashedNgrams(2, MAX_BUCKETS)(ids))[0]
    expected = [
        _bigram_id(int(a), int(b), MAX_BUCKETS)
        for a, b in zip(ids[0][:-1], ids[0][1:], strict=True)
    ]
    assert grams.tolist() == expected
    assert (grams >= 1).all() and (grams <= MAX_BUCKETS).all()
    trigrams = _np(HashedNgrams(3, MAX_BUCKETS)(ids))[0]
    assert ((trigrams >= 1) & (trigrams <= MAX_BUCKETS)).all()


@pytest.mark.parametrize(("order", "buckets"), [(1, 10), (4, 10), (2, 0), (2, MAX_BUCKETS + 1)])
def test_bad_ngram_settings_are_refused(order: int, buckets: int) -> None:
    with pytest.raises(ValueError, match=r"order|buckets"):
        HashedNgrams(order, buckets)


def test_masked_mean_ignores_empty_windows() -> None:
    vectors = np.arange(12, dtype="float32").reshape(1, 4, 3)
    ids = np.array([[0, 3, 0, 4]])
    mean = _np(MaskedMean()([vectors, ids]))
    assert np.allclose(mean, (vectors[0, 1] + vectors[0, 3]) / 2)
    assert np.allclose(_np(MaskedMean()([vectors, np.zeros((1, 4))])), 0)  # no division by 0


def test_last_steps_keeps_the_end_of_each_row() -> None:
    rows = np.arange(10).reshape(2, 5)
    assert _np(LastSteps(2)(rows)).tolist() == [[3, 4], [8, 9]]


def test_default_model_has_all_three_branches() -> None:
    tokeniser, config = PRESETS["default"]
    model = build_model(config, vocab_size=tokeniser.vocab_size, maxlen=tokeniser.maxlen, seed=0)
    layers = {layer.name: layer for layer in model.layers}
    assert layers["lstm_window"].steps == config.lstm_maxlen == 100
    assert layers["embedding"].embeddings.shape == (tokeniser.vocab_size, config.embedding_dim)
    assert layers["ngram1_embedding"].embeddings.shape == (tokeniser.vocab_size, config.ngram_dim)
    assert layers["ngram2_embedding"].embeddings.shape == (config.ngram_buckets + 1, 4)
    assert "ngram3_ids" not in layers
    assert layers["nbsvm_words"].embeddings.shape == (tokeniser.vocab_size, 1)
    assert layers["nbsvm_bigrams"].embeddings.shape == (config.ngram_buckets + 1, 1)
    assert not layers["nbsvm_words"].trainable  # fitted by liblinear, then frozen
    # ngram, lstm and nbsvm logits, summed until training fits the combiner
    assert layers["probability"].get_weights()[0].ravel().tolist() == [1.0, 1.0, 1.0]


def test_branch_models_share_the_full_model_s_layers() -> None:
    config = ModelConfig(units=4, embedding_dim=4, ngram_buckets=64, ngram_order=3)
    model = build_model(config, vocab_size=50, maxlen=12, seed=0)
    branches = branch_models(model)
    assert set(branches) == {"ngram", "lstm"}
    ngram_layers = {layer.name for layer in branches["ngram"].layers}
    assert {"ngram1_embedding", "ngram2_embedding", "ngram3_embedding"} <= ngram_layers
    assert "bilstm" not in ngram_layers and "bilstm" in {x.name for x in branches["lstm"].layers}
    assert branches["ngram"].get_layer("ngram_logit") is model.get_layer("ngram_logit")


def test_lstm_only_models_have_no_branches() -> None:
    for preset in ("classic", "bidirectional", "bilstm_pool"):
        tokeniser, config = PRESETS[preset]
        model = build_model(config, vocab_size=100, maxlen=tokeniser.maxlen, seed=0)
        assert branch_models(model) == {}
        assert not any(layer.name.startswith("ngram") for layer in model.layers)


def test_the_nbsvm_branch_reproduces_its_regression_and_exports(tokenised, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from pydantic import ValidationError

    from lstm_model.data.dataset import load_split
    from lstm_model.data.splits import stratified_split
    from lstm_model.data.tokeniser import Tokeniser
    from lstm_model.model.builders import NBSVM_LOGIT, load_model
    from lstm_model.release.export import check_parity, export_model
    from lstm_model.training.config import TrainConfig
    from lstm_model.training.fit import train_model
    from tests.helpers.tiny import TINY_EXPORT, TINY_MODEL

    with pytest.raises(ValidationError, match="nbsvm needs the two-branch model"):
        ModelConfig(nbsvm=True, ngram_order=0)
    assert ModelConfig(ngram_order=0).nbsvm is False and ModelConfig().nbsvm is True
    config = TINY_MODEL.model_copy(update={"nbsvm": True})
    train = TrainConfig(epochs=1, ngram_epochs=1, batch_size=32)
    result = train_model(tokenised, config, train, tmp_path / "run", verbose=0)
    assert len(result.history["combiner"]) == 4  # three logits and a bias
    model = load_model(result.model_path)
    x, y = load_split(tokenised, "train")
    _, validation = stratified_split(y, train.validation_fraction, train.seed)
    logit = keras.Model(model.inputs, model.get_layer(NBSVM_LOGIT).output)
    own = ((logit.predict(x[validation], verbose=0).ravel() > 0) == y[validation]).mean()
    # The frozen tables inside the model give exactly liblinear's validation accuracy,
    # after the other branches were trained around them.
    assert own == pytest.approx(result.history["nbsvm_val_accuracy"][0])
    assert not any(w.trainable for w in model.get_layer("nbsvm_bigrams").weights)
    texts = ["A fine, moving film.", "Dull and far too long.", "", "ok"] * 5
    expected = model.predict(Tokeniser.load(tokenised.tokeniser_dir).encode(texts), verbose=0)
    export = TINY_EXPORT
    exported = export_model(
        result.model_path, tokenised.tokeniser_dir, tmp_path / "export", 1, export
    )
    parity = check_parity(exported, tokenised.tokeniser_dir, texts, expected.ravel(), 1e-4)
    assert parity.passed, parity.describe()


def test_the_lstm_can_read_the_nbsvm_scores(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from pydantic import ValidationError

    from lstm_model.model.builders import load_model
    from lstm_model.release.export import tflite_bytes
    from lstm_model.release.litert import predict_rows
    from lstm_model.release.unroll import unrolled

    with pytest.raises(ValidationError, match="lstm_nbsvm_scores needs the NBSVM branch"):
        ModelConfig(lstm_nbsvm_scores=True, nbsvm=False)
    buckets, window = 64, 6
    config = ModelConfig(units=4, embedding_dim=4, ngram_buckets=buckets, lstm_maxlen=window,
                         lstm_nbsvm_scores=True)  # fmt: skip
    model = build_model(config, vocab_size=50, maxlen=12, seed=0)
    rng = np.random.default_rng(0)
    words = rng.normal(size=(50, 1)).astype("float32")
    bigrams = rng.normal(size=(buckets + 1, 1)).astype("float32")
    words[:2], bigrams[0] = 0.0, 0.0  # as fit_nbsvm leaves them: padding, unknown, no bigram
    model.get_layer("nbsvm_words").set_weights([words])
    model.get_layer("nbsvm_bigrams").set_weights([bigrams])
    ids = np.array([[0, 0, 0, 5, 6, 7, 8, 1, 9, 10, 11, 12]], dtype="int32")
    inputs = keras.Model(model.inputs, model.get_layer("lstm_inputs").output)
    steps = _np(inputs(ids))[0]
    assert steps.shape == (window, config.embedding_dim + 2)
    tail = ids[0, -window:]
    assert np.allclose(steps[:, -2], words[tail, 0])  # each word's own score
    pairs = [0] + [_bigram_id(int(a), int(b), buckets) if a > 1 and b > 1 else 0
                   for a, b in itertools.pairwise(tail)]  # fmt: skip
    # the score of the bigram each position ends; none at the first, none across id 1
    assert np.allclose(steps[:, -1], bigrams[pairs, 0])
    assert steps[0, -1] == steps[2, -1] == 0.0 and steps[3, -1] != 0.0
    lstm = branch_models(model)["lstm"]
    before = _np(lstm(ids))
    model.get_layer("nbsvm_words").set_weights([-words])
    assert not np.allclose(_np(lstm(ids)), before)  # the LSTM branch reads the scores
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = load_model(path)
    rows = rng.integers(0, 50, size=(8, 12)).astype("int32")
    expected = model.predict(rows, verbose=0).ravel()
    assert np.allclose(loaded.predict(rows, verbose=0).ravel(), expected, atol=1e-6)
    lite = tmp_path / "model.tflite"
    lite.write_bytes(tflite_bytes(unrolled(loaded, 1000), 8, 12))
    assert np.abs(predict_rows(lite, rows) - expected).max() < 1e-5


def test_a_trained_lstm_reads_the_fitted_nbsvm_scores(tokenised, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from lstm_model.data.dataset import load_split
    from lstm_model.model.builders import load_model
    from lstm_model.training.config import TrainConfig
    from lstm_model.training.fit import train_model
    from tests.helpers.tiny import TINY_MODEL

    config = TINY_MODEL.model_copy(update={"nbsvm": True, "lstm_nbsvm_scores": True})
    train = TrainConfig(epochs=1, ngram_epochs=1, batch_size=32)
    result = train_model(tokenised, config, train, tmp_path / "run", verbose=0)
    assert "loss" in result.history and "ngram_loss" in result.history  # both stages ran
    model = load_model(result.model_path)
    x, _ = load_split(tokenised, "train")
    steps = _np(keras.Model(model.inputs, model.get_layer("lstm_inputs").output)(x[:8]))
    window = x[:8, -steps.shape[1] :]
    words = model.get_layer("nbsvm_words").get_weights()[0][:, 0]
    assert np.allclose(steps[..., -2], words[window])  # the tables the LSTM stage read
    assert np.abs(steps[..., -2]).max() > 0  # fitted by liblinear, not the zeros they start at


def test_the_lstm_can_read_region_embeddings(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from lstm_model.model.builders import load_model
    from lstm_model.release.export import tflite_bytes
    from lstm_model.release.litert import predict_rows
    from lstm_model.release.unroll import unrolled

    buckets, window, width = 64, 6, 4
    config = ModelConfig(units=4, embedding_dim=width, ngram_buckets=128, lstm_maxlen=window,
                         lstm_region_buckets=buckets)  # fmt: skip
    model = build_model(config, vocab_size=50, maxlen=12, seed=0)
    ids = np.array([[0, 0, 0, 5, 6, 7, 8, 1, 9, 10, 11, 12]], dtype="int32")
    tail = ids[0, -window:]
    steps = _np(keras.Model(model.inputs, model.get_layer("lstm_regions").output)(ids))[0]
    words = model.get_layer("embedding").get_weights()[0]
    regions = model.get_layer("lstm_bigram_embedding").get_weights()[0]
    assert regions.shape == (buckets + 1, width)
    pairs = [0] + [_bigram_id(int(a), int(b), buckets) if a > 1 and b > 1 else 0
                   for a, b in itertools.pairwise(tail)]  # fmt: skip
    # the first step ends no bigram; a bigram with an unknown word (id 1) is id 0's vector
    expected = words[tail] + np.vstack([np.zeros(width), regions[pairs[1:]]])
    assert np.allclose(steps, expected, atol=1e-6)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = load_model(path)
    rows = np.random.default_rng(0).integers(0, 50, size=(8, 12)).astype("int32")
    expected_rows = model.predict(rows, verbose=0).ravel()
    assert np.allclose(loaded.predict(rows, verbose=0).ravel(), expected_rows, atol=1e-6)
    lite = tmp_path / "model.tflite"
    lite.write_bytes(tflite_bytes(unrolled(loaded, 1000), 8, 12))
    assert np.abs(predict_rows(lite, rows) - expected_rows).max() < 1e-5
