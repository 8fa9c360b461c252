"""Batch scoring of dropped files: formats, bad input, the ledger, kill and rerun, the flow."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lstm_model.config import ScoringConfig
from lstm_model.registry import Registry
from lstm_model.scoring import (
    Ledger,
    ScoringFolders,
    files_to_score,
    load_champion,
    score_file,
    summarise_run,
)
from lstm_model.tokeniser import Tokeniser

ROOT = Path(__file__).resolve().parents[2]
TEXTS = [
    "A wonderful film, the acting was superb and I loved every minute.",
    "Terrible plot, wooden acting, a waste of two hours.",
    "It was fine. Nothing special but watchable.",
]
NOW = ScoringConfig(settle_seconds=0)


@pytest.fixture
def folders(tmp_path: Path) -> ScoringFolders:
    folders = ScoringFolders(root=tmp_path / "scoring")
    folders.create()
    return folders


def _run(folders: ScoringFolders, registry: Path, config: ScoringConfig = NOW) -> list:  # type: ignore[type-arg]
    champion = load_champion(registry)
    todo = files_to_score(folders, config, champion.version)
    return [score_file(p, folders, champion, config) for p in todo]


def _expected(registry: Path, texts: list[str]) -> np.ndarray:
    from lstm_model.model import load_model

    folder = Registry(registry).path(Registry(registry).champion())
    ids = Tokeniser.load(folder / "tokenizer").encode(texts)
    return load_model(folder / "model.keras").predict(ids, verbose=0).ravel()


def test_every_format_is_scored_like_the_model(folders, registry_with_champion) -> None:  # type: ignore[no-untyped-def]
    inbox = folders.inbox
    (inbox / "a.txt").write_bytes(b"\xef\xbb\xbf" + "\r\n".join(TEXTS).encode() + b"\r\n")
    pd.DataFrame({"id": ["x1", "x2", "x3"], "text": TEXTS}).to_csv(inbox / "b.csv", index=False)
    (inbox / "c.jsonl").write_text("\n".join(json.dumps({"text": t}) for t in TEXTS) + "\n")
    pq.write_table(pa.table({"id": [7, 8, 9], "text": TEXTS}), inbox / "d.parquet")
    outcomes = _run(folders, registry_with_champion)
    assert [o.status for o in outcomes] == ["scored"] * 4
    expected = _expected(registry_with_champion, TEXTS)
    for outcome in outcomes:
        result = pq.read_table(outcome.result_path).to_pandas()
        assert np.allclose(result["probability"], expected, atol=1e-6)
        assert (result["label"] == (result["probability"] >= 0.5)).all()
        assert set(result.columns) >= {"id", "probability", "label", "model_version",
                                       "scored_at", "source_file", "source_sha256"}  # fmt: skip
        assert (result["source_file"] == outcome.source_file).all()
    ids = {o.source_file: pq.read_table(o.result_path)["id"].to_pylist() for o in outcomes}
    assert ids == {
        "a.txt": ["a.txt:1", "a.txt:2", "a.txt:3"],  # BOM and CRLF: three clean lines
        "b.csv": ["x1", "x2", "x3"],
        "c.jsonl": ["c.jsonl:1", "c.jsonl:2", "c.jsonl:3"],
        "d.parquet": ["7", "8", "9"],
    }
    assert not list(inbox.iterdir()) and len(list(folders.archive.iterdir())) == 4


def test_column_names_are_configurable(folders, registry_with_champion) -> None:  # type: ignore[no-untyped-def]
    pd.DataFrame({"key": ["k1", "k2"], "review": TEXTS[:2]}).to_csv(
        folders.inbox / "custom.csv", index=False
    )
    config = ScoringConfig(settle_seconds=0, text_column="review", id_column="key")
    (outcome,) = _run(folders, registry_with_champion, config)
    assert pq.read_table(outcome.result_path)["id"].to_pylist() == ["k1", "k2"]


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("binary.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00", "binary content"),
        ("latin1.txt", "café crème".encode("latin-1"), "not valid UTF-8 at byte 3"),
        ("empty.txt", b"", "no rows"),
        ("notext.csv", b"id,body\n1,hello\n", "no 'text' column"),
        ("broken.parquet", b"PAR1 not really parquet", "unreadable Parquet"),
        ("notes.docx", b"whatever", "unsupported format .docx"),
    ],
)
def test_bad_files_are_quarantined_with_a_reason(  # type: ignore[no-untyped-def]
    folders, registry_with_champion, name: str, content: bytes, reason: str
) -> None:
    (folders.inbox / name).write_bytes(content)
    (folders.inbox / "good.txt").write_text(TEXTS[0] + "\n")
    outcomes = {o.source_file: o for o in _run(folders, registry_with_champion)}
    assert outcomes["good.txt"].status == "scored"  # the run goes on
    bad = outcomes[name]
    assert bad.status == "quarantined" and reason in bad.reason
    assert bad.quarantine_path.read_bytes() == content  # nothing lost
    sidecar = json.loads(Path(f"{bad.quarantine_path}.json").read_text())
    assert sidecar["source_file"] == name and reason in sidecar["reason"]
    assert not (folders.inbox / name).exists()


def test_symlinks_are_quarantined_not_followed(folders, registry_with_champion, tmp_path) -> None:  # type: ignore[no-untyped-def]
    outside = tmp_path / "secret.txt"
    outside.write_text("do not read me\n")
    (folders.inbox / "link.txt").symlink_to(outside)
    (outcome,) = _run(folders, registry_with_champion)
    assert outcome.status == "quarantined" and "symbolic links" in outcome.reason
    assert outside.read_text() == "do not read me\n" and outcome.quarantine_path.is_symlink()


def test_bad_rows_go_to_rejects_and_everything_reconciles(folders, registry_with_champion) -> None:  # type: ignore[no-untyped-def]
    config = ScoringConfig(settle_seconds=0, max_text_chars=200)
    inbox = folders.inbox
    (inbox / "rows.csv").write_text(
        "id,text\n1,Great movie\n2,   \n1,duplicate id here\n3," + "x" * 300 + "\n4,Bad film\n"
    )
    (inbox / "rows.jsonl").write_text('{"text": "fine"}\nnot json\n{"other": 1}\n\n')
    (inbox / "bad.txt").write_bytes(b"\xff\xfe\x00")
    outcomes = _run(folders, registry_with_champion, config)
    by_name = {o.source_file: o for o in outcomes}
    rejects = pq.read_table(by_name["rows.csv"].rejects_path).to_pandas()
    assert dict(zip(rejects["row_number"], rejects["reason"], strict=True)) == {
        2: "empty or blank text",
        3: "duplicate id '1'",
        4: "text has 300 characters, more than 200",
    }
    reasons = pq.read_table(by_name["rows.jsonl"].rejects_path)["reason"].to_pylist()
    assert reasons[0].startswith("invalid JSON") and reasons[1:] == [
        "no 'text' field",
        "empty or blank text",
    ]
    # every input row in exactly one place: results, rejects, or its whole file quarantined
    for outcome in outcomes:
        if outcome.status == "scored":
            scored = pq.read_metadata(outcome.result_path).num_rows
            rejected = pq.read_metadata(outcome.rejects_path).num_rows
            assert scored + rejected == outcome.rows_total
    assert (by_name["rows.csv"].rows_total, by_name["rows.jsonl"].rows_total) == (5, 4)
    summary = summarise_run(outcomes, load_champion(registry_with_champion), config,
                            folders.root / "report")  # fmt: skip
    assert (summary.rows_total, summary.rows_scored, summary.rows_rejected) == (9, 3, 6)
    assert summary.files == {"scored": 2, "skipped": 0, "quarantined": 1}
    assert summary.histogram_path.read_bytes()[:4] == b"\x89PNG"
    assert "| 9 | 3 | 6 |" in summary.report_path.read_text()


def test_same_content_is_scored_once_and_changes_are_new_work(
    folders, registry_with_champion
) -> None:  # type: ignore[no-untyped-def]
    (folders.inbox / "first.txt").write_text(TEXTS[0] + "\n")
    (first,) = _run(folders, registry_with_champion)
    (folders.inbox / "again.txt").write_text(TEXTS[0] + "\n")  # same bytes, other name
    (again,) = _run(folders, registry_with_champion)
    assert again.status == "skipped" and first.result_path.name in again.reason
    assert len(list(folders.results.iterdir())) == 1
    assert not (folders.inbox / "again.txt").exists()  # archived, nothing lost
    (folders.inbox / "first.txt").write_text(TEXTS[0] + "\n" + TEXTS[1] + "\n")  # changed
    (changed,) = _run(folders, registry_with_champion)
    assert changed.status == "scored" and changed.rows_scored == 2
    assert len(Ledger(folders.ledger).entries()) == 2


def test_rescore_is_explicit(folders, registry_with_champion, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import shutil

    (folders.inbox / "old.txt").write_text(TEXTS[1] + "\n")
    _run(folders, registry_with_champion)
    # a second champion (a copy of the first, promoted as version 2)
    registry = tmp_path / "registry"
    shutil.copytree(registry_with_champion, registry, symlinks=True)
    store = Registry(registry)
    store.register({"model.keras": store.path(1) / "model.keras",
                    "tokenizer": store.path(1) / "tokenizer",
                    "evaluation": store.path(1) / "evaluation"},
                   metadata={"metrics": store.manifest(1)["metrics"]})  # fmt: skip
    store.set_status(2, "accepted", "test")
    store.promote(2, "imdb_sentiment")
    assert _run(folders, registry) == []  # a new champion alone rescores nothing
    (rescored,) = _run(folders, registry, ScoringConfig(settle_seconds=0, rescore=True))
    assert rescored.status == "scored" and rescored.model_version == 2
    assert _run(folders, registry, ScoringConfig(settle_seconds=0, rescore=True)) == []
    assert sorted(p.name.split(".")[-2] for p in folders.results.iterdir()) == ["v1", "v2"]


def test_files_still_being_written_are_left_alone(folders, registry_with_champion) -> None:  # type: ignore[no-untyped-def]
    (folders.inbox / "fresh.txt").write_text(TEXTS[0] + "\n")
    (folders.inbox / "upload.txt.part").write_text(TEXTS[0] + "\n")
    (folders.inbox / ".hidden.txt").write_text(TEXTS[0] + "\n")
    assert _run(folders, registry_with_champion, ScoringConfig(settle_seconds=60)) == []
    old = time.time() - 120
    os.utime(folders.inbox / "fresh.txt", (old, old))
    (outcome,) = _run(folders, registry_with_champion, ScoringConfig(settle_seconds=60))
    assert outcome.source_file == "fresh.txt"
    assert {p.name for p in folders.inbox.iterdir()} == {"upload.txt.part", ".hidden.txt"}


def test_odd_file_names_never_escape_the_folders(folders, registry_with_champion) -> None:  # type: ignore[no-untyped-def]
    (folders.inbox / "évil ..\nname;rm -rf.txt").write_text(TEXTS[0] + "\n")
    (outcome,) = _run(folders, registry_with_champion)
    assert outcome.result_path.parent == folders.results
    assert all(c.isalnum() or c in "._-" for c in outcome.result_path.name)
    assert [p.parent for p in folders.archive.iterdir()] == [folders.archive]


def test_crash_before_the_ledger_commit_does_not_duplicate(  # type: ignore[no-untyped-def]
    folders, registry_with_champion, monkeypatch
) -> None:
    (folders.inbox / "a.txt").write_text("\n".join(TEXTS) + "\n")
    monkeypatch.setattr(Ledger, "record", lambda *_: (_ for _ in ()).throw(OSError("killed")))
    with pytest.raises(OSError, match="killed"):
        _run(folders, registry_with_champion)
    assert (folders.inbox / "a.txt").exists()  # not archived: the run did not finish it
    monkeypatch.undo()
    (outcome,) = _run(folders, registry_with_champion)
    assert outcome.status == "scored"
    assert [p.name for p in folders.results.iterdir()] == [outcome.result_path.name]
    assert pq.read_metadata(outcome.result_path).num_rows == 3


_SCORER = """
import sys, time
from pathlib import Path
from lstm_model.config import ScoringConfig
from lstm_model.scoring import ScoringFolders, files_to_score, load_champion, score_file
folders = ScoringFolders(root=Path(sys.argv[1]))
champion = load_champion(Path(sys.argv[2]))
config = ScoringConfig(settle_seconds=0, chunk_rows=50)
for path in files_to_score(folders, config, champion.version):
    score_file(path, folders, champion, config)
    print("done", path.name, flush=True)
