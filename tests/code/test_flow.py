"""The retrain flow under Prefect's test harness, on the committed fixture."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from uuid import UUID

import pytest
from prefect import flow
from typer.testing import CliRunner

from cli.main import app
from data_contracts.config import ReviewsContractConfig
from flows.retrain import RetrainOutputs, retrain
from lstm_model.artifacts import sha256_file
from lstm_model.data.config import LabelledConfig
from lstm_model.data.spans import ROWS_FILE, list_spans, restore, retire
from lstm_model.evaluation.config import GateConfig
from lstm_model.events import GATE_REJECTED
from lstm_model.release.registry import Registry
from lstm_model.training.config import TrainConfig
from tasks.data import resolve_source
from tests.helpers.events import related_ids, server_events
from tests.helpers.labelled import labelled_rows, write_drop
from tests.helpers.tiny import TINY_MOBILE_EXPORT, tiny_flow_kwargs

pytestmark = pytest.mark.usefixtures("prefect_harness")  # one test server for the session


def _artifact(key: str, run: UUID | None = None) -> str:
    """The latest artifact with this key (of this flow run, when given)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        ArtifactFilterKey,
    )
    from prefect.client.schemas.sorting import ArtifactSort

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=[key]),
                flow_run_id=None if run is None else ArtifactFilterFlowRunId(any_=[run]),
            ),
            sort=ArtifactSort.CREATED_DESC,
            limit=1,
        )
    assert found, f"no artifact {key}"
    return str(found[0].data)


class FirstRun:
    """One tiny retrain from an empty workspace (version 1, the champion), shared by the
    tests that go on from there: each works on its own copy of the workspace."""

    def __init__(self, workspace: Path, run: UUID, outputs: RetrainOutputs) -> None:
        self.workspace, self.run, self.outputs = workspace, run, outputs

    def copy_to(self, target: Path) -> RetrainOutputs:
        """Copy the workspace (times kept) to ``target``; the outputs with its paths there."""
        shutil.copytree(self.workspace, target, symlinks=True, dirs_exist_ok=True)
        paths = {name: v for name, v in self.outputs if isinstance(v, Path)}
        origin = self.workspace.resolve()
        assert all(p.resolve().is_relative_to(origin) for p in paths.values()), paths
        moved = {name: target / p.resolve().relative_to(origin) for name, p in paths.items()}
        return self.outputs.model_copy(update=moved)


@pytest.fixture(scope="module")
def first_run(
    fixture_archive: Path, tmp_path_factory: pytest.TempPathFactory, prefect_harness: str
) -> FirstRun:
    workspace = tmp_path_factory.mktemp("first-run")
    state = retrain(
        source=str(fixture_archive),
        workspace=workspace,
        **tiny_flow_kwargs(export_config=TINY_MOBILE_EXPORT),
        return_state=True,
    )
    return FirstRun(workspace, state.state_details.flow_run_id, state.result())


def test_flow_produces_hashed_artifacts_and_reports(
    fixture_archive: Path, first_run: FirstRun
) -> None:
    outputs, run, tmp_path = first_run.outputs, first_run.run, first_run.workspace
    assert sha256_file(outputs.reviews_path) == outputs.reviews_sha256
    assert sha256_file(outputs.tokenised_path) == outputs.tokenised_sha256
    assert sha256_file(outputs.tokeniser_dir / "vocab.txt") == outputs.vocab_sha256
    assert outputs.source_sha256 == sha256_file(fixture_archive)
    manifest = json.loads((outputs.tokeniser_dir / "manifest.json").read_text())
    assert manifest["inputs"]["reviews"] == outputs.reviews_sha256
    assert Path(outputs.data_docs.removeprefix("file://")).is_file()
    report = _artifact("contract-imdb-reviews", run)
    assert "passed" in report and "4 review texts appear in both train and test" in report
    assert "passed" in _artifact("contract-imdb-tokenised", run)
    # model half: registered, gated, exported with parity, promoted
    assert outputs.model_version == outputs.champion == 1
    assert "no champion yet" in outputs.gate and "passed" in outputs.parity
    evaluation = _artifact("model-evaluation", run)
    assert "| accuracy |" in evaluation and "data:image/png;base64," in evaluation
    # the linear baseline, reported beside the model
    assert outputs.baseline_metrics is not None and outputs.baseline_metrics.n == 204
    assert "linear baseline (TF-IDF + LR)" in evaluation
    assert f"| {outputs.baseline_metrics.accuracy:.4f} |" in evaluation
    registry = tmp_path / "registry"
    served = registry / "serving" / "imdb_sentiment" / "1" / "saved_model.pb"
    assert served.is_file()
    manifest = json.loads((registry / "versions" / "1" / "manifest.json").read_text())
    assert manifest["data"]["vocab_sha256"] == outputs.vocab_sha256
    assert manifest["baseline"] == outputs.baseline_metrics.model_dump()
    assert manifest["parity"]["passed"] is True
    assert manifest["files"]["export/model.tflite"] == sha256_file(
        registry / "versions" / "1" / "export" / "model.tflite"
    )
    mobile = manifest["parity"]["mobile"]  # the small TFLite, checked by accuracy
    assert mobile["passed"] is True and mobile["n"] == 204
    assert abs(mobile["mobile_accuracy"] - mobile["keras_accuracy"]) <= mobile["tolerance"]
    assert manifest["files"]["export/mobile.tflite"] == sha256_file(
        registry / "versions" / "1" / "export" / "mobile.tflite"
    )
    assert "mobile TFLite" in outputs.parity
    assert {"keras", "tensorflow", "git_commit"} <= set(manifest["environment"])


