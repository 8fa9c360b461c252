from __future__ import annotations

import random
import threading

import keras
import numpy as np
import pytest

from lstm_model.model.builders import build_model
from lstm_model.model.config import BIDIRECTIONAL_MODEL, CLASSIC_MODEL, PRESETS, ModelConfig


def _layers(model: keras.Model) -> dict[str, keras.layers.Layer]:
    return {layer.name: layer for layer in model.layers}


def test_classic_preset_is_one_lstm_64_over_an_embedding_128() -> None:
    tokeniser, config = PRESETS["classic"]
    model = build_model(config, vocab_size=tokeniser.vocab_size, maxlen=tokeniser.maxlen, seed=0)
    layers = _layers(model)
    assert layers["embedding"].embeddings.shape == (10_000, 128)
    lstm = layers["lstm"]
    assert (lstm.units, lstm.dropout, lstm.recurrent_dropout) == (64, 0.2, 0.2)
    assert not lstm.return_sequences
    assert layers["probability"].activation.__name__ == "sigmoid"
    assert model.output_shape == (None, 1)


def test_bidirectional_variant_runs_two_lstms_of_one_config() -> None:
    model = build_model(BIDIRECTIONAL_MODEL, vocab_size=100, maxlen=20, seed=0)
    bilstm = _layers(model)["bilstm"]
    assert isinstance(bilstm, keras.layers.Bidirectional)
    assert bilstm.forward_layer.units == 64
    assert bilstm.forward_layer.recurrent_dropout == CLASSIC_MODEL.recurrent_dropout


SEEDED = {
    "bilstm": ModelConfig(
        units=4, embedding_dim=4, ngram_buckets=64, ngram_dropout=0.2, lstm_region_buckets=64,
        pooling="attention",
    ),
    "lstm_alone": ModelConfig(
        architecture="lstm", units=4, embedding_dim=4, ngram_order=0, dropout=0.1,
        recurrent_dropout=0.1,
    ),
    "trigrams": ModelConfig(
        units=4, embedding_dim=4, ngram_order=3, ngram_buckets=64, lstm_nbsvm_scores=True
    ),
}  # fmt: skip


