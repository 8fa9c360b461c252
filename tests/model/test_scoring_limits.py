"""Scoring's limits under hostile input and failure: memory bounded per chunk, attempts that
kill the process, files replaced while scored, failures of the whole run, verified models
on every worker, row hashes that find a reject in the archive, and safe registry reads."""

from __future__ import annotations

import csv
import gc
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

from lstm_model.artifacts import NotRegularFile, open_regular
from lstm_model.data import drops as inbox
from lstm_model.data.drops import BadFile, Dropped, Rows, iter_rows
from lstm_model.errors import ArtifactError, DataContractError
from lstm_model.model import outputs
from lstm_model.model.builders import predict_ids
from lstm_model.release import canary
from lstm_model.release.registry import Registry
from lstm_model.scoring import infer, sequential
from lstm_model.scoring.config import ScoringConfig
from lstm_model.scoring.discovery import files_to_score
from lstm_model.scoring.folders import ScoringFolders
from lstm_model.scoring.infer import ScoringModel, load_scoring_model
from lstm_model.scoring.ledger import UNFINISHED, Ledger, SystemicFailure, settle_run
from lstm_model.scoring.parallel import commit_file, score_part, stage_file
from lstm_model.scoring.sequential import score_file
from tests.helpers.scoring import ODD_OUTPUTS, ROOT, TEXTS, StandInModel, use_model, within

NOW = ScoringConfig(settle_seconds=0)
MiB = 1 << 20


@pytest.fixture
def folders(tmp_path: Path) -> ScoringFolders:
    folders = ScoringFolders(root=tmp_path / "scoring")
    folders.create()
    return folders


@pytest.fixture
def champion(registry_with_champion: Path) -> ScoringModel:
    return load_scoring_model(registry_with_champion)


def _sha(data: bytes | str) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def _parquet(table: pa.Table, **options: object) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, **options)
    return sink.getvalue()


def _chunks(data: bytes, suffix: str, config: ScoringConfig = NOW) -> list[Rows]:
    return list(iter_rows(io.BytesIO(data), suffix, f"f{suffix}", config))


@contextmanager
def peak_memory() -> Iterator[dict[str, int]]:
    """Peak bytes allocated in the block: by Python (tracemalloc) and by Arrow (a proxy of
    its memory pool, so that Arrow's buffers, which tracemalloc cannot see, count too)."""
    peaks: dict[str, int] = {}
    previous = pa.default_memory_pool()
    arrow = pa.proxy_memory_pool(previous)
    gc.collect()
    pa.set_memory_pool(arrow)
    tracemalloc.start()
    try:
        yield peaks
    finally:
        peaks["python"] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        pa.set_memory_pool(previous)
        gc.collect()
        peaks["arrow"] = arrow.max_memory()


# --------------------------------------------------------- memory bounded per chunk


def test_a_dictionary_encoded_parquet_bomb_stays_small() -> None:
    # 3,000 rows of one 100 KB text: a 5 KB file that decodes to 300 MB
    copies = 3000
    bomb = pa.DictionaryArray.from_arrays(pa.array([0] * copies, pa.int32()), ["q" * 100_000])
    data = _parquet(pa.table({"text": bomb, "id": pa.array([str(i) for i in range(copies)])}))
    assert len(data) < 32_000
    with peak_memory() as peaks:
        chunks = _chunks(data, ".parquet")
    rejected = [r for rows in chunks for r in rows.rejected]
    assert len(rejected) == copies and not any(rows.ids for rows in chunks)
    assert {r.reason for r in rejected} == {"text has 100000 characters, more than 20000"}
    assert {(r.text_chars, len(r.text), r.text_sha256) for r in rejected} == {
        (100_000, 1000, _sha("q" * 100_000))
    }
    assert peaks["python"] < 8 * MiB and peaks["arrow"] < 8 * MiB, peaks


