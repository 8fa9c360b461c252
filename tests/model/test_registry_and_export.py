"""Registry (versions, manifest checks, promotion, rollback) and export parity."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import keras
import numpy as np
import pyarrow.compute as pc
import pytest

from lstm_model.data.config import TokeniserConfig
from lstm_model.data.ingest import load_reviews
from lstm_model.data.tokeniser import Tokeniser
from lstm_model.errors import ArtifactError
from lstm_model.release.export import _tf_encode, tflite_predict, unrolled
from lstm_model.release.promotion import (
    ParityFailed,
    export_candidate,
    register_candidate,
    rollback_champion,
)
from lstm_model.release.registry import Registry, RegistryError
from tests.helpers.tiny import TINY_EXPORT, TINY_MODEL, TINY_TRAIN

EXPORT = TINY_EXPORT


def _register(root: Path, trained, evaluation, tokenised) -> int:  # type: ignore[no-untyped-def]
    return register_candidate(
        root, trained, evaluation, tokenised, model_config=TINY_MODEL, train_config=TINY_TRAIN
    )


@pytest.fixture
def exported_version(registry_root, trained, evaluation, tokenised, ingested):  # type: ignore[no-untyped-def]
    version = _register(registry_root, trained, evaluation, tokenised)
    parity = export_candidate(registry_root, version, ingested, EXPORT)
    return version, parity


def test_versions_are_numbered_with_a_full_manifest(
    registry_root, trained, evaluation, tokenised
) -> None:  # type: ignore[no-untyped-def]
    first = _register(registry_root, trained, evaluation, tokenised)
    second = _register(registry_root, trained, evaluation, tokenised)
    assert (first, second) == (1, 2)
    manifest = Registry(registry_root).manifest(1)
    assert manifest["data"] == {
        "reviews_sha256": tokenised.reviews_sha256,
        "tokenised_sha256": tokenised.sha256,
        "vocab_sha256": tokenised.vocab_sha256,
    }
    assert manifest["metrics"]["accuracy"] == evaluation.metrics.accuracy
    assert manifest["config"]["model"] == TINY_MODEL.model_dump()
    assert {"model.keras", "tokenizer/vocab.txt", "evaluation/roc.png"} <= set(manifest["files"])
    assert {"python", "keras", "git_commit"} <= set(manifest["environment"])
    assert not list((registry_root / "versions").glob(".staging-*"))


def test_tampered_model_file_is_refused(registry_root, trained, evaluation, tokenised) -> None:  # type: ignore[no-untyped-def]
    version = _register(registry_root, trained, evaluation, tokenised)
    model = registry_root / "versions" / str(version) / "model.keras"
    model.write_bytes(model.read_bytes() + b"\0")
    with pytest.raises(
        ArtifactError, match=r"model\.keras has sha256 .* refusing a tampered model"
    ):
        Registry(registry_root).load_version(version)


def test_file_slipped_into_a_version_is_refused(
    registry_root, trained, evaluation, tokenised
) -> None:  # type: ignore[no-untyped-def]
    version = _register(registry_root, trained, evaluation, tokenised)
    (registry_root / "versions" / str(version) / "evaluation" / "extra.txt").write_text("x")
    with pytest.raises(ArtifactError, match="files not in the manifest"):
        Registry(registry_root).load_version(version)


def test_only_accepted_versions_are_promoted(registry_root, trained, evaluation, tokenised) -> None:  # type: ignore[no-untyped-def]
    version = _register(registry_root, trained, evaluation, tokenised)
    with pytest.raises(RegistryError, match="is candidate, not accepted"):
        Registry(registry_root).promote(version, "imdb_sentiment")
    assert Registry(registry_root).champion() is None


def test_export_parity_promotion_and_rollback(
    registry_root, trained, evaluation, tokenised, ingested
) -> None:  # type: ignore[no-untyped-def]
    registry = Registry(registry_root)
    v1 = _register(registry_root, trained, evaluation, tokenised)
    parity = export_candidate(registry_root, v1, ingested, EXPORT)
    assert parity.passed and parity.n == 204
    assert parity.saved_model_max_abs_diff <= 1e-4 and parity.tflite_max_abs_diff <= 1e-4
    registry.promote(v1, "imdb_sentiment")
    v2 = _register(registry_root, trained, evaluation, tokenised)
    export_candidate(registry_root, v2, ingested, EXPORT)
    registry.promote(v2, "imdb_sentiment")
    serving = registry_root / "serving" / "imdb_sentiment"
    assert registry.champion() == v2 and (serving / str(v2) / "saved_model.pb").is_file()
    assert registry.status(v1)["status"] == "retired"

    assert rollback_champion(registry_root, EXPORT) == v1
    assert registry.champion() == v1
    assert (serving / str(v1) / "saved_model.pb").is_file()
    listed = {v.version: v for v in registry.list_versions()}
    assert listed[v1].is_champion and listed[v1].status == "champion"
    assert "rolled back" in listed[v2].reason
    with pytest.raises(RegistryError, match="first champion: nothing to roll back"):
        rollback_champion(registry_root, EXPORT)


def test_parity_failure_rejects_the_version(
    registry_root, trained, evaluation, tokenised, ingested, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    registry = Registry(registry_root)
    # An evaluation whose Keras probabilities disagree with the model's, registered as is.
    disagreeing = tmp_path / "evaluation"
    shutil.copytree(evaluation.report_path.parent, disagreeing)
    probabilities = disagreeing / "test_probabilities.npy"
    np.save(probabilities, np.load(probabilities) + 0.01)
    moved = evaluation.model_copy(update={"report_path": disagreeing / evaluation.report_path.name})
    version = _register(registry_root, trained, moved, tokenised)
    with pytest.raises(ParityFailed, match=r"not promoted: parity on 204 texts: .* FAILED"):
        export_candidate(registry_root, version, ingested, EXPORT)
    assert registry.status(version)["status"] == "rejected"
    with pytest.raises(RegistryError, match="is rejected, not accepted"):
        registry.promote(version, "imdb_sentiment")


def test_tflite_model_uses_builtin_ops_with_embedded_weights(
    exported_version, registry_root
) -> None:  # type: ignore[no-untyped-def]
    from ai_edge_litert.interpreter import Interpreter

    version, _ = exported_version
    path = registry_root / "versions" / str(version) / "export" / "model.tflite"
    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    ops = {op["op_name"] for op in interpreter._get_ops_details()}
    assert not any(op.startswith("Flex") for op in ops)
    # The LSTM unrolled into its steps: no loop, whose state LiteRT copies at every step.
    assert "WHILE" not in ops and {"FULLY_CONNECTED", "TANH", "LOGISTIC"} <= ops
    assert "READ_VARIABLE" not in ops and "VAR_HANDLE" not in ops  # weights are constants
    assert interpreter.get_input_details()[0]["shape"].tolist() == [16, 40]


def _lstms(model: keras.Model) -> list[keras.layers.LSTM]:
    found = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.Bidirectional):
            found += [layer.forward_layer, layer.backward_layer]
        elif isinstance(layer, keras.layers.LSTM):
            found.append(layer)
    return found


def test_unrolling_changes_no_probability_and_leaves_the_model_as_it_was() -> None:
    from lstm_model.model.builders import build_model
    from lstm_model.model.config import ModelConfig

    sequential = keras.Sequential([keras.Input((40,), dtype="int32"),
                                   keras.layers.Embedding(300, 4), keras.layers.LSTM(3),
                                   keras.layers.Dense(1)])  # fmt: skip
    last_state = ModelConfig(architecture="lstm", units=4, embedding_dim=4, pooling="last")
    for model in (
        build_model(TINY_MODEL, vocab_size=300, maxlen=40, seed=0),  # BiLSTM on 30 of 40 steps
        build_model(last_state, vocab_size=300, maxlen=40, seed=0),
        sequential,
    ):
        clone = unrolled(model, max_steps=40)
        assert _lstms(clone) and all(layer.unroll for layer in _lstms(clone))
        assert not any(layer.unroll for layer in _lstms(model))

        # The same kind of variable in each place (a rebuilt Bidirectional's paths differ).
        assert [(w.name, tuple(w.shape)) for w in clone.weights] == [
            (w.name, tuple(w.shape)) for w in model.weights
        ]
        for mine, theirs in zip(clone.get_weights(), model.get_weights(), strict=True):
            np.testing.assert_array_equal(mine, theirs)
        ids = np.random.default_rng(0).integers(0, 300, size=(32, 40)).astype("int32")
        np.testing.assert_allclose(clone.predict_on_batch(ids), model.predict_on_batch(ids),
                                   atol=1e-6)  # fmt: skip
    tiny = build_model(TINY_MODEL, vocab_size=300, maxlen=40, seed=0)
    assert unrolled(tiny, max_steps=29) is tiny  # 30 steps: over the limit, it stays a loop
    dense = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    assert unrolled(dense, max_steps=40) is dense  # nothing to unroll


def test_saved_model_signature_takes_raw_text(exported_version, registry_root) -> None:  # type: ignore[no-untyped-def]
    import tensorflow as tf

    version, _ = exported_version
    folder = registry_root / "versions" / str(version) / "export" / "imdb_sentiment" / str(version)
    serve = tf.saved_model.load(str(folder)).signatures["serving_default"]
    out = serve(text=tf.constant(["A wonderful film.<br /><br />Loved it!", ""]))
    probabilities = out["probability"].numpy()
    assert probabilities.shape == (2,) and ((probabilities > 0) & (probabilities < 1)).all()


@pytest.mark.parametrize("padding", ["pre", "post"])
@pytest.mark.parametrize("truncating", ["pre", "post"])
def test_tensorflow_tokeniser_matches_the_python_one(
    ingested, padding: str, truncating: str
) -> None:
    import tensorflow as tf

    table = load_reviews(ingested)
    texts = [
        *table["text"].to_pylist(),
        "",
        "   ",
        "?!",
        "Don't <BR/>stop",
        "Café DÉJÀ-vu ÉLAN",
        "x" * 5,
        "word " * 100,
        "tab\there",
        "Straße İstanbul ΣΊΣΥΦΟΣ",
        "emoji 😀 fine",
        "snake_case",
    ]
    words = table.filter(pc.equal(table["split"], "train"))["text"]
    tokeniser = Tokeniser.fit(
        words, TokeniserConfig(vocab_size=3000, maxlen=30, padding=padding, truncating=truncating)
    )
    lookup = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(
            tf.constant(list(tokeniser.vocabulary[2:])),
            tf.range(2, len(tokeniser.vocabulary), dtype=tf.int64),
        ),
        default_value=tf.constant(1, tf.int64),
    )
    graph_ids = _tf_encode(tf.constant(texts), lookup, 30, padding, truncating).numpy()
    assert np.array_equal(graph_ids, tokeniser.encode(texts))


def test_tflite_runs_with_litert_alone(exported_version, registry_root, tokenised) -> None:  # type: ignore[no-untyped-def]
    version, _ = exported_version
    folder = registry_root / "versions" / str(version)
    ids = Tokeniser.load(folder / "tokenizer").encode(["great", "awful film", "x"] * 7)
    out = tflite_predict(folder / "export" / "model.tflite", ids)
    assert out.shape == (21,) and np.isfinite(out).all()
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["parity"]["passed"] and "export/model.tflite" in manifest["files"]


def test_export_that_died_half_way_is_redone(
    registry_root, trained, evaluation, tokenised, ingested
) -> None:  # type: ignore[no-untyped-def]
    version = _register(registry_root, trained, evaluation, tokenised)
    leftover = registry_root / "versions" / str(version) / "export" / "imdb_sentiment" / "1"
    leftover.mkdir(parents=True)
    (leftover / "saved_model.pb").write_bytes(b"half")
    parity = export_candidate(registry_root, version, ingested, EXPORT)
    assert parity.passed
    Registry(registry_root).load_version(version)  # the manifest now covers the new export


def test_an_attention_model_exports_with_parity(tokenised, reviews_frame, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from lstm_model.model.builders import build_model
    from lstm_model.release.export import check_parity, export_model

    config = TINY_MODEL.model_copy(update={"pooling": "attention"})
    tokeniser = Tokeniser.load(tokenised.tokeniser_dir)
    model = build_model(config, vocab_size=tokeniser.vocab_size, maxlen=tokeniser.maxlen, seed=0)
    model.save(tmp_path / "model.keras")
    texts = [*reviews_frame["text"].tolist()[:48], "", "ok"]
    expected = model.predict(tokeniser.encode(texts), verbose=0).ravel()
    exported = export_model(
        tmp_path / "model.keras", tokenised.tokeniser_dir, tmp_path / "export", 1, EXPORT
    )
    parity = check_parity(
        exported, tokenised.tokeniser_dir, texts, expected, EXPORT.parity_tolerance
    )
    assert parity.passed, parity.describe()
