"""The small TFLite: int8 weights, MediaPipe's metadata, and the accuracy it keeps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pytest

from lstm_model.data.tokeniser import Tokeniser
from lstm_model.release.config import ExportConfig
from tests.helpers.tiny import TINY_MOBILE_EXPORT


@pytest.fixture(scope="module")
def exported(trained, tokenised, tmp_path_factory):  # type: ignore[no-untyped-def]
    from lstm_model.release.export import export_model

    out = tmp_path_factory.mktemp("mobile")
    return export_model(trained.model_path, tokenised.tokeniser_dir, out, 1, TINY_MOBILE_EXPORT)


@pytest.fixture(scope="module")
def test_split(ingested, evaluation):  # type: ignore[no-untyped-def]
    """The fixture's test texts, their labels and the Keras model's probabilities."""
    from lstm_model.data.ingest import load_reviews
    from lstm_model.evaluation.evaluate import PROBABILITIES_FILE

    table = load_reviews(ingested, columns=["split", "text", "label"])
    test = table.filter(pc.equal(table["split"], "test"))
    keras = np.load(evaluation.report_path.parent / PROBABILITIES_FILE).ravel()
    return test["text"].to_pylist(), test["label"].to_numpy(), keras


def test_the_vocabulary_carries_every_form_of_a_word() -> None:
    from lstm_model.data.config import TokeniserConfig
    from lstm_model.release.mobile import mediapipe_vocabulary

    words = ["[PAD]", "[UNK]", "dont", "do", "movies", "movie", "great", "its", "it", "cant"]
    vocabulary = mediapipe_vocabulary(Tokeniser(words, TokeniserConfig(vocab_size=10)))
    ids = dict(line.split(" ") for line in vocabulary.splitlines())
    assert list(ids)[:2] == ["<PAD>", "<UNKNOWN>"] and ids["<PAD>"] == "0"
    assert ids["<UNKNOWN>"] == "1"
    assert ids["don't"] == ids["Don't"] == ids["dont"] == "2"
    assert ids["movie's"] == ids["Movies"] == ids["movies"] == "4"
    assert ids["it's"] == ids["its"] == "7" and ids["Great"] == "6"
    assert ids["don’t"] == ids["Don’t"] == "2"  # the typographic apostrophe too
    assert ids["can't"] == ids["Can’t"] == ids["cant"] == "9"  # no stem "ca" needed
    assert "gre'at" not in ids and "GREAT" not in ids  # only real clitics, no upper case
    assert all(" " not in token for token in ids)  # one "<token> <id>" per line


def test_rows_move_to_mediapipe_layout() -> None:
    from lstm_model.release.mobile import mediapipe_rows

    ids = np.array([[0, 0, 5, 6], [7, 1, 8, 9], [0, 0, 0, 0]], dtype=np.int32)
    expected = [[5, 6, 0, 0], [7, 1, 8, 9], [0, 0, 0, 0]]
    assert mediapipe_rows(ids, "pre").tolist() == expected
    assert mediapipe_rows(ids, "post") is ids
    width = 7
    for n in range(width + 1):  # every count of words, not only half a row
        words = list(range(2, 2 + n))
        row = np.array([[0] * (width - n) + words], dtype=np.int32)
        assert mediapipe_rows(row, "pre").tolist() == [words + [0] * (width - n)], n


def test_mobile_file_is_quantised_and_single_subgraph(exported) -> None:  # type: ignore[no-untyped-def]
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(exported.mobile_path))
    (source,) = interpreter.get_input_details()
    (target,) = interpreter.get_output_details()
    assert source["shape"].tolist() == [1, 40] and source["dtype"] == np.int32
    assert source["shape_signature"].tolist() == [-1, 40]  # resizable for batch checks
    assert target["shape"].tolist() == [1, 2]
    assert interpreter.num_subgraphs() == 1  # MediaPipe runs single-subgraph models only
    weights = [t for t in interpreter.get_tensor_details() if t["dtype"] == np.int8]
    assert weights, "no int8 weights: the file is not quantised"


def test_mediapipe_text_classifier_reads_raw_text_like_the_model(
    exported, trained, tokenised, test_split
) -> None:  # type: ignore[no-untyped-def]
    from mediapipe.tasks.python.core.base_options import BaseOptions
    from mediapipe.tasks.python.text import TextClassifier, TextClassifierOptions

    from lstm_model.model.builders import load_model

    # Texts within the tiny model's 40 tokens: MediaPipe keeps a longer text's first words,
    # Tokeniser its last (a documented difference, measured on the default model).
    texts = [" ".join(text.split()[-20:]) for text in test_split[0]]
    tokeniser = Tokeniser.load(tokenised.tokeniser_dir)
    _, lengths = tokeniser.encode_with_lengths(texts)
    assert lengths.max() <= tokeniser.maxlen
    keras = load_model(trained.model_path).predict(tokeniser.encode(texts), verbose=0).ravel()
    options = TextClassifierOptions(
        base_options=BaseOptions(model_asset_path=str(exported.mobile_path))
    )
    with TextClassifier.create_from_options(options) as classifier:
        scores = []
        for text in texts:
            (head,) = classifier.classify(text).classifications
            by_label = {c.category_name: c.score for c in head.categories}
            assert set(by_label) == {"negative", "positive"}
            assert by_label["negative"] + by_label["positive"] == pytest.approx(1.0, abs=1e-5)
            scores.append(by_label["positive"])
    mediapipe = np.array(scores)
    agreement = np.mean((mediapipe >= 0.5) == (keras >= 0.5))
    diff = np.abs(mediapipe - keras)
    # MediaPipe tokenises by its own rules (no lower-casing, its delimiter pattern, words
    # first): the vocabulary and the model bridge them, so labels and scores stay close.
    assert agreement >= 0.97, agreement
    assert np.median(diff) < 0.01 and diff.max() < 0.1, (np.median(diff), diff.max())


def test_parity_reports_the_mobile_accuracy_and_rejects_a_drop(
    exported, tokenised, test_split
) -> None:  # type: ignore[no-untyped-def]
    from lstm_model.release.export import check_parity
    from lstm_model.release.mobile import check_mobile, mediapipe_rows, mobile_predict

    texts, labels, keras = test_split
    parity = check_parity(
        exported, tokenised.tokeniser_dir, texts, keras, 1e-4, labels=labels,
        accuracy_tolerance=TINY_MOBILE_EXPORT.mobile_accuracy_tolerance,
    )  # fmt: skip
    mobile = parity.mobile
    assert mobile is not None and mobile.n == 204 and parity.passed, parity.describe()
    tokeniser = Tokeniser.load(tokenised.tokeniser_dir)
    scores = mobile_predict(exported.mobile_path, mediapipe_rows(tokeniser.encode(texts), "pre"))
    assert mobile.mobile_accuracy == pytest.approx(np.mean((scores >= 0.5) == labels))
    assert mobile.keras_accuracy == pytest.approx(np.mean((keras >= 0.5) == labels))
    assert mobile.max_abs_diff == pytest.approx(np.max(np.abs(scores - keras)), abs=1e-6)
    assert mobile.max_abs_diff < 0.05  # int8 weights move scores a little, not labels
    assert "mobile TFLite" in parity.describe()

    # A model whose accuracy differs by more than the tolerance is refused.
    worse = check_mobile(exported.mobile_path, tokeniser, texts, labels, 1 - keras, 0.002)
    assert not worse.passed and abs(worse.mobile_accuracy - worse.keras_accuracy) > 0.002
    with pytest.raises(ValueError, match="labels"):
        check_parity(exported, tokenised.tokeniser_dir, texts, keras, 1e-4)


def test_the_mobile_file_can_be_turned_off(trained, tokenised, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from lstm_model.release.export import export_model

    config = ExportConfig(tflite_batch_size=16, mobile=False)
    result = export_model(trained.model_path, tokenised.tokeniser_dir, tmp_path, 1, config)
    assert result.mobile_path is None and not (tmp_path / "mobile.tflite").exists()
    assert result.tflite_path.is_file()


def test_a_failed_mobile_build_names_its_cause(tmp_path: Path) -> None:
    from lstm_model.errors import PipelineError
    from lstm_model.release.mobile import MobileBuild

    out = tmp_path / "mobile.tflite"
    build = MobileBuild(tmp_path / "missing.keras", tmp_path / "tokenizer", out)
    with pytest.raises(PipelineError, match="the mobile TFLite export failed") as failure:
        build.finish()
    assert "tokenizer" in str(failure.value)  # the child's own error, not a bare exit code
    assert list(tmp_path.iterdir()) == []  # neither the file nor a temporary one


def test_mediapipe_splits_and_looks_up_words_as_the_tokeniser_does(exported, tokenised) -> None:  # type: ignore[no-untyped-def]
    """On texts the bridge covers (case, clitics, markup after punctuation, quotes), the
    file gives the same scores from MediaPipe's tokenisation as from Tokeniser's ids."""
    from mediapipe.tasks.python.core.base_options import BaseOptions
    from mediapipe.tasks.python.text import TextClassifier, TextClassifierOptions

    from lstm_model.release.mobile import mediapipe_rows, mobile_predict

    tokeniser = Tokeniser.load(tokenised.tokeniser_dir)
    common = [w for w in tokeniser.vocabulary[2:40] if w.isalpha()][:12]
    texts = [
        "The film was great.<br /><br />I loved it, didn't you?",
        "It's a 'great' movie: the actors' work is THE best!<br/>Don't miss it.",
        "bad.<br>Worst film ever... I can't recommend it; it wasn't good",
        " ".join(word.title() for word in common),
        "'" + "', '".join(common) + "'",
    ]
    _, lengths = tokeniser.encode_with_lengths(texts)
    assert lengths.max() <= tokeniser.maxlen
    litert = mobile_predict(
        exported.mobile_path, mediapipe_rows(tokeniser.encode(texts), tokeniser.config.padding)
    )
    options = TextClassifierOptions(
        base_options=BaseOptions(model_asset_path=str(exported.mobile_path))
    )
    with TextClassifier.create_from_options(options) as classifier:
        mediapipe = np.array([
            {c.category_name: c.score for c in classifier.classify(t).classifications[0].categories}[
                "positive"
            ]
            for t in texts
        ])  # fmt: skip
    # "THE" is the one word left unbridged (capitals): the second text may differ a little
    close = np.abs(mediapipe - litert)
    assert np.delete(close, 1).max() < 1e-3, close
    assert close[1] < 0.05, close


def test_the_accuracy_rule_counts_whole_texts(exported, tokenised, test_split) -> None:  # type: ignore[no-untyped-def]
    from lstm_model.release.mobile import check_mobile, mediapipe_rows, mobile_predict

    texts, labels, _ = test_split
    tokeniser = Tokeniser.load(tokenised.tokeniser_dir)
    ids = tokeniser.encode(texts)
    mobile = mobile_predict(exported.mobile_path, mediapipe_rows(ids, "pre"))
    # a reference that gets exactly three texts wrong that the mobile file gets right
    keras = mobile.astype("float64")
    right = np.flatnonzero((mobile >= 0.5) == labels)[:3]
    keras[right] = np.where(labels[right] == 1, 0.1, 0.9)
    n = len(texts)
    assert check_mobile(exported.mobile_path, tokeniser, texts, labels, keras, 3 / n).passed
    assert not check_mobile(exported.mobile_path, tokeniser, texts, labels, keras, 2 / n).passed
    with pytest.raises(ValueError, match="one of each per text"):
        check_mobile(exported.mobile_path, tokeniser, texts, labels[:-1], keras, 0.1)
    # the ids the caller already has are the ones scored (no second encoding); ids that
    # are not one full row per text are refused
    given = check_mobile(exported.mobile_path, tokeniser, texts, labels, keras, 3 / n, ids=ids)
    encoded = check_mobile(exported.mobile_path, tokeniser, texts, labels, keras, 3 / n)
    assert given.model_dump(exclude={"seconds"}) == encoded.model_dump(exclude={"seconds"})
    blank = check_mobile(exported.mobile_path, tokeniser, texts, labels, keras, 3 / n,
                         ids=np.zeros_like(ids))  # fmt: skip
    assert blank.mean_abs_diff != encoded.mean_abs_diff
    for wrong in (ids[:-1], ids[:, 1:]):
        with pytest.raises(ValueError, match="one row of 40 ids per text"):
            check_mobile(exported.mobile_path, tokeniser, texts, labels, keras, 0.1, ids=wrong)


def test_an_lstm_too_long_to_unroll_is_refused_with_the_remedy(
    trained, tokenised, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    from lstm_model.errors import PipelineError
    from lstm_model.release.export import export_model

    config = ExportConfig(tflite_batch_size=16, tflite_unroll_max_steps=10)  # the LSTM reads 30
    with pytest.raises(PipelineError, match="30 steps, more than tflite_unroll_max_steps 10"):
        export_model(trained.model_path, tokenised.tokeniser_dir, tmp_path, 1, config)
    assert not (tmp_path / "mobile.tflite").exists()
    off = config.model_copy(update={"mobile": False})  # the float file alone stays a loop
    assert (
        export_model(trained.model_path, tokenised.tokeniser_dir, tmp_path, 1, off).mobile_path
        is None
    )
