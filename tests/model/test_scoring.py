"""Batch scoring of dropped files: formats, bad input, the ledger, kill and rerun, the flow."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import socket
import stat
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lstm_model.data import drops
from lstm_model.data.drops import REGULAR, NotRegular, iter_rows, open_regular
from lstm_model.data.tokeniser import Tokeniser
from lstm_model.release.registry import Registry
from lstm_model.scoring.config import ScoringConfig
from lstm_model.scoring.discovery import files_to_score
from lstm_model.scoring.folders import ScoringFolders
from lstm_model.scoring.infer import ScoringModel, load_scoring_model
from lstm_model.scoring.ledger import Ledger
from lstm_model.scoring.report import summarise_run
from lstm_model.scoring.sequential import score_file
from tests.helpers.scoring import ODD_OUTPUTS, ROOT, TEXTS, use_model, within

NOW = ScoringConfig(settle_seconds=0)


@pytest.fixture
def folders(tmp_path: Path) -> ScoringFolders:
    folders = ScoringFolders(root=tmp_path / "scoring")
    folders.create()
    return folders


def _run(folders: ScoringFolders, registry: Path, config: ScoringConfig = NOW) -> list:  # type: ignore[type-arg]
    return _score_inbox(folders, load_scoring_model(registry), config)


def _score_inbox(
    folders: ScoringFolders, champion: ScoringModel, config: ScoringConfig = NOW
) -> list:  # type: ignore[type-arg]
    todo = files_to_score(folders, config, champion.version)
    return [score_file(p, folders, champion, config) for p in todo]


def _expected(registry: Path, texts: list[str]) -> np.ndarray:
    from lstm_model.model.builders import load_model

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
    summary = summarise_run(outcomes, load_scoring_model(registry_with_champion), config,
                            folders.root / "report")  # fmt: skip
    assert (summary.rows_total, summary.rows_scored, summary.rows_rejected) == (9, 3, 6)
    assert summary.files == {"scored": 2, "skipped": 0, "quarantined": 1, "failed": 0}
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
    (failed,) = _run(folders, registry_with_champion)
    assert failed.status == "failed" and "OSError: killed (attempt 1 of 3" in failed.reason
    assert (folders.inbox / "a.txt").exists()  # not archived: the run did not finish it
    monkeypatch.undo()
    (outcome,) = _run(folders, registry_with_champion)
    assert outcome.status == "scored"
    assert [p.name for p in folders.results.iterdir()] == [outcome.result_path.name]
    assert pq.read_metadata(outcome.result_path).num_rows == 3


_SCORER = """
import sys, time
from pathlib import Path
from lstm_model.scoring.config import ScoringConfig
from lstm_model.scoring.discovery import files_to_score
from lstm_model.scoring.folders import ScoringFolders
from lstm_model.scoring.infer import load_scoring_model
from lstm_model.scoring.sequential import score_file
folders = ScoringFolders(root=Path(sys.argv[1]))
champion = load_scoring_model(Path(sys.argv[2]))
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
    champion = load_scoring_model(registry_with_champion)
    assert (
        champion.training_figures["oov_rate"] is not None
        and champion.training_figures["mean_chars"] > 500
    )
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

    champion = load_scoring_model(registry_with_champion)
    (folders.inbox / "a.txt").write_text("\n".join(TEXTS) + "\n")

    def broken_check(frame: pd.DataFrame) -> None:
        raise AttributeError("'NoneType' object has no attribute 'id'")  # the checker's bug

    failed = score_file(folders.inbox / "a.txt", folders, champion, NOW, check_input=broken_check)
    assert failed.status == "failed" and "AttributeError: 'NoneType'" in failed.reason
    assert (folders.inbox / "a.txt").exists() and list(folders.quarantine.iterdir()) == []

    def verdict(frame: pd.DataFrame) -> None:
        raise DataContractError("3 ids are not unique")

    outcome = score_file(folders.inbox / "a.txt", folders, champion, NOW, check_input=verdict)
    assert outcome.status == "quarantined"
    assert outcome.reason == "breaks the scoring_input contract: 3 ids are not unique"