def test_the_tuning_flow_saves_a_config_that_retraining_takes(
    fixture_archive: Path, tmp_path: Path
) -> None:
    from flows.tune import tune_hyperparameters
    from lstm_model.training.config import SearchSpace, TuningConfig

    space = SearchSpace(
        units_min=4, units_max=8, maxlen_min=20, maxlen_max=40, maxlen_step=10,
        embedding_dims=(8,), vocab_sizes=(500, 2000),
    )  # fmt: skip
    state = tune_hyperparameters(
        source=str(fixture_archive),
        workspace=tmp_path,
        space=space,
        tuning=TuningConfig(max_trials=2, epochs=1, name="small"),
        training=TrainConfig(epochs=1, batch_size=32),
        reviews_contract=ReviewsContractConfig(min_rows=100),
        return_state=True,
    )
    result = state.result()
    table = json.loads(_artifact("tuning-trials", state.state_details.flow_run_id))
    assert [row["trial"] for row in table] == [t["trial"] for t in result.trials]
    assert table[0]["val_accuracy"] >= table[1]["val_accuracy"]
    outputs = retrain(
        source=str(fixture_archive), workspace=tmp_path, **tiny_flow_kwargs(), named_config="small"
    )
    manifest = Registry(tmp_path / "registry").manifest(outputs.model_version)
    assert manifest["config"]["model"] == result.best.model.model_dump()
    assert manifest["config"]["tokeniser"] == result.best.tokeniser.model_dump()


def test_gate_rejection_keeps_the_champion_and_fails_the_flow(
    fixture_archive: Path, tmp_path: Path, prefect_harness: str, first_run: FirstRun
) -> None:
    first = first_run.copy_to(tmp_path)
    state = retrain(
        source=str(fixture_archive),
        workspace=tmp_path,
        **tiny_flow_kwargs(gate_config=GateConfig(min_accuracy=0.99)),
        force=True,  # the same build as version 1: only a new gate
        return_state=True,
    )
    assert state.is_failed()
    with pytest.raises(Exception, match=r"version 2 rejected: .*below the bar 0\.9900") as info:
        state.result()
    registry = Registry(tmp_path / "registry")
    # the message carries the rejected candidate's own accuracy
    assert f"test accuracy {registry.manifest(2)['metrics']['accuracy']:.4f}" in str(info.value)
    assert first.model_version == registry.champion() == 1
    assert registry.status(2)["status"] == "rejected"
    assert not (tmp_path / "registry" / "versions" / "2" / "export").exists()
    # the rejection is an event, with its numbers, related to the run (what alerts send)
    where = str((tmp_path / "registry").resolve())
    (event,) = server_events(
        prefect_harness, GATE_REJECTED, lambda e: e["payload"].get("registry") == where
    )
    assert event["resource"]["prefect.resource.id"] == "lstm-pipeline.model.2"
    assert event["payload"]["version"] == 2 and "below the bar 0.9900" in event["payload"]["reason"]
    assert f"prefect.flow-run.{state.state_details.flow_run_id}" in related_ids(event)


def test_regression_against_the_champion_is_refused(
    fixture_archive: Path, tmp_path: Path, first_run: FirstRun
) -> None:
    first = first_run.copy_to(tmp_path)
    Registry(tmp_path / "registry").seal(
        1, {"metrics": {**first.metrics.model_dump(), "accuracy": 0.99}}
    )
    state = retrain(
        source=str(fixture_archive),
        workspace=tmp_path,
        **tiny_flow_kwargs(training=TrainConfig(epochs=1, ngram_epochs=1, batch_size=32, seed=7)),
        return_state=True,
    )
    assert state.is_failed()
    with pytest.raises(
        Exception,
        match=r"below champion version 1 \(0\.9900\), more than the allowed regression 0\.0050",
    ):
        state.result()
    assert Registry(tmp_path / "registry").champion() == 1
    # The same build again is not retrained: the run completes and says why.
    again = retrain(
        source=str(fixture_archive),
        workspace=tmp_path,
        **tiny_flow_kwargs(training=TrainConfig(epochs=1, ngram_epochs=1, batch_size=32, seed=7)),
    )
    assert again.model_version == 2 and again.champion == 1 and again.metrics is None
    assert again.nothing_new.startswith("nothing new since version 2, which was built from")
    assert "rejected (gate FAILED" in again.nothing_new and "force" in again.nothing_new
    assert [v.version for v in Registry(tmp_path / "registry").list_versions()] == [1, 2]


