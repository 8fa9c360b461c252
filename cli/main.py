"""``lstm-pipeline``: run the pipeline's flows locally from the command line.

The options of the config models are generated from their fields (``cli.options``); only
the options that are no config field are written here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from cli.common import (
    SOURCE_ORDER,
    RegistryOption,
    SourceOption,
    WorkspaceOption,
    check_server,
    fail,
    registry_root,
    run,
    run_flow,
)
from cli.data import data_app
from cli.models import models_app
from cli.options import ConfigOptions, ConfigValues, config_options
from flows.config import (
    PRESETS,
    BaselineConfig,
    ExportConfig,
    GateConfig,
    LabelledConfig,
    ModelConfig,
    ResultsRetentionConfig,
    RetentionConfig,
    ReviewsContractConfig,
    ScaleOutConfig,
    ScoringConfig,
    SearchSpace,
    ServingConfig,
    TokeniserConfig,
    TrainConfig,
    TuningConfig,
)

app = typer.Typer(
    name="lstm-pipeline",
    help="IMDB sentiment LSTM pipeline (Prefect 3). Runs flows locally; no server needed.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(models_app, name="models")
app.add_typer(data_app, name="data")

_PRESET_HELP = (
    "Tokeniser + model preset: 'default' (BiLSTM with max+mean pooling over the last 100 "
    "tokens, plus a word+bigram branch over all 1000), 'bilstm_pool' (that BiLSTM alone), "
    "'classic' (Embedding 10000x128, LSTM 64, dropout and recurrent dropout 0.2) or "
    "'bidirectional' (the classic one, bidirectional). Options below override single values."
)
_NAMED_CONFIG_HELP = (
    "A configuration saved by `lstm-pipeline tune` (<workspace>/configs/<name>.json): its "
    "tokeniser, model and training replace the preset and those options."
)
_FORCE_HELP = "Train even when a registered version was built from the same data, config and code."
_SIZES = ("vocab_size", "maxlen")
# Advanced training knobs stay at their defaults here; named configs and the flow's
# parameters set them.
_TRAINING_KNOBS = (
    "validation_fraction",
    "early_stopping_monitor",
    "early_stopping_patience",
    "ngram_epochs",
    "ngram_learning_rate",
    "augment_copies",
    "augment_rate",
    "crop_copies",
    "crop_min_tokens",
    "crop_max_tokens",
    "lstm_residual_folds",
    "validation_block",
    "domain_weight_candidates",
    "domain_weight_max_imdb_drop",
)
# Throughput and drift-warning knobs are set per deployment, not per run; every other
# scoring field, and any added later, is an option.
_SCORING_KNOBS = (
    "batch_size",
    "chunk_rows",
    "max_score_shift",
    "max_oov_shift",
    "max_length_ratio",
    "alert_quarantined_files",
    "alert_rejected_share",
)


@app.command(epilog=SOURCE_ORDER)
@config_options
def retrain(
    *,
    source: SourceOption = None,
    workspace: WorkspaceOption = None,
    registry: RegistryOption = None,
    preset: Annotated[
        Literal["default", "bilstm_pool", "classic", "bidirectional"],
        typer.Option(help=_PRESET_HELP),
    ] = "default",
    sizes: Annotated[ConfigValues[TokeniserConfig], ConfigOptions(only=_SIZES, overrides=True)],
    architecture: Annotated[
        ConfigValues[ModelConfig],
        ConfigOptions(only=("embedding_dim", "units", "l2"), overrides=True),
    ],
    training: Annotated[
        ConfigValues[TrainConfig],
        ConfigOptions(exclude=_TRAINING_KNOBS, rename={"domain_weights": "domain_weight"}),
    ],
    gate: Annotated[
        ConfigValues[GateConfig],
        ConfigOptions(help_suffix={"min_margin_over_baseline": "With --no-baseline: off."}),
    ],
    baseline: Annotated[
        ConfigValues[BaselineConfig],
        ConfigOptions(only=("enabled",), rename={"enabled": "baseline"}),
    ],
    sides: Annotated[ConfigValues[TokeniserConfig], ConfigOptions(exclude=_SIZES)],
    contract: Annotated[
        ConfigValues[ReviewsContractConfig], ConfigOptions(exclude=("max_examples",))
    ],
    labelled: Annotated[
        ConfigValues[LabelledConfig],
        ConfigOptions(
            only=("domain", "test_share", "max_class_share", "settle_seconds"),
            rename={"settle_seconds": "labelled_settle_seconds"},
        ),
    ],
    export: Annotated[
        ConfigValues[ExportConfig],
        ConfigOptions(only=("mobile", "mobile_accuracy_tolerance")),
    ],
    named_config: Annotated[str | None, typer.Option(help=_NAMED_CONFIG_HELP)] = None,
    force: Annotated[bool, typer.Option("--force", help=_FORCE_HELP)] = False,
) -> None:
    """Run the retraining flow: ingest, validate, tokenise, train, evaluate, gate, export
    and promote. When a registered version was built from the same data, config and code,
    it stops after ingesting and says which (exit 0)."""
    base_tokeniser, base_model = PRESETS[preset]
    tokeniser = sides.build(base_tokeniser, **sizes.values)
    model = architecture.build(base_model)
    training_config = training.build()
    baseline_config = baseline.build()
    # no baseline, nothing to compare with: the margin is not checked
    gate_config = gate.build(
        **({} if baseline_config.enabled else {"min_margin_over_baseline": None})
    )
    contract_config = contract.build()
    labelled_config = labelled.build()
    outputs = run_flow(
        "flows.retrain:retrain",
        source=source,
        workspace=workspace,
        registry=registry,
        tokeniser=tokeniser,
        model=model,
        training=training_config,
        gate_config=gate_config,
        reviews_contract=contract_config,
        baseline_config=baseline_config,
        labelled=labelled_config,
        export_config=export.build(),
        named_config=named_config,
        force=force,
    )
    typer.echo(outputs.model_dump_json(indent=2))


@app.command()
@config_options
def tune(
    *,
    source: SourceOption = None,
    workspace: WorkspaceOption = None,
    tuning: Annotated[
        ConfigValues[TuningConfig],
        ConfigOptions(only=("algorithm", "max_trials", "epochs", "name")),
    ],
    space: Annotated[ConfigValues[SearchSpace], ConfigOptions(only=("units_max", "maxlen_max"))],
    training: Annotated[ConfigValues[TrainConfig], ConfigOptions(only=("batch_size", "seed"))],
    contract: Annotated[ConfigValues[ReviewsContractConfig], ConfigOptions(only=("min_rows",))],
) -> None:
    """Search LSTM hyperparameters with Keras Tuner (validation share of the train split
    only) and save the best as a named config; run again, it continues from finished trials."""
    space_config = space.build()
    tuning_config = tuning.build()
    training_config = training.build()
    contract_config = contract.build()
    result = run_flow(
        "flows.tune:tune_hyperparameters",
        source=source,
        workspace=workspace,
        space=space_config,
        tuning=tuning_config,
        training=training_config,
        reviews_contract=contract_config,
    )
    typer.echo(result.model_dump_json(indent=2, exclude={"trials"}))


@app.command()
@config_options
def score(
    *,
    scoring_root: Annotated[
        Path | None,
        typer.Option(help="Folder with inbox/, results/, ... Default: <workspace>/scoring."),
    ] = None,
    workspace: WorkspaceOption = None,
    registry: RegistryOption = None,
    scoring: Annotated[ConfigValues[ScoringConfig], ConfigOptions(exclude=_SCORING_KNOBS)],
    scale_out: Annotated[ConfigValues[ScaleOutConfig], ConfigOptions()],
) -> None:
    """Score every settled file in the inbox with the champion model, exactly once."""
    config = scoring.build()
    scale_out_config = scale_out.build()
    summary = run_flow(
        "flows.score:score_inbox",
        scoring_root=scoring_root,
        workspace=workspace,
        registry=registry,
        config=config,
        scale_out=scale_out_config,
    )
    typer.echo(summary.model_dump_json(indent=2))


@app.command()
@config_options
def serve(
    *,
    workspace: WorkspaceOption = None,
    registry: RegistryOption = None,
    serving: Annotated[ConfigValues[ServingConfig], ConfigOptions()],
    log_level: Annotated[
        Literal["debug", "info", "warning", "error"], typer.Option(help="Log level.")
    ] = "info",
) -> None:
    """Answer predictions over HTTP with the champion's exported model (FastAPI).

    The API key, if any, comes from $LSTM_PIPELINE_API_KEY only (never an option: options
    show in process listings). OpenAPI docs at /docs.
    """
    config = serving.build()
    from serving.server import serve as run_service

    run_service(registry_root(workspace, registry), config, log_level)


@app.command()
@config_options
def gc(
    *,
    workspace: WorkspaceOption = None,
    registry: RegistryOption = None,
    policy: Annotated[ConfigValues[RetentionConfig], ConfigOptions()],
    results: Annotated[ConfigValues[ResultsRetentionConfig], ConfigOptions()],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what would be freed, and free nothing.")
    ] = False,
) -> None:
    """Free disk: the model files of versions that are not the champion, a rollback target,
    one of the newest accepted or in use; finished runs' working files; old validation
    results. Every version's manifest and reports stay."""
    policy_config, results_config = policy.build(), results.build()
    outputs = run_flow(
        "flows.retention:retention",
        workspace=workspace,
        registry=registry,
        policy=policy_config,
        results=results_config,
        dry_run=dry_run,
    )
    typer.echo(outputs.report)


@app.command()
def doctor() -> None:
    """Print the Keras backend ($KERAS_BACKEND), the devices it sees, the LSTM kernel that
    would run, the stack's versions, the Prefect server ($PREFECT_API_URL) and what is
    wrong (a GPU it cannot use, say). Exits 1 when the server cannot be used."""
    from lstm_model.training.backend import diagnose

    typer.echo(diagnose().render())
    server, problem = check_server()
    typer.echo(f"server:       {server}")
    if problem:
        fail(problem)


@app.command("show-source", epilog=SOURCE_ORDER)
def show_source(source: SourceOption = None) -> None:
    """Print which data source a run would use, and why, without ingesting it."""
    from lstm_model.data.sources import resolve_source

    resolved = run(lambda: resolve_source(source))
    typer.echo(resolved.model_dump_json(indent=2))


def main() -> None:
    """Console entry point."""
    app()


if __name__ == "__main__":
    main()
