"""Keras Tuner search: cut equivalence, validation-only trials, resuming, named configs."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from lstm_model.data.config import TokeniserConfig
from lstm_model.data.dataset import load_split, tokenise_reviews
from lstm_model.errors import PipelineError
from lstm_model.training.config import SearchSpace, TrainConfig, TuningConfig
from lstm_model.training.named import load_named_config
from lstm_model.training.tuning import cut, run_search

ROOT = Path(__file__).resolve().parents[2]
SPACE = SearchSpace(
    units_min=4, units_max=8, maxlen_min=20, maxlen_max=40, maxlen_step=10,
    embedding_dims=(8,), vocab_sizes=(500, 2000),
)  # fmt: skip
TRAIN = TrainConfig(batch_size=32, epochs=1)


@pytest.fixture(scope="module")
def widest(ingested, tmp_path_factory):  # type: ignore[no-untyped-def]
    return tokenise_reviews(ingested, SPACE.widest_tokeniser(), tmp_path_factory.mktemp("tok"))


def test_a_cut_equals_tokenising_with_the_smaller_sizes(ingested, widest, tmp_path) -> None:  # type: ignore[no-untyped-def]
    small = tokenise_reviews(ingested, TokeniserConfig(vocab_size=500, maxlen=20), tmp_path)
    wide_ids, wide_labels = load_split(widest, "train")
    small_ids, small_labels = load_split(small, "train")
    assert np.array_equal(cut(wide_ids, 500, 20), small_ids)
    assert np.array_equal(wide_labels, small_labels)
    assert (wide_ids >= 500).any()  # the cut had something to do


def test_random_search_uses_the_validation_share_and_saves_the_best(widest, tmp_path) -> None:  # type: ignore[no-untyped-def]
    result = run_search(widest, SPACE, TuningConfig(max_trials=3, epochs=1), TRAIN, tmp_path)
    train_rows = len(load_split(widest, "train")[1])
    assert result.train_rows + result.validation_rows == train_rows  # the train split only
    assert result.validation_rows == round(0.1 * train_rows)
    scores = [t["val_accuracy"] for t in result.trials]
    assert len(scores) == 3 and scores == sorted(scores, reverse=True)
    assert {t["status"] for t in result.trials} == {"COMPLETED"}
    best = result.trials[0]
    saved = load_named_config(tmp_path, "tuned")
    assert saved == result.best and result.named_config_path.is_file()
    assert saved.provenance["val_accuracy"] == best["val_accuracy"]
    assert (saved.tokeniser.vocab_size, saved.tokeniser.maxlen) == (
        best["vocab_size"],
        best["maxlen"],
    )
    assert (saved.model.units, saved.model.architecture) == (best["units"], best["family"])
    assert saved.model.head_dropout == pytest.approx(best["dropout"])
    with pytest.raises(PipelineError, match=r"no named config 'other'.*saved ones: \['tuned'\]"):
        load_named_config(tmp_path, "other")


def test_a_narrower_tokenisation_is_refused(ingested, tmp_path) -> None:  # type: ignore[no-untyped-def]
    narrow = tokenise_reviews(ingested, TokeniserConfig(vocab_size=1000, maxlen=40), tmp_path)
    with pytest.raises(PipelineError, match="narrower than the search space"):
        run_search(narrow, SPACE, TuningConfig(max_trials=1), TRAIN, tmp_path)


def test_a_killed_search_continues_from_its_finished_trials(widest, tmp_path) -> None:  # type: ignore[no-untyped-def]
    config = TuningConfig(max_trials=3, epochs=2)
    script = (
        "import sys, json; from pathlib import Path;"
        "from lstm_model.data.dataset import TokenisedResult;"
        "from lstm_model.training.config import SearchSpace, TrainConfig, TuningConfig;"
        "from lstm_model.training.tuning import run_search;"
        "a = json.loads(sys.argv[1]);"
        "run_search(TokenisedResult.model_validate(a['tok']), SearchSpace(**a['space']),"
        " TuningConfig(**a['config']), TrainConfig(**a['train']), Path(a['ws']))"
    )
    args = json.dumps({"tok": widest.model_dump(mode="json"), "space": SPACE.model_dump(mode="json"),
                       "config": config.model_dump(), "train": TRAIN.model_dump(), "ws": str(tmp_path)})  # fmt: skip
    child = subprocess.Popen([sys.executable, "-c", script, args], cwd=ROOT, start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        while True:  # kill it once the first trial is done and the second has begun
            trials = sorted(tmp_path.glob("tuning/*/random/trial_*/trial.json"))
            states = [json.loads(p.read_text()).get("status") for p in trials]
            if states[:1] == ["COMPLETED"] and len(trials) >= 2:
                break
            assert child.poll() is None and time.monotonic() < deadline, states
            time.sleep(0.05)
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
    first = trials[0].read_text()
    project = trials[0].parent.parent
    kept = tmp_path / "oracle-before.json"
    os.link(project / "oracle.json", kept)  # a write in place would change this link's text too
    before = kept.read_text()
    result = run_search(widest, SPACE, config, TRAIN, tmp_path)
    assert trials[0].read_text() == first  # the finished trial was not run again
    assert len(result.trials) == 3 and {t["status"] for t in result.trials} == {"COMPLETED"}
    assert sorted(t["trial"] for t in result.trials) == ["0", "1", "2"]
    assert kept.read_text() == before != (project / "oracle.json").read_text()
    assert not list(project.glob("**/.*.tmp-*"))

    # Killed after a trial's file was written and before the oracle's: the oracle never
    # recorded that trial as started. It is run again, and takes no other trial's place.
    unrecorded = json.loads((project / "trial_2" / "trial.json").read_text())
    unrecorded.update(trial_id="3", status="RUNNING", score=None, metrics={"metrics": {}})
    (project / "trial_3").mkdir()
    (project / "trial_3" / "trial.json").write_text(json.dumps(unrecorded))
    (project / ".oracle.json.tmp-0123").write_text('{"cut sho')  # the oracle's write, cut
    more = run_search(widest, SPACE, config.model_copy(update={"max_trials": 4}), TRAIN, tmp_path)
    assert sorted(t["trial"] for t in more.trials) == ["0", "1", "2", "3"]
    assert {t["status"] for t in more.trials} == {"COMPLETED"}
    assert not list(project.glob("**/.*.tmp-*"))

    damaged = trials[1]
    damaged.write_text(damaged.read_text()[:40])  # as a write cut short by a kill would leave it
    with pytest.raises(PipelineError, match=rf"state file {re.escape(str(damaged))} is damaged"):
        run_search(widest, SPACE, config, TRAIN, tmp_path)


def test_hyperband_gives_trials_their_epochs(widest, tmp_path) -> None:  # type: ignore[no-untyped-def]
    config = TuningConfig(algorithm="hyperband", epochs=2, name="hb")
    result = run_search(widest, SPACE, config, TRAIN, tmp_path)
    assert result.trials and all(t["epochs"] in (1, 2) for t in result.trials)
    assert load_named_config(tmp_path, "hb").provenance["algorithm"] == "hyperband"