def test_jsonl_rows_of_nested_lists_are_dropped_as_read() -> None:
    # a 256 KiB line of empty lists is some 7 MB of Python objects once parsed
    line = ('{"text": [' + "[]," * 87_000 + "[]]}").encode()
    data = b"\n".join([line] * 20 + [b'{"text": "A fine film."}']) + b"\n"
    config = ScoringConfig(max_row_bytes=len(line))
    with peak_memory() as peaks:
        (rows,) = _chunks(data, ".jsonl", config)
    assert rows.texts == ["A fine film."] and len(rows.rejected) == 20
    assert rows.rejected[0].reason == "text is list, not a string"
    assert rows.rejected[0].text_sha256 == _sha(line)  # the line as read
    assert peaks["python"] < 24 * MiB, peaks  # one parsed line at a time, not twenty


def test_a_chunk_ends_at_its_byte_budget() -> None:
    texts = [f"{i:03d} " + "w" * 15_000 for i in range(60)]
    config = ScoringConfig(chunk_rows=1000, chunk_bytes=1 << 16)
    chunks = _chunks("\n".join(texts).encode(), ".txt", config)
    assert [t for rows in chunks for t in rows.texts] == texts  # in order, none lost
    assert [n for rows in chunks for n in rows.row_number] == list(range(1, 61))
    assert len(chunks) >= 12
    assert all(sum(sys.getsizeof(t) for t in rows.texts) < (1 << 16) + 16_000 for rows in chunks)


def test_parquet_that_is_not_text_or_too_big_is_refused_from_its_metadata() -> None:
    with pytest.raises(BadFile, match="the 'text' column holds int64, not text"):
        _chunks(_parquet(pa.table({"text": [1, 2]})), ".parquet")
    plain = _parquet(pa.table({"text": ["w" * 1000] * 2000}), use_dictionary=False)
    config = ScoringConfig(max_row_group_bytes=MiB)
    with pytest.raises(BadFile, match="more than max_row_group_bytes"):
        _chunks(plain, ".parquet", config)
    assert sum(len(rows.ids) for rows in _chunks(plain, ".parquet")) == 2000


def test_parquet_ids_are_measured_before_they_are_read() -> None:
    long_ids = pa.DictionaryArray.from_arrays(pa.array([0, 0], pa.int32()), ["y" * 50_000])
    table = pa.table({"text": ["Good.", "Bad."], "id": long_ids})
    (rows,) = _chunks(_parquet(table), ".parquet")
    assert [(r.id, r.reason) for r in rows.rejected] == [
        ("y" * 1000, "id has more than 1000 characters")
    ] * 2
    nested = pa.table({"text": ["Good."], "id": pa.array([list(range(100_000))])})
    (rows,) = _chunks(_parquet(nested), ".parquet")
    assert [(r.id, r.reason) for r in rows.rejected] == [
        ("f.parquet:1", "id is a list<element: int64>, not a string or a number")
    ]


def test_row_rules_keep_a_digest_of_each_id() -> None:
    checker = inbox._RowChecker("f.csv", NOW)
    chunk = inbox._Chunk()
    for row_id in ("a" * 1000, "b" * 1000, "a" * 1000):
        checker.take(inbox._Record(row_id, "A fine film."), chunk)
    assert [r.reason[:12] for r in chunk.done().rejected] == ["duplicate id"]
    assert checker.seen and {len(key) for key in checker.seen} == {16}


# ----------------------------------------------------------------- lines and fields


@pytest.mark.parametrize("read_buffer", [1, 2, 5, 1 << 20])
def test_txt_lines_end_at_cr_lf_or_crlf(monkeypatch: pytest.MonkeyPatch, read_buffer: int) -> None:
    monkeypatch.setattr(inbox, "_SNIFF_BYTES", 4)  # line ends fall across reads
    monkeypatch.setattr(inbox, "_READ_BUFFER", read_buffer)
    (rows,) = _chunks(b"one\rtwo\rthree\r", ".txt")
    assert rows.texts == ["one", "two", "three"]
    (rows,) = _chunks(b"\xef\xbb\xbfa\r\nb\rc\nd\r\r\ne", ".txt")
    assert rows.texts == ["a", "b", "c", "d", "e"]
    assert [(r.row_number, r.reason) for r in rows.rejected] == [(5, "empty or blank text")]