def _files_and_times(root: Path) -> list[tuple[str, int]]:
    return sorted((str(p.relative_to(root)), p.stat().st_mtime_ns) for p in root.rglob("*"))


def test_a_second_run_with_nothing_new_trains_nothing_and_force_trains(
    fixture_archive: Path, tmp_path: Path, first_run: FirstRun
) -> None:
    kwargs = {"source": str(fixture_archive), "workspace": tmp_path, **tiny_flow_kwargs()}
    first = first_run.copy_to(tmp_path)
    registry = tmp_path / "registry"
    stamp = first.tokenised_path.stat().st_mtime_ns
    listing = _files_and_times(tmp_path)
    state = retrain(**kwargs, return_state=True)
    assert state.is_completed()
    second = state.result()
    assert second.nothing_new == ("nothing new since version 1 (champion: promoted to champion)")
    assert (second.model_version, second.champion) == (1, 1)
    assert second.fingerprint == first.fingerprint
    assert second.tokenised_path is None and second.metrics is None and second.gate is None
    assert "nothing new since version 1" in _artifact(
        "retrain-nothing-new", state.state_details.flow_run_id
    )
    # nothing trained, registered or exported: not one file added or changed
    assert _files_and_times(tmp_path) == listing
    assert Registry(registry).manifest(1)["fingerprint"]["sha256"] == first.fingerprint
    # force trains anyway, from the cached tokenised data
    third = retrain(**kwargs, force=True)
    assert third.nothing_new is None and third.model_version == 2
    assert third.tokenised_sha256 == first.tokenised_sha256
    assert first.tokenised_path.stat().st_mtime_ns == stamp
    assert len(list((tmp_path / "reviews").iterdir())) == 1


def test_a_labelled_drop_is_a_new_dataset_version_and_retiring_it_is_nothing_new(
    fixture_archive: Path, tmp_path: Path, reviews_frame, first_run: FirstRun
) -> None:
    # tiny models differ by chance from one training set to the next: no regression rule
    gate = GateConfig(min_accuracy=0.0, min_margin_over_baseline=None, max_regression=1.0)
    kwargs = {
        "source": str(fixture_archive), "workspace": tmp_path, **tiny_flow_kwargs(),
        "labelled": LabelledConfig(settle_seconds=0), "gate_config": gate,
    }  # fmt: skip
    first = first_run.copy_to(tmp_path)  # the labelled settings change no build without a drop
    assert first.dataset_version == first.reviews_sha256 and first.spans == []
    write_drop(tmp_path / "labelled" / "inbox" / "shop.csv", labelled_rows(reviews_frame, 60))

    state = retrain(**kwargs, return_state=True)
    second, run = state.result(), state.state_details.flow_run_id

    (span,) = list_spans(tmp_path / "labelled")
    assert second.spans == [span.id] and second.labelled_rows_accepted == 60
    assert second.nothing_new is None and second.model_version == 2
    assert second.dataset_version not in (first.dataset_version, first.reviews_sha256)
    manifest = Registry(tmp_path / "registry").manifest(2)
    assert manifest["fingerprint"]["dataset"] == second.dataset_version
    # evaluated per slice, and gated per slice against the champion's exported model
    slices = {s["slice"]: s for s in manifest["slices"]}
    test_rows = sum(span.counts["shop"].get("test", {"0": 0, "1": 0}).values())
    assert set(slices) == {"imdb", "shop"} and slices["shop"]["n"] == test_rows > 0
    assert slices["imdb"]["accuracy"] == second.metrics.accuracy
    assert (
        slices["shop"]["accuracy_low"]
        <= slices["shop"]["accuracy"]
        <= slices["shop"]["accuracy_high"]
    )
    assert f"slice shop ({test_rows} texts): accuracy" in second.gate
    assert "against champion version 1's" in second.gate
    train_rows = sum(span.counts["shop"].get("train", {"0": 0, "1": 0}).values())
    assert (
        json.loads((second.tokenised_path.parent / "manifest.json").read_text())["details"]["rows"]
        == 408 + train_rows
    )
    assert "shop.csv" in _artifact("labelled-intake", run)
    # the domain's training weight, chosen on its validation rows, is recorded and reported
    (weight,) = manifest["training"]["domain_weights"]
    assert weight["domain"] == "shop" and weight["chosen_by"] == "validation"
    assert weight["fit_rows"] + weight["validation_rows"] == train_rows
    assert weight["weight"] in TrainConfig().domain_weight_candidates
    assert set(weight["tried"]) == {"1", "3", "10", "30"}
    assert f"| shop | {weight['weight']:g} | validation |" in _artifact("model-evaluation", run)
    # the history: per version its dataset, accuracy per slice, status and reason
    rows = json.loads(_artifact("model-history", run))
    assert [(r["version"], r["shop_acc"] == "-") for r in rows] == [(1, True), (2, False)]
    assert rows[1]["dataset"] == second.dataset_version[:12] and rows[1]["status"] == "champion"
    assert "base64" in _artifact("model-history-plot", run)
    listed = CliRunner().invoke(app, ["models", "history", "--workspace", str(tmp_path)])
    assert listed.exit_code == 0 and listed.output.splitlines()[0].split()[:5] == [
        "version",
        "status",
        "dataset",
        "imdb_acc",
        "shop_acc",
    ]

    retire(tmp_path / "labelled", span.id, "mislabelled")
    assert retrain(**kwargs).nothing_new.startswith("nothing new since version 1 (")
    restore(tmp_path / "labelled", span.id, "relabelled")
    assert retrain(**kwargs).nothing_new.startswith("nothing new since version 2")

    (span.folder / ROWS_FILE).unlink()  # a span deleted on disk: nothing is trained
    listing = _files_and_times(tmp_path / "registry")
    state = retrain(**kwargs, force=True, return_state=True)
    assert state.is_failed()
    with pytest.raises(
        Exception, match=f"span {span.id} \\(from shop.csv\\) was altered or deleted"
    ):
        state.result()
    assert _files_and_times(tmp_path / "registry") == listing