# ------------------------------------------------------------------ a hostile inbox


def _sha(data: bytes | str) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def test_lone_surrogates_and_odd_ids_reject_their_rows_not_the_run(
    folders, registry_with_champion
) -> None:  # type: ignore[no-untyped-def]
    lines = [
        r'{"text": "\ud800"}',  # a JSON escape that is not valid Unicode
        '{"id": "a", "text": "A wonderful film."}',
        r'{"id": "\udc00", "text": "Fine."}',
        '{"id": {"nested": [1, 2]}, "text": "Fine."}',
        '{"id": true, "text": "Fine."}',
        '{"id": ' + "9" * 5000 + ', "text": "Fine."}',  # past Python's integer digit limit
        '{"id": 1e400, "text": "Good."}',
        '{"id": 123456789012345678901234567890, "text": "Good film."}',
        '{"id": 2.5, "text": "Bad film."}',
        r'{"text": "a NUL \u0000 is valid Unicode"}',
        '{"id": "' + "y" * 1500 + '", "text": "Long id."}',
    ]
    (folders.inbox / "s.jsonl").write_text("\n".join(lines) + "\n")
    (folders.inbox / "later.txt").write_text(TEXTS[0] + "\n")
    old = time.time() - 60  # s.jsonl first: a crash there would stop later.txt
    os.utime(folders.inbox / "s.jsonl", (old, old))
    outcomes = _run(folders, registry_with_champion)
    assert [(o.source_file, o.status) for o in outcomes] == [
        ("s.jsonl", "scored"),
        ("later.txt", "scored"),
    ]
    s = outcomes[0]
    assert (s.rows_total, s.rows_scored, s.rows_rejected) == (11, 5, 6)
    result = pq.read_table(s.result_path).to_pydict()
    assert result["id"] == ["a", "inf", "123456789012345678901234567890", "2.5", "s.jsonl:10"]
    rejects = {r["row_number"]: r for r in pq.read_table(s.rejects_path).to_pylist()}
    assert rejects[1]["reason"] == "not valid Unicode: lone surrogate at character 0"
    assert (rejects[1]["text"], rejects[1]["text_chars"]) == ("\\ud800", 1)
    assert rejects[1]["text_sha256"] == _sha(lines[0])  # the row as read: its line
    assert rejects[3]["reason"] == "id is not valid Unicode: lone surrogate at character 0"
    assert rejects[3]["id"] == "\\udc00"
    assert (rejects[4]["id"], rejects[4]["reason"]) == (
        "{'nested': [1, 2]}",
        "id is a dict, not a string or a number",
    )
    assert rejects[5]["reason"] == "id is a bool, not a string or a number"
    assert rejects[6]["reason"] == "invalid JSON: a number too long to read"
    assert len(rejects[6]["text"]) == 1000 and rejects[6]["text_chars"] == len(lines[5])
    assert rejects[11]["reason"] == "id has more than 1000 characters"
    assert len(rejects[11]["id"]) == 1000
    summary = summarise_run(outcomes, load_scoring_model(registry_with_champion), NOW,
                            folders.root / "report")  # fmt: skip
    assert "| 12 | 6 | 6 |" in summary.report_path.read_text()