"""


def test_killed_run_and_rerun_score_every_row_exactly_once(folders, registry_with_champion) -> None:  # type: ignore[no-untyped-def]
    rows = {f"f{i}.txt": [f"{TEXTS[i % 3]} (copy {i}-{j})" for j in range(400)] for i in range(6)}
    for name, texts in rows.items():
        (folders.inbox / name).write_text("\n".join(texts) + "\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", _SCORER, str(folders.root), str(registry_with_champion)],
        stdout=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    assert proc.stdout is not None
    assert proc.stdout.readline().startswith("done")  # one file finished, others pending
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert list(folders.inbox.iterdir())  # the kill left work undone
    outcomes = _run(folders, registry_with_champion)
    assert all(o.status == "scored" for o in outcomes)
    results = pd.concat(pq.read_table(p).to_pandas() for p in folders.results.glob("*.parquet"))
    assert len(results) == 6 * 400
    assert not results.duplicated(["source_file", "row_number"]).any()
    leftovers = [p for p in folders.root.rglob("*") if ".tmp-" in p.name]
    assert leftovers == [] and not list(folders.inbox.iterdir())


def test_report_warns_when_texts_drift_from_the_training_data(
    folders, registry_with_champion
) -> None:  # type: ignore[no-untyped-def]
    champion = load_champion(registry_with_champion)
    assert champion.reference["oov_rate"] is not None and champion.reference["mean_chars"] > 500
    (folders.inbox / "odd.txt").write_text("\n".join(f"qzxv{i} wqpz{i} zzkr" for i in range(50)))
    outcomes = _run(folders, registry_with_champion)
    summary = summarise_run(outcomes, champion, NOW, folders.root / "report")
    assert summary.oov_rate == 1.0
    text = " ".join(summary.warnings)
    assert "out-of-vocabulary rate 1.000 exceeds the training data's" in text
    assert "mean text length" in text and "more than 2.0x" in text
    assert "**Warning:** out-of-vocabulary" in summary.report_path.read_text()


def test_large_files_stream_in_chunks_with_the_same_outcome(
    folders, registry_with_champion
) -> None:  # type: ignore[no-untyped-def]
    lines = [f"{TEXTS[i % 3]} #{i}" for i in range(40)]
    csv_text = "id,text\n" + "".join(f"{i % 35},{t}\n" for i, t in enumerate(lines))  # 5 dups
    (folders.inbox / "whole.csv").write_text(csv_text)
    (whole,) = _run(folders, registry_with_champion)
    streamed_folders = ScoringFolders(root=folders.root.parent / "streamed")
    streamed_folders.create()
    (streamed_folders.inbox / "whole.csv").write_text(csv_text)
    (streamed,) = _run(streamed_folders, registry_with_champion,
                       ScoringConfig(settle_seconds=0, chunk_rows=7))  # fmt: skip
    assert (streamed.rows_scored, streamed.rows_rejected) == (whole.rows_scored, 5) == (35, 5)
    a, b = (pq.read_table(o.result_path).to_pandas() for o in (whole, streamed))
    assert a["id"].tolist() == b["id"].tolist()
    assert np.allclose(a["probability"], b["probability"], atol=1e-6)
    dups = pq.read_table(streamed.rejects_path)["row_number"].to_pylist()
    assert dups == [36, 37, 38, 39, 40]  # duplicates of ids first seen chunks earlier


def test_a_file_that_turns_bad_late_leaves_no_partial_result(
    folders, registry_with_champion
) -> None:  # type: ignore[no-untyped-def]
    good = "".join(f"{TEXTS[0]} {i}\n" for i in range(30)).encode()
    (folders.inbox / "late.txt").write_bytes(good + b"caf\xe9\n")
    (outcome,) = _run(
        folders, registry_with_champion, ScoringConfig(settle_seconds=0, chunk_rows=8)
    )
    assert outcome.status == "quarantined"
    assert f"not valid UTF-8 at byte {len(good) + 3}" in outcome.reason
    assert list(folders.results.iterdir()) == []  # the chunks already scored were discarded
    assert Ledger(folders.ledger).entries() == []


def test_only_a_contract_verdict_quarantines_a_file(folders, registry_with_champion) -> None:  # type: ignore[no-untyped-def]
    from lstm_model.errors import DataContractError

    champion = load_champion(registry_with_champion)
    (folders.inbox / "a.txt").write_text("\n".join(TEXTS) + "\n")

    def broken_check(frame: pd.DataFrame) -> None:
        raise AttributeError("'NoneType' object has no attribute 'id'")  # the checker's bug

    with pytest.raises(AttributeError):
        score_file(folders.inbox / "a.txt", folders, champion, NOW, check_input=broken_check)
    assert (folders.inbox / "a.txt").exists() and list(folders.quarantine.iterdir()) == []

    def verdict(frame: pd.DataFrame) -> None:
        raise DataContractError("3 ids are not unique")

    outcome = score_file(folders.inbox / "a.txt", folders, champion, NOW, check_input=verdict)
    assert outcome.status == "quarantined"
    assert outcome.reason == "breaks the scoring_input contract: 3 ids are not unique"
