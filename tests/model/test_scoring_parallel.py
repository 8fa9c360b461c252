"""Scoring in parallel: staged parts, overlapping runs, and the flow on a local Dask cluster."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from flows.config import ScaleOutConfig
from lstm_model.scoring.config import ScoringConfig
from lstm_model.scoring.discovery import files_to_score
from lstm_model.scoring.folders import ScoringFolders
from lstm_model.scoring.infer import ScoringModel, load_scoring_model
from lstm_model.scoring.ledger import Ledger
from lstm_model.scoring.parallel import commit_file, score_part, stage_file
from lstm_model.scoring.sequential import score_file
from tests.helpers.scoring import ODD_OUTPUTS, ROOT, TEXTS, use_model, within

SMALL_CHUNKS = ScoringConfig(settle_seconds=0, chunk_rows=7)
# 40 rows: a blank text (row 3, id 2) and ids 0-4 again in rows 36-40: row 38 (id 2) is
# accepted, as id 2 was rejected before; the other four are duplicates
CSV = "id,text\n" + "".join(
    f"{i % 35},{' ' if i == 2 else TEXTS[i % 3] + f' #{i}'}\n" for i in range(40)
)


def _folders(root: Path) -> ScoringFolders:
    folders = ScoringFolders(root=root)
    folders.create()
    return folders


def _in_parts(path: Path, folders: ScoringFolders, champion: ScoringModel, config: ScoringConfig):  # type: ignore[no-untyped-def]
    staged = stage_file(path, folders, champion, config)
    scored = [score_part(p, staged, champion, config) for p in reversed(staged.parts)]
    return staged, commit_file(staged, scored[::-1], folders, champion, config)


def _leftovers(folders: ScoringFolders) -> list[Path]:
    return [p for p in folders.root.rglob("*") if ".tmp-" in p.name] + list(
        folders.staging.iterdir()
    )


def test_parts_give_the_same_result_as_streaming(registry_with_champion, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    champion = load_scoring_model(registry_with_champion)
    streamed, parted = _folders(tmp_path / "streamed"), _folders(tmp_path / "parted")
    for folders in (streamed, parted):
        (folders.inbox / "reviews.csv").write_text(CSV)
    whole = score_file(streamed.inbox / "reviews.csv", streamed, champion, SMALL_CHUNKS)
    staged, outcome = _in_parts(parted.inbox / "reviews.csv", parted, champion, SMALL_CHUNKS)
    assert len(staged.parts) == 6  # 40 rows read 7 at a time; 35 accepted in 6 parts
    assert (outcome.rows_total, outcome.rows_scored, outcome.rows_rejected) == (40, 35, 5)
    assert outcome.model_dump(exclude={"result_path", "rejects_path"}) == whole.model_dump(
        exclude={"result_path", "rejects_path"}
    )
    a, b = (pq.read_table(o.result_path).to_pandas() for o in (whole, outcome))
    assert b["row_number"].tolist() == a["row_number"].tolist()  # parts joined in file order
    assert b["id"].tolist() == a["id"].tolist()
    assert np.allclose(a["probability"], b["probability"], atol=1e-6)
    rejects = pq.read_table(outcome.rejects_path).to_pandas()
    assert rejects["row_number"].tolist() == [3, 36, 37, 39, 40]
    assert [e["rows_scored"] for e in Ledger(parted.ledger).entries()] == [35]
    assert [p.name for p in parted.archive.iterdir()] == [f"{outcome.sha256[:12]}-reviews.csv"]
    assert _leftovers(parted) == []


def test_a_killed_attempt_is_redone_and_its_parts_removed(
    registry_with_champion, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    champion = load_scoring_model(registry_with_champion)
    folders = _folders(tmp_path / "scoring")
    (folders.inbox / "reviews.csv").write_text(CSV)
    killed = stage_file(folders.inbox / "reviews.csv", folders, champion, SMALL_CHUNKS)
    score_part(killed.parts[0], killed, champion, SMALL_CHUNKS)  # then the run dies
    assert (folders.inbox / "reviews.csv").exists() and Ledger(folders.ledger).entries() == []
    _, outcome = _in_parts(folders.inbox / "reviews.csv", folders, champion, SMALL_CHUNKS)
    result = pq.read_table(outcome.result_path).to_pandas()
    assert len(result) == 35 and not result["row_number"].duplicated().any()
    assert list(folders.results.iterdir()) == [outcome.result_path]
    assert _leftovers(folders) == []  # the killed attempt's staging folder too


def test_of_two_overlapping_attempts_one_publishes(registry_with_champion, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    champion = load_scoring_model(registry_with_champion)
    folders = _folders(tmp_path / "scoring")
    path = folders.inbox / "reviews.csv"
    path.write_text(CSV)
    attempts = [stage_file(path, folders, champion, SMALL_CHUNKS) for _ in range(2)]
    scored = [[score_part(p, s, champion, SMALL_CHUNKS) for p in s.parts] for s in attempts]
    first = commit_file(attempts[0], scored[0], folders, champion, SMALL_CHUNKS)
    second = commit_file(attempts[1], scored[1], folders, champion, SMALL_CHUNKS)
    assert (first.status, second.status) == ("scored", "skipped")
    assert "already scored" in second.reason
    assert len(Ledger(folders.ledger).entries()) == 1
    assert len(pq.read_table(first.result_path)) == 35
    assert _leftovers(folders) == []


def test_staging_follows_the_same_rules_for_hostile_entries(
    registry_with_champion, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    champion = load_scoring_model(registry_with_champion)
    folders = _folders(tmp_path / "scoring")
    os.mkfifo(folders.inbox / "fifo.txt")
    (folders.inbox / "s.jsonl").write_text('{"text": "\\ud800"}\n{"text": "Fine film."}\n')
    with within(60):
        fifo = stage_file(folders.inbox / "fifo.txt", folders, champion, SMALL_CHUNKS)
    assert fifo.outcome is not None and fifo.outcome.status == "quarantined"
    assert "FIFO" in fifo.outcome.reason and not (folders.inbox / "fifo.txt").exists()
    assert commit_file(fifo, [], folders, champion, SMALL_CHUNKS) == fifo.outcome
    _, outcome = _in_parts(folders.inbox / "s.jsonl", folders, champion, SMALL_CHUNKS)
    assert (outcome.rows_scored, outcome.rows_rejected) == (1, 1)
    assert pq.read_table(outcome.rejects_path)["reason"].to_pylist() == [
        "not valid Unicode: lone surrogate at character 0"
    ]


def test_parts_reject_outputs_that_are_not_probabilities_like_streaming(  # type: ignore[no-untyped-def]
    registry_with_champion, tmp_path: Path, monkeypatch
) -> None:
    champion = use_model(monkeypatch, registry_with_champion, lambda n: np.resize(ODD_OUTPUTS, n))
    streamed, parted = _folders(tmp_path / "streamed"), _folders(tmp_path / "parted")
    for folders in (streamed, parted):
        (folders.inbox / "reviews.csv").write_text(CSV)
    whole = score_file(streamed.inbox / "reviews.csv", streamed, champion, SMALL_CHUNKS)
    _, outcome = _in_parts(parted.inbox / "reviews.csv", parted, champion, SMALL_CHUNKS)
    assert outcome.rows_rejected > 5 and outcome.rows_scored + outcome.rows_rejected == 40
    assert outcome.model_dump(exclude={"result_path", "rejects_path"}) == whole.model_dump(
        exclude={"result_path", "rejects_path"}
    )
    a, b = (pq.read_table(o.rejects_path).to_pandas() for o in (whole, outcome))
    assert sorted(a["row_number"]) == sorted(b["row_number"])
    assert (b["reason"] == "model output is not a probability").sum() == outcome.rows_rejected - 5


def test_a_part_that_fails_fails_the_file_and_leaves_nothing(  # type: ignore[no-untyped-def]
    registry_with_champion, tmp_path: Path, monkeypatch
) -> None:
    champion = use_model(monkeypatch, registry_with_champion, lambda n: np.full(n - 1, 0.5))
    folders = _folders(tmp_path / "scoring")
    (folders.inbox / "reviews.csv").write_text(CSV)
    staged, outcome = _in_parts(folders.inbox / "reviews.csv", folders, champion, SMALL_CHUNKS)
    assert outcome.status == "failed" and "6 of 6 parts failed; first: ModelOutputError" in (
        outcome.reason
    )
    assert (folders.inbox / "reviews.csv").exists() and list(folders.results.iterdir()) == []
    assert _leftovers(folders) == [] and not staged.staging.exists()
    assert [f["attempts"] for f in Ledger(folders.ledger).failures()] == [1]


_SCORER = """
import sys
from pathlib import Path
from lstm_model.scoring.config import ScoringConfig
from lstm_model.scoring.discovery import files_to_score
from lstm_model.scoring.folders import ScoringFolders
from lstm_model.scoring.infer import load_scoring_model
from lstm_model.scoring.sequential import score_file
folders = ScoringFolders(root=Path(sys.argv[1]))
champion = load_scoring_model(Path(sys.argv[2]))
config = ScoringConfig(settle_seconds=0, chunk_rows=50)
todo = files_to_score(folders, config, champion.version)
print("listed", len(todo), flush=True)
sys.stdin.readline()  # both runs have listed the same files before either scores
for path in todo:
    print(score_file(path, folders, champion, config).status, flush=True)