def test_the_process_wide_csv_field_limit_is_left_alone() -> None:
    before = csv.field_size_limit()
    data = ("id,text\n1,Fine.\n" + f'2,"{"y" * 200_000}"\n3,Good.\n').encode()
    chunks = iter_rows(io.BytesIO(data), ".csv", "f.csv", ScoringConfig(chunk_rows=1))
    first = next(chunks)  # the generator is suspended here, mid-file
    assert csv.field_size_limit() == before
    rest = list(chunks)
    assert csv.field_size_limit() == before
    assert [r.reason for rows in [first, *rest] for r in rows.rejected] == [
        "text has 200000 characters, more than 20000"
    ]
    with pytest.raises(ValidationError):
        ScoringConfig(max_row_bytes=1 << 40)


# ------------------------------------------------- a reject's hash finds its row


def test_a_rejects_hash_is_of_the_row_as_read_in_every_format(  # type: ignore[no-untyped-def]
    folders, registry_with_champion, monkeypatch
) -> None:
    champion = use_model(monkeypatch, registry_with_champion, lambda n: np.resize(ODD_OUTPUTS, n))
    rows = [f"{i},{TEXTS[i % 3]} #{i}" for i in range(6)] + ["6,   "]
    (folders.inbox / "a.csv").write_text("id,text\n" + "\r\n".join(rows) + "\r\n")
    lines = [json.dumps({"id": i, "text": f"{TEXTS[i % 3]} #{i}"}) for i in range(6)]
    (folders.inbox / "b.jsonl").write_text("\n".join([*lines, '{"text": 7}']) + "\n")
    (folders.inbox / "c.txt").write_text("\r".join(f"{TEXTS[i % 3]} #{i}" for i in range(7)))
    pq.write_table(pa.table({"text": [f"{TEXTS[0]} #{i}" for i in range(6)] + [None]}),
                   folders.inbox / "d.parquet")  # fmt: skip
    paths = files_to_score(folders, NOW, champion.version)
    outcomes = [score_file(p, folders, champion, NOW) for p in paths[:2]]
    for path in paths[2:]:  # the Dask path carries the hashes through its parts
        staged = stage_file(path, folders, champion, NOW)
        parts = [score_part(p, staged, champion, NOW) for p in staged.parts]
        outcomes.append(commit_file(staged, parts, folders, champion, NOW))
    for outcome in outcomes:
        assert outcome.status == "scored" and outcome.rows_total == 7
        (archived,) = folders.archive.glob(f"*{outcome.source_file}")
        if archived.suffix == ".parquet":
            cells = pq.read_table(archived)["text"].to_pylist()
            found = [(c or "").encode() for c in cells]
        else:
            content = archived.read_bytes()
            found = content.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
            found = found[1:] if archived.suffix == ".csv" else found
        rejects = pq.read_table(outcome.rejects_path).to_pylist()
        assert len(rejects) > 2  # the blank or null row, and outputs that are not probabilities
        for reject in rejects:
            assert reject["text_sha256"] == _sha(found[reject["row_number"] - 1]), reject


# ------------------------------------------------ attempts that kill the process

_KILLED = """
import os, signal, sys
from pathlib import Path
from lstm_model.scoring.config import ScoringConfig
from lstm_model.scoring.folders import ScoringFolders
from lstm_model.scoring.infer import load_scoring_model
from lstm_model.scoring.sequential import score_file
folders = ScoringFolders(root=Path(sys.argv[1]))
champion = load_scoring_model(Path(sys.argv[2]))

def die(frame):  # as the kernel's OOM killer would, mid-file
    os.kill(os.getpid(), signal.SIGKILL)

score_file(folders.inbox / "deadly.txt", folders, champion, ScoringConfig(settle_seconds=0),
           check_input=die)
"""