def test_objects_that_are_not_regular_files_are_quarantined_once_unopened(  # type: ignore[no-untyped-def]
    folders, registry_with_champion, tmp_path, monkeypatch
) -> None:
    inbox = folders.inbox
    (tmp_path / "secret.txt").write_text("do not read me\n")
    os.mkfifo(inbox / "fifo.txt")
    monkeypatch.chdir(inbox)  # a socket's path must be short
    server = socket.socket(socket.AF_UNIX)
    server.bind("sock.txt")
    (inbox / "folder.csv").mkdir()
    (inbox / "folder.csv" / "inner.txt").write_text("inside\n")
    (inbox / "dangling.txt").symlink_to(tmp_path / "missing.txt")
    (inbox / "loop.txt").symlink_to(inbox / "loop.txt")
    (inbox / "outside.txt").symlink_to(tmp_path / "secret.txt")
    kinds = {
        "fifo.txt": "FIFO (named pipe)",
        "sock.txt": "socket",
        "folder.csv": "directory",
        "dangling.txt": "symbolic link",
        "loop.txt": "symbolic link",
        "outside.txt": "symbolic link",
    }
    if os.geteuid() == 0:  # only root may make device nodes
        os.mknod(inbox / "null.txt", stat.S_IFCHR | 0o600, os.makedev(1, 3))
        kinds["null.txt"] = "character device"
    (inbox / "good.txt").write_text(TEXTS[0] + "\n")
    with within(120):
        outcomes = {o.source_file: o for o in _run(folders, registry_with_champion)}
    server.close()
    assert outcomes["good.txt"].status == "scored"
    for name, kind in kinds.items():
        outcome = outcomes[name]
        assert (
            outcome.status == "quarantined" and f"not a regular file but a {kind}" in outcome.reason
        )
        sidecar = json.loads(Path(f"{outcome.quarantine_path}.json").read_text())
        assert (sidecar["kind"], sidecar["source_file"]) == (kind, name)
        assert os.path.lexists(outcome.quarantine_path) and not os.path.lexists(inbox / name)
    moved = outcomes["folder.csv"].quarantine_path
    assert (moved / "inner.txt").read_text() == "inside\n"  # moved whole, nothing read
    assert os.readlink(outcomes["outside.txt"].quarantine_path) == str(tmp_path / "secret.txt")
    assert (tmp_path / "secret.txt").read_text() == "do not read me\n"
    assert _run(folders, registry_with_champion) == []  # each reported once, not every run


def test_the_descriptor_is_checked_so_a_swap_after_the_listing_cannot_block(  # type: ignore[no-untyped-def]
    folders, registry_with_champion, monkeypatch, tmp_path
) -> None:
    real = tmp_path / "real.txt"
    real.write_text("text\n")
    (tmp_path / "link.txt").symlink_to(real)
    os.mkfifo(tmp_path / "fifo.txt")
    with within(30):
        for name, kind in (("fifo.txt", "FIFO"), ("link.txt", "symbolic link"), (".", "dir")):
            with pytest.raises(NotRegular, match=kind):
                open_regular(tmp_path / name)
        # the lstat check passes (as if the FIFO came after it): the descriptor still refuses
        os.mkfifo(folders.inbox / "swapped.txt")
        monkeypatch.setattr(drops, "object_kind", lambda mode: REGULAR)
        (outcome,) = _run(folders, registry_with_champion)
    assert outcome.status == "quarantined" and "FIFO" in outcome.reason


def test_a_huge_csv_field_rejects_its_row_not_the_file(folders, registry_with_champion) -> None:  # type: ignore[no-untyped-def]
    huge = "y" * 200_000
    rows = [f"{i},{TEXTS[i % 3]}" for i in range(10)]
    body = "id,text\n" + "\n".join(rows[:5]) + f'\nbig,"{huge}"\n' + "\n".join(rows[5:]) + "\n"
    (folders.inbox / "big.csv").write_text(body)
    (outcome,) = _run(folders, registry_with_champion)
    assert (outcome.status, outcome.rows_scored, outcome.rows_rejected) == ("scored", 10, 1)
    (rejected,) = pq.read_table(outcome.rejects_path).to_pylist()
    assert rejected == {
        "row_number": 6,
        "id": "big",
        "reason": "text has 200000 characters, more than 20000",
        "text": "y" * 1000,
        "text_chars": 200_000,
        "text_sha256": _sha(f'big,"{huge}"'),  # the row as read: its record
        "source_file": "big.csv",
        "source_sha256": outcome.sha256,
    }


