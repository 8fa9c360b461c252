"""``lstm-pipeline``: run the pipeline's flows locally from the command line."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated, Literal

import typer

from flows.config import (
    CACHE_ENV,
    LOCAL_SOURCE_CANDIDATES,
    OFFICIAL_ARCHIVE_URL,
    PRESETS,
    SOURCE_ENV,
    WORKSPACE_ENV,
    BaselineConfig,
    ExportConfig,
    GateConfig,
    ModelConfig,
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

_SOURCE_HELP = (
    f"aclImdb .tar.gz, folder, or http(s) URL. If omitted: ${SOURCE_ENV}, else a local "
    "copy, else the official download (see the source resolution order below)."
)
_SOURCE_ORDER = (
    "Source resolution order, first match wins:\n\n"
    f"1. --source;\n\n2. ${SOURCE_ENV};\n\n"
    "3. the first of these that exists, relative to the working folder: "
    + "; ".join(LOCAL_SOURCE_CANDIDATES)
    + f";\n\n4. the official archive, downloaded once into ${CACHE_ENV} "
    f"(default ~/.cache/lstm-pipeline) and reused after:\n\n{OFFICIAL_ARCHIVE_URL}"
)
_WORKSPACE_HELP = f"Folder for all artifacts. Default: ${WORKSPACE_ENV}, else ./artifacts."


def _help(model: type, field: str) -> str:
    return model.model_fields[field].description or ""


def _default(model: type, field: str) -> object:
    return model.model_fields[field].default


_T, _C, _M, _R, _G = TokeniserConfig, ReviewsContractConfig, ModelConfig, TrainConfig, GateConfig
_REGISTRY_HELP = "Model registry folder. Default: <workspace>/registry."
_PRESET_HELP = (
    "Tokeniser + model preset: 'default' (BiLSTM with max+mean pooling over the last 400 "
    "tokens, plus a word+bigram branch over all 1000), 'bilstm_pool' (that BiLSTM alone), "
    "'classic' (Embedding 10000x128, LSTM 64, dropout and recurrent dropout 0.2) or "
    "'bidirectional' (the classic one, bidirectional). Options below override single values."
)
models_app = typer.Typer(help="List the registered model versions, or roll back the champion.")
app.add_typer(models_app, name="models")


@app.command(epilog=_SOURCE_ORDER)
def retrain(
    source: Annotated[str | None, typer.Option(help=_SOURCE_HELP)] = None,
    workspace: Annotated[Path | None, typer.Option(help=_WORKSPACE_HELP)] = None,
    registry: Annotated[Path | None, typer.Option(help=_REGISTRY_HELP)] = None,
    preset: Annotated[
        Literal["default", "bilstm_pool", "classic", "bidirectional"],
        typer.Option(help=_PRESET_HELP),
    ] = "default",
    vocab_size: Annotated[int | None, typer.Option(help=_help(_T, "vocab_size"))] = None,
    maxlen: Annotated[int | None, typer.Option(help=_help(_T, "maxlen"))] = None,
    embedding_dim: Annotated[int | None, typer.Option(help=_help(_M, "embedding_dim"))] = None,
    units: Annotated[int | None, typer.Option(help=_help(_M, "units"))] = None,
    l2: Annotated[float | None, typer.Option(help=_help(_M, "l2"))] = None,
    epochs: Annotated[int, typer.Option(help=_help(_R, "epochs"))] = _default(_R, "epochs"),
    batch_size: Annotated[int, typer.Option(help=_help(_R, "batch_size"))] = _default(
        _R, "batch_size"
    ),
    learning_rate: Annotated[float, typer.Option(help=_help(_R, "learning_rate"))] = _default(
        _R, "learning_rate"
    ),
    global_clipnorm: Annotated[
        float | None, typer.Option(help=_help(_R, "global_clipnorm"))
    ] = _default(_R, "global_clipnorm"),
    seed: Annotated[int, typer.Option(help=_help(_R, "seed"))] = _default(_R, "seed"),
    min_accuracy: Annotated[float, typer.Option(help=_help(_G, "min_accuracy"))] = _default(
        _G, "min_accuracy"
    ),
    max_regression: Annotated[float, typer.Option(help=_help(_G, "max_regression"))] = _default(
        _G, "max_regression"
    ),
    min_margin_over_baseline: Annotated[
        float,
        typer.Option(help=_help(_G, "min_margin_over_baseline") + " With --no-baseline: off."),
    ] = _default(_G, "min_margin_over_baseline"),
    baseline: Annotated[bool, typer.Option(help=_help(BaselineConfig, "enabled"))] = _default(
        BaselineConfig, "enabled"
    ),
    padding: Annotated[Literal["pre", "post"], typer.Option(help=_help(_T, "padding"))] = _default(
        _T, "padding"
    ),
    truncating: Annotated[
        Literal["pre", "post"], typer.Option(help=_help(_T, "truncating"))
    ] = _default(_T, "truncating"),
    min_rows: Annotated[int, typer.Option(help=_help(_C, "min_rows"))] = _default(_C, "min_rows"),
    max_rows: Annotated[int, typer.Option(help=_help(_C, "max_rows"))] = _default(_C, "max_rows"),
    min_text_chars: Annotated[int, typer.Option(help=_help(_C, "min_text_chars"))] = _default(
        _C, "min_text_chars"
    ),
    max_text_chars: Annotated[int, typer.Option(help=_help(_C, "max_text_chars"))] = _default(
        _C, "max_text_chars"
    ),
    min_positive_fraction: Annotated[
        float, typer.Option(help=_help(_C, "min_positive_fraction"))
    ] = _default(_C, "min_positive_fraction"),
    max_positive_fraction: Annotated[
        float, typer.Option(help=_help(_C, "max_positive_fraction"))
    ] = _default(_C, "max_positive_fraction"),
    named_config: Annotated[
        str | None,
        typer.Option(
            help="A configuration saved by `lstm-pipeline tune` (<workspace>/configs/<name>"
            ".json): its tokeniser, model and training replace the preset and those options."
        ),
    ] = None,
) -> None:
    """Run the retraining flow: ingest, validate, tokenise, train, evaluate, gate, export
    and promote."""
    from pydantic import ValidationError

    base_tokeniser, base_model = PRESETS[preset]
    try:
        tokeniser = TokeniserConfig(
            **{
                **base_tokeniser.model_dump(),
                **_given(vocab_size=vocab_size, maxlen=maxlen),
                "padding": padding,
                "truncating": truncating,
            }
        )
        model = ModelConfig(
            **{
                **base_model.model_dump(),
                **_given(embedding_dim=embedding_dim, units=units, l2=l2),
            }
        )
        training = TrainConfig(
            epochs=epochs,
            batch_size=batch_size,
            learning_rate=learning_rate,
            global_clipnorm=global_clipnorm,
            seed=seed,
        )
        gate = GateConfig(
            min_accuracy=min_accuracy,
            max_regression=max_regression,
            # no baseline, nothing to compare with: the margin is not checked
            min_margin_over_baseline=min_margin_over_baseline if baseline else None,
        )
        contract = ReviewsContractConfig(
            min_rows=min_rows,
            max_rows=max_rows,
            min_text_chars=min_text_chars,
            max_text_chars=max_text_chars,
            min_positive_fraction=min_positive_fraction,
            max_positive_fraction=max_positive_fraction,
        )
    except ValidationError as exc:
        _fail(f"invalid option: {exc}")
    _prepare_prefect()
    from flows.retrain import retrain as retrain_flow

    outputs = _run(
        lambda: retrain_flow(
            source=source,
            workspace=workspace,
            registry=registry,
            tokeniser=tokeniser,
            model=model,
            training=training,
            gate_config=gate,
            reviews_contract=contract,
            baseline_config=BaselineConfig(enabled=baseline),
            named_config=named_config,
        )
    )
    typer.echo(outputs.model_dump_json(indent=2))


_S = SearchSpace
_U = TuningConfig


@app.command()
def tune(
    source: Annotated[str | None, typer.Option(help=_SOURCE_HELP)] = None,
    workspace: Annotated[Path | None, typer.Option(help=_WORKSPACE_HELP)] = None,
    algorithm: Annotated[
        Literal["random", "hyperband"], typer.Option(help=_help(_U, "algorithm"))
    ] = _default(_U, "algorithm"),
    max_trials: Annotated[int, typer.Option(help=_help(_U, "max_trials"))] = _default(
        _U, "max_trials"
    ),
    epochs: Annotated[int, typer.Option(help=_help(_U, "epochs"))] = _default(_U, "epochs"),
    name: Annotated[str, typer.Option(help=_help(_U, "name"))] = _default(_U, "name"),
    units_max: Annotated[int, typer.Option(help=_help(_S, "units_max"))] = _default(
        _S, "units_max"
    ),
    maxlen_max: Annotated[int, typer.Option(help=_help(_S, "maxlen_max"))] = _default(
        _S, "maxlen_max"
    ),
    batch_size: Annotated[int, typer.Option(help=_help(_R, "batch_size"))] = _default(
        _R, "batch_size"
    ),
    seed: Annotated[int, typer.Option(help=_help(_R, "seed"))] = _default(_R, "seed"),
    min_rows: Annotated[int, typer.Option(help=_help(_C, "min_rows"))] = _default(_C, "min_rows"),
) -> None:
    """Search LSTM hyperparameters with Keras Tuner (validation share of the train split
    only) and save the best as a named config; run again, it continues from finished trials."""
    from pydantic import ValidationError

    try:
        space = SearchSpace(units_max=units_max, maxlen_max=maxlen_max)
        tuning = TuningConfig(algorithm=algorithm, max_trials=max_trials, epochs=epochs, name=name)
        training = TrainConfig(batch_size=batch_size, seed=seed)
        contract = ReviewsContractConfig(min_rows=min_rows)
    except ValidationError as exc:
        _fail(f"invalid option: {exc}")
    _prepare_prefect()
    from flows.tune import tune_hyperparameters

    result = _run(
        lambda: tune_hyperparameters(
            source=source,
            workspace=workspace,
            space=space,
            tuning=tuning,
            training=training,
            reviews_contract=contract,
        )
    )
    typer.echo(result.model_dump_json(indent=2, exclude={"trials"}))


@app.command()
def score(
    scoring_root: Annotated[
        Path | None,
        typer.Option(help="Folder with inbox/, results/, ... Default: <workspace>/scoring."),
    ] = None,
    workspace: Annotated[Path | None, typer.Option(help=_WORKSPACE_HELP)] = None,
    registry: Annotated[Path | None, typer.Option(help=_REGISTRY_HELP)] = None,
    settle_seconds: Annotated[
        float, typer.Option(help=_help(ScoringConfig, "settle_seconds"))
    ] = _default(ScoringConfig, "settle_seconds"),
    text_column: Annotated[str, typer.Option(help=_help(ScoringConfig, "text_column"))] = _default(
        ScoringConfig, "text_column"
    ),
    id_column: Annotated[str, typer.Option(help=_help(ScoringConfig, "id_column"))] = _default(
        ScoringConfig, "id_column"
    ),
    max_text_chars: Annotated[
        int, typer.Option(help=_help(ScoringConfig, "max_text_chars"))
    ] = _default(ScoringConfig, "max_text_chars"),
    rescore: Annotated[bool, typer.Option(help=_help(ScoringConfig, "rescore"))] = False,
    dask_workers: Annotated[
        int, typer.Option(help=_help(ScaleOutConfig, "dask_workers"))
    ] = _default(ScaleOutConfig, "dask_workers"),
    dask_address: Annotated[
        str | None, typer.Option(help=_help(ScaleOutConfig, "dask_address"))
    ] = None,
) -> None:
    """Score every settled file in the inbox with the champion model, exactly once."""
    from pydantic import ValidationError

    try:
        config = ScoringConfig(
            settle_seconds=settle_seconds,
            text_column=text_column,
            id_column=id_column,
            max_text_chars=max_text_chars,
            rescore=rescore,
        )
        scale_out = ScaleOutConfig(dask_workers=dask_workers, dask_address=dask_address)
    except ValidationError as exc:
        _fail(f"invalid option: {exc}")
    _prepare_prefect()
    from flows.score import score_inbox

    summary = _run(
        lambda: score_inbox(
            scoring_root=scoring_root,
            workspace=workspace,
            registry=registry,
            config=config,
            scale_out=scale_out,
        )
    )
    typer.echo(summary.model_dump_json(indent=2))


_V = ServingConfig


@app.command()
def serve(
    workspace: Annotated[Path | None, typer.Option(help=_WORKSPACE_HELP)] = None,
    registry: Annotated[Path | None, typer.Option(help=_REGISTRY_HELP)] = None,
    host: Annotated[str, typer.Option(help=_help(_V, "host"))] = _default(_V, "host"),
    port: Annotated[int, typer.Option(help=_help(_V, "port"))] = _default(_V, "port"),
    backend: Annotated[
        Literal["saved_model", "tflite"], typer.Option(help=_help(_V, "backend"))
    ] = _default(_V, "backend"),
    max_batch_size: Annotated[int, typer.Option(help=_help(_V, "max_batch_size"))] = _default(
        _V, "max_batch_size"
    ),
    max_text_chars: Annotated[int, typer.Option(help=_help(_V, "max_text_chars"))] = _default(
        _V, "max_text_chars"
    ),
    max_body_bytes: Annotated[int, typer.Option(help=_help(_V, "max_body_bytes"))] = _default(
        _V, "max_body_bytes"
    ),
    max_concurrency: Annotated[int, typer.Option(help=_help(_V, "max_concurrency"))] = _default(
        _V, "max_concurrency"
    ),
    max_connections: Annotated[int, typer.Option(help=_help(_V, "max_connections"))] = _default(
        _V, "max_connections"
    ),
    header_timeout_seconds: Annotated[
        float, typer.Option(help=_help(_V, "header_timeout_seconds"))
    ] = _default(_V, "header_timeout_seconds"),
    body_timeout_seconds: Annotated[
        float, typer.Option(help=_help(_V, "body_timeout_seconds"))
    ] = _default(_V, "body_timeout_seconds"),
    inference_threads: Annotated[int, typer.Option(help=_help(_V, "inference_threads"))] = _default(
        _V, "inference_threads"
    ),
    micro_batching: Annotated[bool, typer.Option(help=_help(_V, "micro_batching"))] = _default(
        _V, "micro_batching"
    ),
    poll_seconds: Annotated[float, typer.Option(help=_help(_V, "poll_seconds"))] = _default(
        _V, "poll_seconds"
    ),
    retry_refused_seconds: Annotated[
        float, typer.Option(help=_help(_V, "retry_refused_seconds"))
    ] = _default(_V, "retry_refused_seconds"),
    log_level: Annotated[
        Literal["debug", "info", "warning", "error"], typer.Option(help="Log level.")
    ] = "info",
) -> None:
    """Answer predictions over HTTP with the champion's exported model (FastAPI).

    The API key, if any, comes from $LSTM_PIPELINE_API_KEY only (never an option: options
    show in process listings). OpenAPI docs at /docs.
    """
    from pydantic import ValidationError

    try:
        config = ServingConfig(
            host=host,
            port=port,
            backend=backend,
            max_batch_size=max_batch_size,
            max_text_chars=max_text_chars,
            max_body_bytes=max_body_bytes,
            max_concurrency=max_concurrency,
            max_connections=max_connections,
            header_timeout_seconds=header_timeout_seconds,
            body_timeout_seconds=body_timeout_seconds,
            inference_threads=inference_threads,
            micro_batching=micro_batching,
            poll_seconds=poll_seconds,
            retry_refused_seconds=retry_refused_seconds,
        )
    except ValidationError as exc:
        _fail(f"invalid option: {exc}")
    from serving.server import serve as run_service

    run_service(_registry(workspace, registry), config, log_level)


@models_app.command("list")
def models_list(
    workspace: Annotated[Path | None, typer.Option(help=_WORKSPACE_HELP)] = None,
    registry: Annotated[Path | None, typer.Option(help=_REGISTRY_HELP)] = None,
) -> None:
    """Every registered version with its test accuracy, status and reason."""
    from lstm_model.release.registry import Registry

    versions = Registry(_registry(workspace, registry)).list_versions()
    if not versions:
        typer.echo("no model versions registered yet")
        return
    typer.echo(f"{'version':>7}  {'accuracy':>8}  {'status':<9}  {'created':<25}  reason")
    for v in versions:
        accuracy = "-" if v.accuracy is None else f"{v.accuracy:.4f}"
        marker = "*" if v.is_champion else " "
        typer.echo(
            f"{v.version:>6}{marker}  {accuracy:>8}  {v.status:<9}  {v.created_at[:25]:<25}  "
            f"{v.reason}"
        )


@models_app.command("rollback")
def models_rollback(
    workspace: Annotated[Path | None, typer.Option(help=_WORKSPACE_HELP)] = None,
    registry: Annotated[Path | None, typer.Option(help=_REGISTRY_HELP)] = None,
) -> None:
    """Make the previous champion the champion again."""
    from lstm_model.release.promotion import rollback_champion

    version = _run(lambda: rollback_champion(_registry(workspace, registry), ExportConfig()))
    typer.echo(f"champion is now version {version}")


def _registry(workspace: Path | None, registry: Path | None) -> Path:
    from flows.config import default_workspace

    return registry or (workspace or default_workspace()) / "registry"


def _given(**values: object) -> dict[str, object]:
    """The options the user set (None means: keep the preset's value)."""
    return {k: v for k, v in values.items() if v is not None}


@app.command("show-source", epilog=_SOURCE_ORDER)
def show_source(source: Annotated[str | None, typer.Option(help=_SOURCE_HELP)] = None) -> None:
    """Print which data source a run would use, and why, without ingesting it."""
    from lstm_model.data.sources import resolve_source

    resolved = _run(lambda: resolve_source(source))
    typer.echo(resolved.model_dump_json(indent=2))


def _run(call):  # type: ignore[no-untyped-def]
    """Run ``call``; turn the errors a user can fix into one clear message and exit 1."""
    from data_contracts import ContractViolation
    from lstm_model.errors import PipelineError

    try:
        return call()
    except (PipelineError, ContractViolation) as exc:
        _fail(str(exc))


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=1)


def _prepare_prefect() -> None:
    # This pipeline runs offline too: the local server must not try to phone home.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # A busy 2-core machine can take longer than Prefect's default to start the local server.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    # The library logs with `logging`; route it through Prefect's handlers so it shows
    # on the console, in the run logs and in the UI.
    os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "lstm_model,data_contracts")
    for name in ("lstm_model", "data_contracts"):
        logging.getLogger(name).setLevel(logging.INFO)


def main() -> None:
    """Console entry point."""
    app()


if __name__ == "__main__":
    main()