def test_failed_contract_fails_the_flow_and_stops_before_tokenising(
    fixture_archive: Path, tmp_path: Path
) -> None:
    state = retrain(
        source=str(fixture_archive),
        workspace=tmp_path,
        **tiny_flow_kwargs(reviews_contract=ReviewsContractConfig(min_rows=1000)),
        return_state=True,
    )
    assert state.is_failed()
    with pytest.raises(Exception, match=r"expect_table_row_count_to_be_between.*observed 408"):
        state.result()
    assert not (tmp_path / "tokenised").exists()
    assert "FAILED" in _artifact("contract-imdb-reviews", state.state_details.flow_run_id)


def test_bad_source_fails_the_flow_with_its_reason(tmp_path: Path) -> None:
    state = retrain(source=str(tmp_path / "missing.tar.gz"), workspace=tmp_path, return_state=True)
    assert state.is_failed()
    with pytest.raises(Exception, match=r"data source not found: .*missing\.tar\.gz"):
        state.result()


def test_failed_download_is_retried(
    fixture_archive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first request gets HTTP 503; the resolve-source task retries and succeeds."""
    import http.server
    import threading

    calls: list[int] = []
    payload = fixture_archive.read_bytes()

    class Flaky(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            calls.append(1)
            if len(calls) == 1:
                self.send_error(503, "busy")
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Flaky)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("LSTM_PIPELINE_CACHE", str(tmp_path / "cache"))
    url = f"http://127.0.0.1:{server.server_address[1]}/aclImdb_v1.tar.gz"

    @flow
    def fetch(source: str) -> Path:  # the retrain flow's first step, with its task's policy
        return resolve_source(source).path

    try:
        path = fetch(url)
    finally:
        server.shutdown()
        server.server_close()
    assert len(calls) == 2
    assert sha256_file(path) == sha256_file(fixture_archive)


@pytest.mark.parametrize(
    ("error", "retried"),
    [
        (OSError("disk hiccup"), True),
        (FileNotFoundError("gone"), False),
        (ValueError("bug"), False),
    ],
)
def test_retry_policy_retries_only_transient_io(error: Exception, retried: bool) -> None:
    from prefect.states import Failed

    from tasks._policies import retry_on_transient_io

    assert retry_on_transient_io(None, None, Failed(data=error)) is retried


def test_retry_policy_never_retries_bad_data() -> None:
    from prefect.states import Failed

    from lstm_model.errors import DownloadError, IngestError
    from tasks._policies import retry_on_transient_io

    assert retry_on_transient_io(None, None, Failed(data=IngestError("bad"))) is False
    assert retry_on_transient_io(None, None, Failed(data=DownloadError("net"))) is True
