"""The labelled inbox: files of labelled texts become spans exactly once, bad rows and bad
files are refused with their reasons, and splits never move."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from data_contracts import ContractViolation, validate_labelled_reviews
from lstm_model.data import labelled as labelled_module
from lstm_model.data.config import LabelledConfig
from lstm_model.data.labelled import labelled_folders, take_labelled
from lstm_model.data.spans import (
    ROWS_FILE,
    assemble_training_set,
    list_spans,
    load_span,
    restore,
    retire,
)
from lstm_model.data.splits import fixed_split, text_keys
from tests.helpers.labelled import labelled_rows, write_drop

NOW = LabelledConfig(settle_seconds=0)


def _inbox(workspace: Path) -> Path:
    return labelled_folders(workspace).inbox


def _rejects(workspace: Path) -> pd.DataFrame:
    files = sorted(labelled_folders(workspace).rejects.glob("*.parquet"))
    return pd.concat([pq.read_table(p).to_pandas() for p in files]) if files else pd.DataFrame()


def _sidecar(workspace: Path) -> dict:
    (sidecar,) = labelled_folders(workspace).quarantine.glob("*.json")
    return json.loads(sidecar.read_text())


def _check(workspace: Path):  # type: ignore[no-untyped-def]
    return lambda frame: validate_labelled_reviews(frame, workspace=workspace, max_text_chars=100)


def test_each_format_becomes_a_span_with_every_row_in_one_place(
    tmp_path: Path, ingested, reviews_frame: pd.DataFrame
) -> None:
    good = labelled_rows(reviews_frame, 30)
    good[0]["label"] = "Positive"
    good[1]["label"] = "NEGATIVE"
    good[2]["label"] = "1"
    good[3] |= {"domain": "support", "split": "TEST"}
    bad = [
        {"text": "Mediocre at best.", "label": "maybe"},
        {"text": "Fine, I guess.", "label": 2},
        {"text": "Loved it.", "label": 1, "split": "dev"},
        {"text": "Hated it.", "label": 0, "domain": "imdb"},
        {"text": "   ", "label": 1},
    ]
    write_drop(_inbox(tmp_path) / "shop.csv", good[:10] + bad)
    write_drop(_inbox(tmp_path) / "cafe.jsonl", good[10:20])
    write_drop(_inbox(tmp_path) / "Hotel Reviews.parquet", good[20:30])

    report = take_labelled(tmp_path, ingested, NOW, check=_check(tmp_path))

    assert [o.status for o in report.outcomes] == ["accepted"] * 3
    assert (report.rows_read, report.rows_accepted, report.rows_rejected) == (35, 30, 5)
    spans = list_spans(labelled_folders(tmp_path).root)
    assert sorted(s.source_file for s in spans) == [
        "Hotel Reviews.parquet",
        "cafe.jsonl",
        "shop.csv",
    ]
    rows = pd.concat(load_span(s).to_pandas() for s in spans)
    assert set(rows["domain"]) == {"shop", "support", "cafe", "hotel_reviews"}
    assert rows.loc[rows["text"] == good[3]["text"], "split"].item() == "test"
    assert rows.set_index("text").loc[good[0]["text"], "label"] == 1
    assert rows.set_index("text").loc[good[1]["text"], "label"] == 0
    # splits not given are fixed by the text's hash
    free = rows[rows["text"] != good[3]["text"]]
    assert list(free["split"]) == [fixed_split(k, 0.2) for k in text_keys(list(free["text"]))]
    rejected = _rejects(tmp_path)
    reasons = dict(zip(rejected["text"].str.strip(), rejected["reason"], strict=True))
    assert reasons == {
        "Mediocre at best.": "label 'maybe' is not 0, 1, negative or positive",
        "Fine, I guess.": "label '2' is not 0, 1, negative or positive",  # CSV: a string
        "Loved it.": "split 'dev' is not train or test",
        "Hated it.": "domain 'imdb' is reserved for the aclImdb reviews",
        "": "empty or blank text",
    }
    inbox = labelled_folders(tmp_path)
    assert not list(inbox.inbox.iterdir()) and len(list(inbox.archive.iterdir())) == 3


def test_conflicts_copies_and_leaks_are_rejected_with_their_reason(
    tmp_path: Path, ingested, reviews_frame: pd.DataFrame
) -> None:
    rows = labelled_rows(reviews_frame, 6)
    once = reviews_frame[~reviews_frame["text"].duplicated(keep=False)]  # in one split only
    imdb_test = once[once["split"] == "test"].iloc[0]
    imdb_train, again, flipped = (once[once["split"] == "train"].iloc[i] for i in range(3))
    drop = [
        *rows,
        {"text": rows[0]["text"].upper() + "!!", "label": 1 - rows[0]["label"]},  # conflict
        {"text": rows[1]["text"] + " ", "label": rows[1]["label"]},  # the same text again
        {"text": imdb_test["text"], "label": int(imdb_test["label"]), "split": "train"},
        {"text": imdb_train["text"], "label": int(imdb_train["label"]), "split": "test"},
        {"text": again["text"], "label": int(again["label"]), "split": "train"},
        {"text": flipped["text"], "label": 1 - int(flipped["label"]), "split": "train"},
    ]
    write_drop(_inbox(tmp_path) / "team.csv", drop)

    (outcome,) = take_labelled(tmp_path, ingested, NOW).outcomes

    assert (outcome.rows_read, outcome.rows_accepted, outcome.rows_rejected) == (12, 5, 7)
    reasons = _rejects(tmp_path).set_index("row_number")["reason"].to_dict()
    assert reasons == {
        1: "conflicting labels for the same text (rows 1, 7)",
        7: "conflicting labels for the same text (rows 1, 7)",
        8: "the same text as row 2",
        9: "would leak into evaluation: the same text is an aclImdb test review",
        10: "cannot be tested on: the same text is an aclImdb train review",
        11: "the same text is an aclImdb train review already",
        12: f"conflicts with label {int(flipped['label'])} of the same aclImdb train review",
    }

    # the same text in a later file: refused as already in the span, whatever its name
    write_drop(_inbox(tmp_path) / "again.jsonl", [rows[2], *labelled_rows(reviews_frame, 3, 50)])
    (again,) = take_labelled(tmp_path, ingested, NOW).outcomes
    assert again.status == "accepted" and again.rows_rejected == 1
    assert (
        _rejects(tmp_path).query("source_file == 'again.jsonl'")["reason"].item()
        == f"the same text is in span {outcome.span} already"
    )


def test_bad_files_are_quarantined_whole_with_the_reason(
    tmp_path: Path, ingested, reviews_frame: pd.DataFrame
) -> None:
    cases = {
        "notes.txt": "unsupported format .txt",
        "nolabel.csv": "no 'label' column",
        "allbad.jsonl": "every row was rejected (2 rows): 2 x label '?' is not 0, 1",
    }
    (_inbox(tmp_path) / "notes.txt").parent.mkdir(parents=True)
    (_inbox(tmp_path) / "notes.txt").write_text("good film\n")
    pd.DataFrame({"text": ["a fine film"], "score": [1]}).to_csv(
        _inbox(tmp_path) / "nolabel.csv", index=False
    )
    write_drop(_inbox(tmp_path) / "allbad.jsonl", [{"text": "x y", "label": "?"}] * 2)
    os.symlink("/etc/hostname", _inbox(tmp_path) / "link.csv")

    report = take_labelled(tmp_path, ingested, NOW)

    outcomes = {o.source_file: o for o in report.outcomes}
    assert {name: o.status for name, o in outcomes.items()} == dict.fromkeys(
        [*cases, "link.csv"], "quarantined"
    )
    for name, reason in cases.items():
        assert reason in (outcomes[name].reason or ""), outcomes[name].reason
    assert "not a regular file but a symbolic link" in (outcomes["link.csv"].reason or "")
    sidecars = [
        json.loads(p.read_text()) for p in labelled_folders(tmp_path).quarantine.glob("*.json")
    ]
    assert sorted(s["source_file"] for s in sidecars) == sorted([*cases, "link.csv"])
    assert list_spans(labelled_folders(tmp_path).root) == []


def test_a_drop_that_would_skew_the_labels_is_quarantined_with_the_numbers(
    tmp_path: Path, ingested, reviews_frame: pd.DataFrame
) -> None:
    positives = [r for r in labelled_rows(reviews_frame, 400) if r["label"] == 1]
    write_drop(_inbox(tmp_path) / "praise.csv", positives)
    config = LabelledConfig(settle_seconds=0, max_class_share=0.6, test_share=0.01)

    (outcome,) = take_labelled(tmp_path, ingested, config).outcomes

    assert outcome.status == "quarantined"
    assert "would make the training set" in (outcome.reason or "")
    assert "positive" in (outcome.reason or "") and "above max_class_share 60%" in (
        outcome.reason or ""
    )


def test_a_run_killed_after_the_span_is_published_archives_it_once_on_the_next(
    tmp_path: Path, ingested, reviews_frame: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_drop(_inbox(tmp_path) / "team.csv", labelled_rows(reviews_frame, 8))

    def killed(*_: object) -> None:
        raise SystemExit("killed")

    monkeypatch.setattr(labelled_module, "_archive", killed)
    with pytest.raises(SystemExit):
        take_labelled(tmp_path, ingested, NOW)
    monkeypatch.undo()
    assert [p.name for p in _inbox(tmp_path).iterdir()] == ["team.csv"]

    (outcome,) = take_labelled(tmp_path, ingested, NOW).outcomes

    assert outcome.status == "already accepted"
    (span,) = list_spans(labelled_folders(tmp_path).root)
    assert span.rows == 8 and outcome.span == span.id
    assert not list(_inbox(tmp_path).iterdir())
    # the same content dropped again under another name: no second span
    write_drop(_inbox(tmp_path) / "copy.csv", labelled_rows(reviews_frame, 8))
    (copy,) = take_labelled(tmp_path, ingested, NOW).outcomes
    assert copy.status == "already accepted" and len(list_spans(tmp_path / "labelled")) == 1


def test_the_contract_refuses_rows_that_break_it(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "id": ["a", "a"],
            "text": ["good", "bad"],
            "label": pd.array([1, 3], dtype="int8"),
            "domain": ["shop", "shop"],
            "split": ["train", "train"],
            "key": ["k1", "k2"],
            "source_file": ["f.csv", "f.csv"],
            "row_number": pd.array([1, 2], dtype="int64"),
        }
    )
    with pytest.raises(ContractViolation) as failed:
        validate_labelled_reviews(frame, workspace=tmp_path, max_text_chars=100)
    message = str(failed.value)
    assert "expect_column_values_to_be_in_set" in message and "label" in message
    assert "expect_column_values_to_be_unique" in message


def test_spans_retire_restore_and_an_altered_span_stops_training(
    tmp_path: Path, ingested, reviews_frame: pd.DataFrame
) -> None:
    root = labelled_folders(tmp_path).root
    assert assemble_training_set(ingested, tmp_path).version == ingested.sha256
    write_drop(_inbox(tmp_path) / "a.csv", labelled_rows(reviews_frame, 20))
    write_drop(_inbox(tmp_path) / "b.csv", labelled_rows(reviews_frame, 20, 100))
    take_labelled(tmp_path, ingested, NOW)
    a, b = list_spans(root)

    both = assemble_training_set(ingested, tmp_path)
    table = pq.read_table(both.reviews.path).to_pandas()
    span_rows = table[table["review_id"] < 0]
    train_a = (load_span(a).to_pandas()["split"] == "train").sum()
    train_b = (load_span(b).to_pandas()["split"] == "train").sum()
    assert len(span_rows) == train_a + train_b and set(span_rows["split"]) == {"train"}
    assert both.span_ids == [a.id, b.id] and both.version != ingested.sha256
    assert both.reviews.counts["test"] == ingested.counts["test"]  # test stays aclImdb's

    retire(root, a.id, "labelled by a broken script")
    only_b = assemble_training_set(ingested, tmp_path)
    assert only_b.span_ids == [b.id] and only_b.version not in (both.version, ingested.sha256)
    with pytest.raises(Exception, match=f"span {a.id} is retired already"):
        retire(root, a.id, "again")
    with pytest.raises(Exception, match="no span 'nope'"):
        retire(root, "nope", "?")
    restore(root, a.id, "fixed")
    assert assemble_training_set(ingested, tmp_path).version == both.version

    (b.folder / ROWS_FILE).write_bytes((b.folder / ROWS_FILE).read_bytes() + b"x")
    with pytest.raises(Exception, match=f"span {b.id} .* was altered or deleted on disk"):
        assemble_training_set(ingested, tmp_path)


def test_the_console_lists_retires_and_restores_spans(
    tmp_path: Path, ingested, reviews_frame: pd.DataFrame
) -> None:
    from typer.testing import CliRunner

    from cli.main import app

    def cli(*args: str):  # type: ignore[no-untyped-def]
        return CliRunner().invoke(app, [*args, "--workspace", str(tmp_path)])

    assert "no spans yet" in cli("data", "list").output
    write_drop(_inbox(tmp_path) / "shop.csv", labelled_rows(reviews_frame, 10))
    take_labelled(tmp_path, ingested, NOW)
    (span,) = list_spans(labelled_folders(tmp_path).root)

    listed = cli("data", "list").output
    assert f"{span.id}  active" in listed and "shop.csv" in listed and "shop: " in listed
    retired = cli("data", "retire", span.id, "--reason", "wrong labels")
    assert retired.exit_code == 0 and "the next retrain leaves its 10 rows out" in retired.output
    assert "retired" in cli("data", "list").output and "wrong labels" in cli("data", "list").output
    again = cli("data", "retire", span.id, "--reason", "twice")
    assert again.exit_code == 1 and f"error: span {span.id} is retired already" in again.output
    assert cli("data", "retire", "nope", "--reason", "?").exit_code == 1
    assert cli("data", "restore", span.id, "--reason", "fixed").exit_code == 0
    assert f"{span.id}  active" in cli("data", "list").output


def test_a_span_deleted_on_disk_stops_training_until_it_is_retired(
    tmp_path: Path, ingested, reviews_frame: pd.DataFrame
) -> None:
    root = labelled_folders(tmp_path).root
    write_drop(_inbox(tmp_path) / "a.csv", labelled_rows(reviews_frame, 10))
    take_labelled(tmp_path, ingested, NOW)
    (span,) = list_spans(root)
    shutil.rmtree(span.folder)

    with pytest.raises(Exception, match=f"span {span.id} was deleted on disk"):
        assemble_training_set(ingested, tmp_path)
    write_drop(_inbox(tmp_path) / "b.csv", labelled_rows(reviews_frame, 5, 200))
    with pytest.raises(Exception, match=f"span {span.id} was deleted on disk"):
        take_labelled(tmp_path, ingested, NOW)  # nothing is judged against a broken state
    assert retire(root, span.id, "lost in a disk failure") is None
    assert assemble_training_set(ingested, tmp_path).version == ingested.sha256
    with pytest.raises(Exception, match=f"span {span.id} was deleted on disk: it cannot be"):
        restore(root, span.id, "?")


def test_a_retired_span_whose_texts_came_again_is_not_restored(
    tmp_path: Path, ingested, reviews_frame: pd.DataFrame
) -> None:
    root = labelled_folders(tmp_path).root
    rows = labelled_rows(reviews_frame, 10)
    write_drop(_inbox(tmp_path) / "v1.csv", rows)
    take_labelled(tmp_path, ingested, NOW)
    (first,) = list_spans(root)
    retire(root, first.id, "mislabelled")
    relabelled = [{**r, "label": 1 - r["label"]} for r in rows]  # corrected, dropped again
    write_drop(_inbox(tmp_path) / "v2.csv", relabelled)
    (outcome,) = take_labelled(tmp_path, ingested, NOW).outcomes
    assert outcome.status == "accepted" and outcome.rows_accepted == 10

    with pytest.raises(Exception, match=f"span {first.id} shares 10 texts with active span"):
        restore(root, first.id, "by mistake")