def test_entries_whose_names_reduce_alike_keep_their_own_quarantine_record(
    folders, registry_with_champion
) -> None:  # type: ignore[no-untyped-def]
    for name in ("a b.docx", "a_b.docx", "a?b.docx"):  # one safe name, one content
        (folders.inbox / name).write_bytes(b"same bytes")
    outcomes = _run(folders, registry_with_champion)
    sidecars = {o.source_file: json.loads(Path(f"{o.quarantine_path}.json").read_text())
                for o in outcomes}  # fmt: skip
    assert {name: s["source_file"] for name, s in sidecars.items()} == {
        n: n for n in ("a b.docx", "a_b.docx", "a?b.docx")
    }
    assert len({o.quarantine_path for o in outcomes}) == 3
    assert all(o.quarantine_path.read_bytes() == b"same bytes" for o in outcomes)


@pytest.mark.parametrize("suffix", [".txt", ".jsonl"])
def test_a_line_over_max_row_bytes_is_rejected_with_its_offset_and_sha(  # type: ignore[no-untyped-def]
    folders, registry_with_champion, suffix: str
) -> None:
    config = ScoringConfig(settle_seconds=0, max_row_bytes=1024, reject_text_chars=50)
    long = "é" * 2500 if suffix == ".txt" else json.dumps({"text": "é" * 2500}, ensure_ascii=False)
    good = (
        [TEXTS[0], TEXTS[1]] if suffix == ".txt" else [json.dumps({"text": t}) for t in TEXTS[:2]]
    )
    (folders.inbox / f"long{suffix}").write_text(f"{good[0]}\n{long}\r\n{good[1]}\n")
    (outcome,) = _run(folders, registry_with_champion, config)
    assert (outcome.rows_total, outcome.rows_scored, outcome.rows_rejected) == (3, 2, 1)
    (rejected,) = pq.read_table(outcome.rejects_path).to_pylist()
    size, offset = len(long.encode()), len(good[0]) + 1
    assert rejected["row_number"] == 2
    assert rejected["reason"] == (
        f"row longer than 1024 bytes ({size} bytes from byte offset {offset}); "
        "the whole row is in the archived input"
    )
    assert (rejected["text"], rejected["text_chars"]) == (long[:50], len(long))
    assert rejected["text_sha256"] == _sha(long)  # of the row's bytes, line end excluded


def test_an_over_long_csv_record_is_skipped_to_its_real_end(
    folders, registry_with_champion
) -> None:  # type: ignore[no-untyped-def]
    config = ScoringConfig(settle_seconds=0, max_row_bytes=1024)
    header, first = "id,text\n", f"1,{TEXTS[0]}\n"
    quoted = '2,"' + 'a ""quoted"", b\n3,looks like a row\n' * 200 + 'end"'  # newlines inside
    (folders.inbox / "multi.csv").write_text(header + first + quoted + f"\n4,{TEXTS[1]}\n")
    (folders.inbox / "open.csv").write_text(header + first + '2,"never closed ' + "z" * 2000
                                            + f"\n5,{TEXTS[2]}\n")  # fmt: skip
    outcomes = {o.source_file: o for o in _run(folders, registry_with_champion, config)}
    multi, unclosed = outcomes["multi.csv"], outcomes["open.csv"]
    assert pq.read_table(multi.result_path)["id"].to_pylist() == ["1", "4"]  # no fake rows
    (rejected,) = pq.read_table(multi.rejects_path).to_pylist()
    assert rejected["row_number"] == 2 and rejected["text_sha256"] == _sha(quoted)
    assert f"from byte offset {len(header + first)})" in rejected["reason"]
    assert (unclosed.rows_total, unclosed.rows_scored, unclosed.rows_rejected) == (2, 1, 1)


def test_a_long_line_is_never_held_whole(tmp_path: Path) -> None:
    path = tmp_path / "one_line.txt"
    with path.open("wb") as handle:
        for _ in range(24):
            handle.write(b"z" * (1 << 20))
        handle.write(b"\nshort line\n")
    config = ScoringConfig(max_row_bytes=1 << 20)
    tracemalloc.start()
    try:
        with open_regular(path) as handle:
            (rows,) = iter_rows(handle, ".txt", "one_line.txt", config)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20  # a 24 MiB line read in 1 MiB pieces
    assert rows.texts == ["short line"] and rows.rejected[0].text_chars == 24 << 20


