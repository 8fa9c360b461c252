"""``lstm-pipeline``: run the pipeline's flows locally from the command line."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated, Literal

import typer

from lstm_model.config import (
    CACHE_ENV,
    LOCAL_SOURCE_CANDIDATES,
    OFFICIAL_ARCHIVE_URL,
    SOURCE_ENV,
    WORKSPACE_ENV,
    ReviewsContractConfig,
    TokeniserConfig,
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


_T, _C = TokeniserConfig, ReviewsContractConfig


@app.command(epilog=_SOURCE_ORDER)
def retrain(
    source: Annotated[str | None, typer.Option(help=_SOURCE_HELP)] = None,
    workspace: Annotated[Path | None, typer.Option(help=_WORKSPACE_HELP)] = None,
    vocab_size: Annotated[int, typer.Option(help=_help(_T, "vocab_size"))] = _default(
        _T, "vocab_size"
    ),
    maxlen: Annotated[int, typer.Option(help=_help(_T, "maxlen"))] = _default(_T, "maxlen"),
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
) -> None:
    """Run the retraining flow: ingest -> validate -> tokenise -> validate."""
    from pydantic import ValidationError

    try:
        tokeniser = TokeniserConfig(
            vocab_size=vocab_size, maxlen=maxlen, padding=padding, truncating=truncating
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
            source=source, workspace=workspace, tokeniser=tokeniser, reviews_contract=contract
        )
    )
    typer.echo(outputs.model_dump_json(indent=2))


@app.command("show-source", epilog=_SOURCE_ORDER)
def show_source(source: Annotated[str | None, typer.Option(help=_SOURCE_HELP)] = None) -> None:
    """Print which data source a run would use, and why, without ingesting it."""
    from lstm_model.sources import resolve_source

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
