"""The retraining flow: ingest -> take labelled drops -> training set -> (nothing new? stop)
-> validate -> tokenise -> validate -> train -> evaluate (beside the linear baseline) ->
register -> gate -> export (+ parity) -> promote."""

from __future__ import annotations

from pathlib import Path

from prefect import flow
from pydantic import BaseModel

from flows.config import (
    BaselineConfig,
    ExportConfig,
    GateConfig,
    LabelledConfig,
    ModelConfig,
    ReviewsContractConfig,
    TokeniserConfig,
    TrainConfig,
    default_workspace,
)
from lstm_model.evaluation.evaluate import Metrics
from lstm_model.training.result import run_folder
from tasks.data import (
    ingest,
    resolve_source,
    take_labelled,
    tokenise,
    training_set,
    validate_reviews,
    validate_tokenised,
)
from tasks.model import (
    baseline,
    evaluate,
    export,
    fingerprint,
    gate,
    history,
    previous_build,
    promote,
    register,
    train,
)
from tasks.tuning import load_config


class RetrainOutputs(BaseModel):
    """Paths, hashes and outcomes the flow produced.

    When the registry already holds a version built from the same fingerprint,
    ``nothing_new`` says which, ``model_version`` is that version, and the fields of the
    steps that did not run are None.
    """

    source: str
    source_sha256: str
    reviews_path: Path
    reviews_sha256: str
    dataset_version: str
    spans: list[str]
    labelled_rows_accepted: int
    fingerprint: str
    nothing_new: str | None = None
    tokenised_path: Path | None = None
    tokenised_sha256: str | None = None
    tokeniser_dir: Path | None = None
    vocab_sha256: str | None = None
    data_docs: str | None = None
    model_version: int
    metrics: Metrics | None = None
    baseline_metrics: Metrics | None = None
    gate: str | None = None
    parity: str | None = None
    champion: int | None


@flow(
    name="retrain",
    description="Ingest, validate, tokenise, train, evaluate, gate, export and promote.",
)
def retrain(
    source: str | None = None,
    workspace: Path | None = None,
    registry: Path | None = None,
    tokeniser: TokeniserConfig = TokeniserConfig(),  # noqa: B008 - frozen, safe default
    model: ModelConfig = ModelConfig(),  # noqa: B008
    training: TrainConfig = TrainConfig(),  # noqa: B008
    gate_config: GateConfig = GateConfig(),  # noqa: B008
    export_config: ExportConfig = ExportConfig(),  # noqa: B008
    reviews_contract: ReviewsContractConfig = ReviewsContractConfig(),  # noqa: B008
    baseline_config: BaselineConfig = BaselineConfig(),  # noqa: B008
    labelled: LabelledConfig = LabelledConfig(),  # noqa: B008
    named_config: str | None = None,
    force: bool = False,
) -> RetrainOutputs:
    """Run the retraining DAG.

    Args:
        source: aclImdb archive, folder or http(s) URL; empty resolves it (see README).
        workspace: folder for all artifacts; empty means $LSTM_PIPELINE_HOME or ./artifacts.
        registry: model registry folder; empty means the workspace's registry folder.
        tokeniser: vocabulary size, sequence length, padding and truncation sides.
        model: architecture, sizes and dropouts.
        training: epochs, batch size, learning rate, clipping, validation share, seed.
        gate_config: absolute accuracy bar and allowed regression against the champion, on
            aclImdb test and on each domain's test share (the slice gate).
        export_config: served model name, TFLite batch size, parity tolerance, the mobile
            TFLite and its accuracy tolerance.
        reviews_contract: bounds of the imdb_reviews data contract.
        baseline_config: the linear baseline reported beside the model (and optionally gated on).
        labelled: the labelled inbox (labelled/inbox in the workspace): the domain of rows that
            name none, the test share, the class balance bound and the reading bounds.
        named_config: a configuration saved by the tuning flow (configs/NAME.json in the workspace);
            when set, its tokeniser, model and training replace those three parameters.
        force: train even when a registered version was built from the same data, config
            and code (otherwise the run ends there, having trained nothing).
    """
    root = (workspace or default_workspace()).resolve()
    if named_config:
        chosen = load_config(root, named_config)
        tokeniser, model, training = chosen.tokeniser, chosen.model, chosen.training
    models = (registry or root / "registry").resolve()
    resolved = resolve_source(source)
    reviews = ingest(resolved, root)
    intake = take_labelled(root, reviews, labelled)
    dataset = training_set(reviews, root, wait_for=[intake])
    built_from = fingerprint(dataset.version, tokeniser, model, training)
    previous = previous_build(models, built_from, force)
    inputs = {
        "source": str(resolved.path),
        "source_sha256": reviews.source_sha256,
        "reviews_path": reviews.path,
        "reviews_sha256": reviews.sha256,
        "dataset_version": dataset.version,
        "spans": dataset.span_ids,
        "labelled_rows_accepted": intake.rows_accepted,
        "fingerprint": built_from.sha256,
    }
    if previous is not None and not force:
        return RetrainOutputs(
            **inputs,
            nothing_new=previous.describe(),
            model_version=previous.version,
            champion=previous.champion,
        )
    contract = validate_reviews(reviews, root, reviews_contract)
    tokenised = tokenise(dataset.reviews, tokeniser, root, wait_for=[contract])
    validate_tokenised(tokenised, dataset.reviews, root)
    run_dir = run_folder(root, tokenised, model, training)
    baseline_result = baseline(
        dataset.reviews, baseline_config, training, root, wait_for=[contract]
    )
    trained = train(tokenised, model, training, run_dir, dataset.spans)
    evaluation = evaluate(
        trained, tokenised, run_dir / "evaluation", baseline_result, dataset.spans
    )
    version = register(
        models, trained, evaluation, tokenised, model, training, baseline_result, built_from
    )
    decision = gate(models, version, gate_config, dataset.spans)
    parity = export(models, version, dataset.reviews, export_config)
    champion = promote(models, version, export_config)
    history(models, run_dir / "history.png", wait_for=[champion])
    return RetrainOutputs(
        **inputs,
        tokenised_path=tokenised.path,
        tokenised_sha256=tokenised.sha256,
        tokeniser_dir=tokenised.tokeniser_dir,
        vocab_sha256=tokenised.vocab_sha256,
        data_docs=contract.data_docs,
        model_version=version,
        metrics=evaluation.metrics,
        baseline_metrics=None if baseline_result is None else baseline_result.metrics,
        gate=decision.describe(),
        parity=parity.describe(),
        champion=champion,
    )