def test_a_failing_check_fails_the_file_until_max_attempts_then_quarantines_it(
    folders, registry_with_champion
) -> None:  # type: ignore[no-untyped-def]
    champion = load_scoring_model(registry_with_champion)
    config = ScoringConfig(settle_seconds=0, max_attempts=3)
    path = folders.inbox / "a.txt"
    path.write_text("\n".join(TEXTS) + "\n")

    def crash(frame: pd.DataFrame) -> None:
        raise RuntimeError("disk full")

    outcomes = []
    for attempt in (1, 2):
        outcomes.append(score_file(path, folders, champion, config, check_input=crash))
        assert outcomes[-1].status == "failed" and path.exists()
        assert f"RuntimeError: disk full (attempt {attempt} of 3;" in outcomes[-1].reason
    assert [f["attempts"] for f in Ledger(folders.ledger).failures()] == [2]
    third = score_file(path, folders, champion, config, check_input=crash)
    assert third.status == "failed" and "(attempt 3 of 3; the next run quarantines" in third.reason
    fourth = score_file(path, folders, champion, config, check_input=crash)  # read no more
    assert fourth.status == "quarantined" and not path.exists()
    assert fourth.reason == "scoring failed 3 runs in a row; last error: RuntimeError: disk full"
    assert Ledger(folders.ledger).failures() == []
    # a success in between starts the count again
    other = folders.inbox / "b.txt"
    other.write_text(TEXTS[0] + "\n")
    assert score_file(other, folders, champion, config, check_input=crash).status == "failed"
    scored = score_file(other, folders, champion, config)
    assert scored.status == "scored" and Ledger(folders.ledger).failures() == []
    summary = summarise_run([*outcomes, scored], champion, config, folders.root / "report")
    assert summary.files == {"scored": 1, "skipped": 0, "quarantined": 0, "failed": 2}
    assert (summary.rows_total, summary.rows_scored) == (1, 1)  # failed rows are not read
    assert "| 1 | 0 | 0 | 2 |" in summary.report_path.read_text()


def test_model_outputs_that_are_not_probabilities_reject_their_rows(  # type: ignore[no-untyped-def]
    folders, registry_with_champion, monkeypatch
) -> None:
    champion = use_model(monkeypatch, registry_with_champion, lambda n: ODD_OUTPUTS[:n, None])
    (folders.inbox / "six.txt").write_text("".join(f"text {i}\n" for i in range(6)))
    (outcome,) = _score_inbox(folders, champion)
    assert (outcome.status, outcome.rows_scored, outcome.rows_rejected) == ("scored", 2, 4)
    result = pq.read_table(outcome.result_path).to_pydict()
    assert result["row_number"] == [1, 6] and np.allclose(result["probability"], [0.2, 0.9])
    rejects = pq.read_table(outcome.rejects_path).to_pydict()
    assert rejects["row_number"] == [2, 3, 4, 5] and rejects["text"] == [
        f"text {i}" for i in range(1, 5)
    ]
    assert set(rejects["reason"]) == {"model output is not a probability"}


def test_a_wrong_number_of_model_outputs_fails_the_file(  # type: ignore[no-untyped-def]
    folders, registry_with_champion, monkeypatch
) -> None:
    champion = use_model(monkeypatch, registry_with_champion, lambda n: np.full(n - 1, 0.5))
    (folders.inbox / "a.txt").write_text("\n".join(TEXTS) + "\n")
    (outcome,) = _score_inbox(folders, champion)
    assert (
        outcome.status == "failed" and "the model gave 2 outputs for a batch of 3" in outcome.reason
    )
    assert (folders.inbox / "a.txt").exists() and list(folders.results.iterdir()) == []
    assert [f["attempts"] for f in Ledger(folders.ledger).failures()] == [1]