@pytest.mark.parametrize("variant", SEEDED)
def test_the_seed_alone_fixes_the_initial_weights(
    variant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Python's global ``random`` is shared with every thread of the process: building a
    model must not draw from it (Keras's unseeded layers do, through ``randint``)."""
    me = threading.get_ident()
    randint = random.randint

    def guarded(a: int, b: int) -> int:
        assert threading.get_ident() != me, "a layer drew its seed from the global random"
        return randint(a, b)

    monkeypatch.setattr(random, "randint", guarded)
    config = SEEDED[variant]
    one = build_model(config, vocab_size=50, maxlen=10, seed=3)
    again = build_model(config, vocab_size=50, maxlen=10, seed=3)
    other = build_model(config, vocab_size=50, maxlen=10, seed=4)
    for a, b in zip(one.get_weights(), again.get_weights(), strict=True):
        assert np.array_equal(a, b)
    random_starts = [
        i for i, w in enumerate(one.get_weights()) if len(np.unique(w)) > 2
    ]  # the rest start constant: zeros, ones, the LSTM forget gates' ones
    assert random_starts
    for i in random_starts:
        assert not np.array_equal(one.get_weights()[i], other.get_weights()[i])
    dropouts = [layer.name for layer in one.layers if isinstance(layer, keras.layers.Dropout)]
    for name in dropouts:
        assert _layers(one)[name].seed == _layers(again)[name].seed != _layers(other)[name].seed


def test_the_two_directions_start_apart() -> None:
    bilstm = _layers(build_model(SEEDED["bilstm"], vocab_size=50, maxlen=10, seed=3))["bilstm"]
    assert not np.array_equal(
        bilstm.forward_layer.get_weights()[0], bilstm.backward_layer.get_weights()[0]
    )
    assert bilstm.backward_layer.go_backwards and not bilstm.forward_layer.go_backwards


def test_a_layer_starts_the_same_whichever_optional_layers_the_config_adds() -> None:
    plain = ModelConfig(units=4, embedding_dim=4, ngram_buckets=64, embedding_dropout=0.0)
    richer = plain.model_copy(update={"embedding_dropout": 0.3, "lstm_region_buckets": 64})
    one = _layers(build_model(plain, vocab_size=50, maxlen=10, seed=3))
    two = _layers(build_model(richer, vocab_size=50, maxlen=10, seed=3))
    assert "embedding_dropout" in two and "embedding_dropout" not in one
    for name in ("embedding", "ngram1_embedding", "ngram2_embedding", "lstm_logit", "ngram_logit"):
        assert np.array_equal(one[name].get_weights()[0], two[name].get_weights()[0])
    for a, b in zip(one["bilstm"].get_weights(), two["bilstm"].get_weights(), strict=True):
        assert np.array_equal(a, b)


@pytest.mark.parametrize(("pooling", "layer"), [("max", "max_pool"), ("mean", "mean_pool")])
def test_pooling_over_time(pooling: str, layer: str) -> None:
    model = build_model(ModelConfig(pooling=pooling), vocab_size=100, maxlen=20, seed=0)
    assert layer in _layers(model)
    assert _layers(model)["bilstm"].forward_layer.return_sequences


def test_default_pools_max_and_mean_together() -> None:
    tokeniser, config = PRESETS["default"]
    model = build_model(config, vocab_size=tokeniser.vocab_size, maxlen=tokeniser.maxlen, seed=0)
    layers = _layers(model)
    assert {"max_pool", "mean_pool", "max_mean_pool", "embedding_dropout"} <= set(layers)
    # 2 directions x 2 pools
    assert layers["max_mean_pool"].output.shape == (None, 4 * config.units)
    assert layers["bilstm"].forward_layer.recurrent_dropout == 0  # cuDNN-eligible on GPU


def test_sizes_and_dropouts_are_configuration() -> None:
    config = ModelConfig(embedding_dim=16, units=12, embedding_dropout=0.1, head_dropout=0.5)
    layers = _layers(build_model(config, vocab_size=300, maxlen=10, seed=0))
    assert layers["embedding"].embeddings.shape == (300, 16)
    assert layers["bilstm"].forward_layer.units == 12
    assert layers["embedding_dropout"].rate == 0.1 and layers["head_dropout"].rate == 0.5


def test_l2_adds_penalties() -> None:
    plain = build_model(ModelConfig(units=4, embedding_dim=4), vocab_size=50, maxlen=5, seed=0)
    penalised = build_model(
        ModelConfig(units=4, embedding_dim=4, l2=0.01), vocab_size=50, maxlen=5, seed=0
    )
    x = np.ones((2, 5), dtype="int32")
    plain(x)
    penalised(x)
    assert len(plain.losses) == 0 and len(penalised.losses) > 0


def test_outputs_are_probabilities() -> None:
    model = build_model(ModelConfig(units=4, embedding_dim=4), vocab_size=50, maxlen=7, seed=0)
    p = keras.ops.convert_to_numpy(model(np.random.default_rng(0).integers(0, 50, (9, 7))))
    assert p.shape == (9, 1) and ((p > 0) & (p < 1)).all()


@pytest.mark.parametrize(("backend", "expected"), [("jax", "False"), ("tensorflow", "auto")])
def test_fused_lstm_is_off_on_jax_only(backend: str, expected: str) -> None:
    """Keras 3.15's fused JAX LSTM does not generalise (measured on a GPU): JAX models ask
    for the generic kernel; other backends keep cuDNN eligible."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "from lstm_model.model.config import ModelConfig; from lstm_model.model.builders import build_model; "
        "m = build_model(ModelConfig(ngram_buckets=64), vocab_size=50, maxlen=10, seed=0); "
        "print(m.get_layer('bilstm').forward_layer.use_cudnn)"
    )
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": str(root)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=300)  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == expected


def test_use_cudnn_off_forces_the_generic_kernel() -> None:
    model = build_model(
        ModelConfig(use_cudnn=False, ngram_buckets=64), vocab_size=50, maxlen=10, seed=0
    )
    assert model.get_layer("bilstm").forward_layer.use_cudnn is False


def test_attention_pooling_weighs_only_the_steps_that_hold_words() -> None:
    from lstm_model.model.layers import AttentionPooling

    layer = AttentionPooling(4)
    rng = np.random.default_rng(0)
    states = rng.normal(size=(3, 6, 5)).astype("float32")
    ids = np.array([[0, 0, 0, 7, 8, 9], [1, 2, 3, 4, 5, 6], [0, 0, 0, 0, 0, 0]], "int32")
    out = keras.ops.convert_to_numpy(layer([states, ids]))
    changed = states.copy()
    changed[0, :3] = 100.0  # padding steps: must not matter
    again = keras.ops.convert_to_numpy(layer([changed, ids]))
    assert out.shape == (3, 5) and np.isfinite(out).all()
    assert np.allclose(out[0], again[0], atol=1e-6)
    assert np.allclose(out[2], states[2].mean(axis=0), atol=1e-5)  # all padding: uniform
    # A convex combination: every output lies within the states' own range.
    assert (out[1] <= states[1].max(axis=0) + 1e-6).all()
    assert (out[1] >= states[1].min(axis=0) - 1e-6).all()


def test_attention_pooling_is_a_pooling_choice() -> None:
    model = build_model(
        ModelConfig(pooling="attention", ngram_order=0), vocab_size=100, maxlen=20, seed=0
    )
    assert "attention_pool" in _layers(model)
    probabilities = model.predict(np.random.default_rng(1).integers(0, 100, (4, 20)), verbose=0)
    assert probabilities.shape == (4, 1) and ((probabilities > 0) & (probabilities < 1)).all()