def test_an_attempt_that_kills_the_process_counts_and_ends_in_quarantine_unread(  # type: ignore[no-untyped-def]
    folders, registry_with_champion, champion, monkeypatch
) -> None:
    path = folders.inbox / "deadly.txt"
    path.write_text("\n".join(TEXTS) + "\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    killed = subprocess.run(
        [sys.executable, "-c", _KILLED, str(folders.root), str(registry_with_champion)],
        env=env, capture_output=True, timeout=300,
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL and path.exists()
    [failure] = Ledger(folders.ledger).failures()
    assert (failure["attempts"], failure["last_error"]) == (1, UNFINISHED)
    Ledger(folders.ledger).start_attempt(failure["sha256"], "deadly.txt", "another run")  # killed
    monkeypatch.setattr(sequential, "read_chunks", lambda *_: pytest.fail("read again"))
    config = ScoringConfig(settle_seconds=0, max_attempts=2)
    (outcome,) = [
        score_file(p, folders, champion, config) for p in files_to_score(folders, config, 1)
    ]
    assert outcome.status == "quarantined" and not path.exists()
    assert outcome.reason == f"scoring failed 2 runs in a row; last error: {UNFINISHED}"
    assert outcome.quarantine_path.read_text() == "\n".join(TEXTS) + "\n"
    assert Ledger(folders.ledger).failures() == []


def _crash(frame: pd.DataFrame) -> None:
    raise RuntimeError("the contract store is broken")


def test_copies_of_one_content_count_once_per_run(folders, champion) -> None:  # type: ignore[no-untyped-def]
    for name in ("a.txt", "b.txt", "c.txt"):
        (folders.inbox / name).write_text("\n".join(TEXTS) + "\n")
    a, b, c = sorted(folders.inbox.iterdir())
    for run in ("night 1", "night 2"):
        assert score_file(a, folders, champion, NOW, check_input=_crash, run=run).status == "failed"
        assert score_file(b, folders, champion, NOW, check_input=_crash, run=run).status == "failed"
        staged = stage_file(c, folders, champion, NOW, check_input=_crash, run=run)
        assert staged.outcome is not None and staged.outcome.status == "failed"
        assert [f["attempts"] for f in Ledger(folders.ledger).failures()] == [int(run[-1])]


def test_a_failing_commit_of_a_copy_counts_once_per_run(  # type: ignore[no-untyped-def]
    folders, registry_with_champion, monkeypatch
) -> None:
    champion = use_model(monkeypatch, registry_with_champion, lambda n: np.full(n - 1, 0.5))
    for name in ("a.txt", "b.txt"):
        (folders.inbox / name).write_text("\n".join(TEXTS) + "\n")
    outcomes = []
    for path in sorted(folders.inbox.iterdir()):
        staged = stage_file(path, folders, champion, NOW, run="one night")
        parts = [score_part(p, staged, champion, NOW) for p in staged.parts]
        outcomes.append(commit_file(staged, parts, folders, champion, NOW))
    assert [o.status for o in outcomes] == ["failed", "failed"]
    assert {o.cause for o in outcomes} == {"PipelineError"}
    assert [f["attempts"] for f in Ledger(folders.ledger).failures()] == [1]


# --------------------------------------------------- failures of the whole run


def test_a_run_that_fails_the_same_way_for_every_file_counts_nothing(  # type: ignore[no-untyped-def]
    folders, champion
) -> None:
    for i in range(3):
        (folders.inbox / f"f{i}.txt").write_text(f"{TEXTS[i]}\n")
    config = ScoringConfig(settle_seconds=0, max_attempts=1)
    for night in range(3):  # three nights of a broken store quarantine nothing
        run = f"night {night}"
        paths = files_to_score(folders, config, champion.version)
        outcomes = [score_file(p, folders, champion, config, check_input=_crash, run=run)
                    for p in paths]  # fmt: skip
        assert [o.status for o in outcomes] == ["failed"] * 3
        with pytest.raises(SystemicFailure, match=r"3 files failed the same way \(RuntimeError\)"):
            settle_run(outcomes, folders, run)
        assert Ledger(folders.ledger).failures() == []
    assert len(list(folders.inbox.iterdir())) == 3 and not list(folders.quarantine.iterdir())
    # a run in which a file is scored: the failures are the files' own, and they count
    (folders.inbox / "good.txt").write_text("Loved it.\n")
    paths = files_to_score(folders, config, champion.version)
    outcomes = [score_file(p, folders, champion, config, run="night 3",
                           check_input=None if p.name == "good.txt" else _crash) for p in paths]  # fmt: skip
    settle_run(outcomes, folders, "night 3")
    assert len(Ledger(folders.ledger).failures()) == 3


def test_a_result_whose_ledger_row_fails_is_withdrawn(  # type: ignore[no-untyped-def]
    folders, champion, monkeypatch
) -> None:
    (folders.inbox / "a.txt").write_text(f"{TEXTS[0]}\n   \n{TEXTS[1]}\n")

    def locked(*_: object) -> None:
        raise OSError("database is locked")

    monkeypatch.setattr(Ledger, "record", locked)
    (outcome,) = [score_file(p, folders, champion, NOW) for p in folders.inbox.iterdir()]
    assert outcome.status == "failed" and (folders.inbox / "a.txt").exists()
    assert list(folders.results.iterdir()) == [] and list(folders.rejects.iterdir()) == []


@pytest.fixture(scope="module")
def harness() -> Iterator[None]:
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def test_the_flow_fails_loudly_on_a_failure_of_the_whole_run(  # type: ignore[no-untyped-def]
    harness, registry_with_champion, tmp_path, monkeypatch
) -> None:
    import tasks.scoring
    from flows.score import score_inbox

    inbox_folder = tmp_path / "scoring" / "inbox"
    inbox_folder.mkdir(parents=True)
    for i in range(2):
        (inbox_folder / f"f{i}.txt").write_text(f"{TEXTS[i]}\n")
    monkeypatch.setattr(tasks.scoring, "_input_contract", lambda *_: _crash)
    with pytest.raises(SystemicFailure, match="2 files failed the same way"):
        score_inbox(workspace=tmp_path, registry=registry_with_champion, config=NOW)
    folders = ScoringFolders(root=tmp_path / "scoring")
    assert Ledger(folders.ledger).failures() == [] and len(list(inbox_folder.iterdir())) == 2
    assert list((folders.root / "reports").glob("*/report.md"))  # written before it failed


# --------------------------------------------- a file replaced while it is scored


def _replace(path: Path, content: str) -> None:
    fresh = path.with_name(".fresh.tmp")
    fresh.write_text(content)
    os.replace(fresh, path)


def test_a_file_replaced_while_scored_is_left_for_the_next_run(folders, champion) -> None:  # type: ignore[no-untyped-def]
    path = folders.inbox / "daily.csv"
    old = "id,text\n" + "".join(f"o{i},{TEXTS[i % 3]}\n" for i in range(5))
    new = "id,text\n" + "".join(f"n{i},{TEXTS[i % 3]} (new)\n" for i in range(4))
    path.write_text(old)

    def user_replaces_it(frame: pd.DataFrame) -> None:
        _replace(path, new)

    first = score_file(path, folders, champion, NOW, check_input=user_replaces_it)
    assert first.status == "scored" and first.rows_scored == 5
    assert path.read_text() == new and not list(folders.archive.iterdir())
    (second,) = [score_file(p, folders, champion, NOW) for p in files_to_score(folders, NOW, 1)]
    assert second.status == "scored" and second.sha256 == _sha(new)
    results = pd.concat(pq.read_table(p).to_pandas() for p in folders.results.iterdir())
    assert sorted(results["id"]) == sorted(
        [f"o{i}" for i in range(5)] + [f"n{i}" for i in range(4)]
    )
    assert [p.read_text() for p in folders.archive.iterdir()] == [new]
    assert not list(folders.inbox.iterdir())


def test_the_dask_path_and_quarantine_leave_a_replaced_file_too(folders, champion) -> None:  # type: ignore[no-untyped-def]
    path = folders.inbox / "daily.txt"
    path.write_text("\n".join(TEXTS) + "\n")
    staged = stage_file(path, folders, champion, NOW)
    parts = [score_part(p, staged, champion, NOW) for p in staged.parts]
    _replace(path, "Replaced between staging and the commit.\n")
    assert commit_file(staged, parts, folders, champion, NOW).status == "scored"
    assert path.read_text() == "Replaced between staging and the commit.\n"

    def verdict(frame: pd.DataFrame) -> None:
        _replace(path, "A third version, fine.\n")
        raise DataContractError("the ids are not unique")

    skipped = score_file(path, folders, champion, NOW, check_input=verdict)
    assert skipped.status == "skipped" and "replaced in the inbox" in skipped.reason
    assert path.read_text() == "A third version, fine.\n" and not list(folders.quarantine.iterdir())
    assert score_file(path, folders, champion, NOW).status == "scored"


# --------------------------------------------------------------- models checked


def test_a_worker_loads_only_the_model_its_manifest_names(  # type: ignore[no-untyped-def]
    registry_with_champion, folders, tmp_path, monkeypatch
) -> None:
    from lstm_model.model.builders import load_model

    registry = tmp_path / "registry"
    shutil.copytree(registry_with_champion, registry, symlinks=True)
    champion = load_scoring_model(registry)
    (folders.inbox / "a.txt").write_text("\n".join(TEXTS) + "\n")
    staged = stage_file(folders.inbox / "a.txt", folders, champion, NOW)
    # another valid model under the same name, after the flow checked the registry
    model_file = champion.folder / "model.keras"
    model = load_model(model_file)
    model.set_weights([w + 0.5 for w in model.get_weights()])
    model.save(model_file)
    infer._model_and_tokeniser.cache_clear()  # a fresh Dask worker's process
    (part,) = [score_part(p, staged, champion, NOW) for p in staged.parts]
    assert part.error is not None and "model.keras has sha256" in part.error
    assert "refusing a tampered model" in part.error
    assert commit_file(staged, [part], folders, champion, NOW).status == "failed"


def test_the_canary_runs_once_per_process(champion: ScoringModel, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    calls: list[str] = []
    real = infer.verify_canary
    monkeypatch.setattr(infer, "verify_canary", lambda *a: calls.append(a[3]) or real(*a))
    infer._model_and_tokeniser.cache_clear()
    rows = Rows([1], ["x"], [TEXTS[0]], [], [None])
    entry = Dropped(path=Path("x.txt"), name="x.txt", sha256="0" * 64)
    for _ in range(3):
        infer.score_rows(rows, champion, NOW, entry)
    assert calls == [f"model version {champion.version}"]


@pytest.mark.parametrize("count", [2, 4])
def test_a_wrong_number_of_outputs_is_an_error_never_padded(count: int) -> None:
    model = StandInModel(lambda n: np.full(n - 3 + count, 0.5))
    with pytest.raises(outputs.ModelOutputError, match=f"gave {count} outputs for a batch of 3"):
        predict_ids(model, np.zeros((3, 4), "int32"), batch_size=8)
    shaped = StandInModel(lambda n: np.full((n, 1), 0.25))
    assert predict_ids(shaped, np.zeros((5, 4), "int32"), batch_size=2).tolist() == [0.25] * 5
    assert canary.ModelOutputError is outputs.ModelOutputError
    assert canary.check_probabilities is outputs.check_probabilities


# ------------------------------------------------------- registry files read safely


@pytest.fixture
def registry_copy(registry_with_champion: Path, tmp_path: Path) -> Path:
    root = tmp_path / "registry"
    shutil.copytree(registry_with_champion, root, symlinks=True)
    return root


def test_a_fifo_or_a_link_in_place_of_a_manifest_is_refused(
    registry_copy: Path, tmp_path: Path
) -> None:
    version = registry_copy / "versions" / "1"
    outside = tmp_path / "outside.json"
    outside.write_bytes((version / "manifest.json").read_bytes())
    (version / "manifest.json").unlink()
    os.mkfifo(version / "manifest.json")
    (version / "status.json").unlink()
    os.mkfifo(version / "status.json")
    with within(30):
        with pytest.raises(ArtifactError, match="manifest is not a regular file but a FIFO"):
            Registry(registry_copy).manifest(1)
        with pytest.raises(ArtifactError, match=r"status\.json is not a regular file but a FIFO"):
            Registry(registry_copy).status(1)
        with pytest.raises(NotRegularFile, match="FIFO"):
            open_regular(version / "manifest.json")
    (version / "manifest.json").unlink()
    (version / "manifest.json").symlink_to(outside)
    with pytest.raises(ArtifactError, match="manifest is a link"):
        Registry(registry_copy).manifest(1)
    (version / "status.json").unlink()
    (version / "status.json").write_text(" " * (2 << 20) + "{}")
    with pytest.raises(ArtifactError, match="larger than"):
        Registry(registry_copy).status(1)