HOSTILE_NAMES = {
    b"new\nline.txt": "new\\nline.txt",
    b"cr\rreturn.txt": "cr\\rreturn.txt",
    b"ansi\x1b[31mred.txt": "ansi\\u001b[31mred.txt",
    b"pipe|*bold*_[link](x)<b>.txt": "pipe|*bold*_[link](x)<b>.txt",
    b"bad\xff\xfeutf8.txt": "bad\\xff\\xfeutf8.txt",
    b"back\\slash.txt": "back\\\\slash.txt",
    b"forged\n2024 INFO all good.docx": "forged\\n2024 INFO all good.docx",
}


def test_hostile_file_names_are_shown_one_way_everywhere(  # type: ignore[no-untyped-def]
    folders, registry_with_champion, caplog
) -> None:
    inbox = os.fsencode(folders.inbox)
    for i, raw in enumerate(HOSTILE_NAMES):
        with open(os.path.join(inbox, raw), "wb") as handle:
            handle.write(f"{TEXTS[i % 3]} {i}\n".encode())
    caplog.set_level(logging.INFO, logger="lstm_model")
    outcomes = _run(folders, registry_with_champion)
    assert sorted(o.source_file for o in outcomes) == sorted(HOSTILE_NAMES.values())
    for outcome in outcomes:
        if outcome.status == "scored":
            assert pq.read_table(outcome.result_path)["source_file"].to_pylist() == [
                outcome.source_file
            ]
    (quarantined,) = [o for o in outcomes if o.status == "quarantined"]
    sidecar = json.loads(Path(f"{quarantined.quarantine_path}.json").read_text())
    assert sidecar["source_file"] == "forged\\n2024 INFO all good.docx"
    stored = {e["source_file"] for e in Ledger(folders.ledger).entries()}
    assert stored == set(HOSTILE_NAMES.values()) - {quarantined.source_file}
    summary = summarise_run(outcomes, load_scoring_model(registry_with_champion), NOW,
                            folders.root / "report")  # fmt: skip
    report = summary.report_path.read_bytes().decode("utf-8")  # valid UTF-8
    rows = report.split("|---|---|---|---|---|---|\n")[1].splitlines()
    assert len(rows) == len(HOSTILE_NAMES)  # one table row per file: no line was forged
    assert all(line.count(" | ") == 5 for line in rows)  # of six cells each: no cell forged
    assert "| pipe\\|\\*bold\\*\\_\\[link\\](x)\\<b\\>.txt | scored |" in report
    for record in caplog.records:
        message = record.getMessage()
        assert not any(c in message for c in "\n\r\x1b") and message.encode("utf-8")


def test_outputs_are_readable_by_the_owner_only(
    folders, registry_with_champion, monkeypatch, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("LSTM_PIPELINE_FILE_MODE", raising=False)
    previous = os.umask(0o022)
    try:
        fresh = ScoringFolders(root=tmp_path / "fresh")
        fresh.create()
        (fresh.inbox / "rows.txt").write_text(f"{TEXTS[0]}\n   \n")
        (fresh.inbox / "bad.docx").write_text("no\n")
        outcomes = {o.source_file: o for o in _run(fresh, registry_with_champion)}
        summary = summarise_run(list(outcomes.values()), load_scoring_model(registry_with_champion),
                                NOW, fresh.root / "reports" / "now")  # fmt: skip
    finally:
        os.umask(previous)
    scored, bad = outcomes["rows.txt"], outcomes["bad.docx"]

    def mode(path: Path) -> int:
        return stat.S_IMODE(path.stat().st_mode)

    folders_made = [fresh.results, fresh.rejects, fresh.quarantine, fresh.archive,
                    fresh.staging, fresh.locks, fresh.root / "reports", summary.report_path.parent]  # fmt: skip
    assert {p.name: mode(p) for p in folders_made} == {p.name: 0o700 for p in folders_made}
    files = [scored.result_path, scored.rejects_path, *fresh.archive.iterdir(), fresh.ledger,
             bad.quarantine_path, Path(f"{bad.quarantine_path}.json"), summary.report_path,
             summary.report_path.with_name("summary.json"), summary.histogram_path]  # fmt: skip
    assert {p.name: mode(p) for p in files} == {p.name: 0o600 for p in files}
    assert mode(fresh.inbox) == 0o755  # the users' folder keeps the mode they gave it