"""


def test_two_runs_at_once_score_each_file_once(registry_with_champion, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folders = _folders(tmp_path / "scoring")
    for i in range(6):
        lines = [f"{TEXTS[i % 3]} (copy {i}-{j})" for j in range(300)]
        (folders.inbox / f"f{i}.txt").write_text("\n".join(lines) + "\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", _SCORER, str(folders.root), str(registry_with_champion)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(2)
    ]
    assert [r.stdout.readline().strip() for r in runs] == ["listed 6", "listed 6"]  # type: ignore[union-attr]
    outputs = [r.communicate("go\n", timeout=300)[0].split() for r in runs]
    assert [r.returncode for r in runs] == [0, 0]
    statuses = outputs[0] + outputs[1]
    assert statuses.count("scored") == 6 and statuses.count("skipped") == 6
    results = pd.concat(pq.read_table(p).to_pandas() for p in folders.results.glob("*.parquet"))
    assert len(results) == 6 * 300
    assert not results.duplicated(["source_file", "row_number"]).any()
    assert len(Ledger(folders.ledger).entries()) == 6
    assert list(folders.inbox.iterdir()) == [] and len(list(folders.archive.iterdir())) == 6


# ----------------------------------------------------------------- the flow on Dask


def _mixed_inbox(inbox: Path) -> None:
    inbox.mkdir(parents=True, exist_ok=True)
    (inbox / "big.txt").write_text("".join(f"{TEXTS[i % 3]} #{i}\n" for i in range(230)))
    (inbox / "reviews.csv").write_text(CSV)
    (inbox / "copy1.txt").write_text("Loved it.\nHated it.\n\n")
    (inbox / "copy2.txt").write_text("Loved it.\nHated it.\n\n")
    (inbox / "binary.txt").write_bytes(b"\x00\x01binary")
    os.mkfifo(inbox / "pipe.txt")  # quarantined at staging, never opened


def test_flow_on_a_local_dask_cluster_scores_chunks_in_parallel_exactly_once(  # type: ignore[no-untyped-def]
    prefect_harness, registry_with_champion, tmp_path: Path
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterName

    from flows.score import score_inbox

    def score_part_runs() -> list[str]:
        with get_client(sync_client=True) as client:
            runs = client.read_task_runs(
                task_run_filter=TaskRunFilter(name=TaskRunFilterName(like_="score-part"))
            )
        return [r.state_name or "" for r in runs]

    before = len(score_part_runs())
    config = ScoringConfig(settle_seconds=0, chunk_rows=50)
    _mixed_inbox(tmp_path / "scoring" / "inbox")
    summary = score_inbox(
        workspace=tmp_path,
        registry=registry_with_champion,
        config=config,
        scale_out=ScaleOutConfig(dask_workers=2),
    )
    assert summary.files == {
        "scored": 3,
        "skipped": 1,
        "quarantined": 2,
        "failed": 0,
    }  # copy2 = copy1
    assert (summary.rows_total, summary.rows_scored) == (230 + 40 + 3, 230 + 35 + 2)
    assert summary.rows_rejected == 5 + 1
    folders = ScoringFolders(root=tmp_path / "scoring")
    assert len(Ledger(folders.ledger).entries()) == 3
    assert _leftovers(folders) == [] and list(folders.inbox.iterdir()) == []

    # the same files scored one by one in this process give the same rows and scores
    serial = _folders(tmp_path / "serial")
    _mixed_inbox(serial.inbox)
    champion = load_scoring_model(registry_with_champion)
    for path in files_to_score(serial, config, champion.version):
        score_file(path, serial, champion, config)
    for name in ("big", "reviews", "copy1"):
        (a,) = serial.results.glob(f"{name}.*.parquet")
        (b,) = folders.results.glob(f"{name}.*.parquet")
        a, b = pq.read_table(a).to_pandas(), pq.read_table(b).to_pandas()
        assert a["row_number"].tolist() == b["row_number"].tolist()
        assert np.allclose(a["probability"], b["probability"], atol=1e-6)

    # big.txt: 5 parts of <= 50 rows, reviews.csv: 1, copy1.txt: 1 (copy2 is not scored)
    after = score_part_runs()
    assert len(after) - before == 7 and set(after) == {"Completed"}


_DASK_FLOW = """
import sys
from pathlib import Path
from flows.score import score_inbox
from flows.config import ScaleOutConfig
from lstm_model.scoring.config import ScoringConfig
if __name__ == "__main__":
    score_inbox(workspace=Path(sys.argv[1]), registry=Path(sys.argv[2]),
                config=ScoringConfig(settle_seconds=0, chunk_rows=100),
                scale_out=ScaleOutConfig(dask_workers=2))
"""


def test_killed_dask_run_and_rerun_score_every_row_exactly_once(
    prefect_harness: str, registry_with_champion, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    folders = _folders(tmp_path / "scoring")
    for i in range(4):
        lines = [f"{TEXTS[i % 3]} (copy {i}-{j})" for j in range(400)]
        (folders.inbox / f"f{i}.txt").write_text("\n".join(lines) + "\n")
    script = tmp_path / "dask_flow.py"  # a file: Dask's spawned workers re-import __main__
    script.write_text(_DASK_FLOW)
    # The session's test server: the run starts no server of its own.
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PREFECT_API_URL": prefect_harness}
    run = subprocess.Popen(
        [sys.executable, str(script), str(tmp_path), str(registry_with_champion)],
        env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 240
    while not list(folders.staging.glob("*/scored-*.parquet")):  # kill once parts are scored
        assert run.poll() is None and time.monotonic() < deadline, "the run never scored a part"
        time.sleep(0.02)  # a file's scored parts last until its commit: a fraction of a second
    os.killpg(run.pid, signal.SIGKILL)  # the flow and its Dask workers
    run.wait(timeout=60)
    assert list(folders.inbox.iterdir())  # the kill left work undone

    champion = load_scoring_model(registry_with_champion)
    config = ScoringConfig(settle_seconds=0)
    outcomes = [
        score_file(p, folders, champion, config)
        for p in files_to_score(folders, config, champion.version)
    ]
    assert {o.status for o in outcomes} <= {"scored", "skipped"}
    results = pd.concat(pq.read_table(p).to_pandas() for p in folders.results.glob("*.parquet"))
    assert len(results) == 4 * 400
    assert not results.duplicated(["source_file", "row_number"]).any()
    assert len(Ledger(folders.ledger).entries()) == 4
    # the rerun published every file, which removed the killed run's staging folders
    assert [p for p in folders.root.rglob("*") if ".tmp-" in p.name] == []
    assert list(folders.staging.iterdir()) == [] and list(folders.inbox.iterdir()) == []
