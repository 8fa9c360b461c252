"""``lstm-pipeline data``: the spans of labelled data that training takes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.common import WorkspaceOption, run
from flows.config import default_workspace

data_app = typer.Typer(
    help="List the spans of labelled data (one per accepted drop), or retire or restore one."
)

SpanArgument = Annotated[str, typer.Argument(help="The span's id, as `data list` shows it.")]
ReasonOption = Annotated[str, typer.Option(help="Why; recorded with the change.")]
_BY_HAND = "by hand"


def _root(workspace: Path | None) -> Path:
    return (workspace or default_workspace()) / "labelled"


@data_app.command("list")
def data_list(workspace: WorkspaceOption = None) -> None:
    """Every span, in the order accepted: its rows per domain, split and label, and status."""
    from lstm_model.data.spans import list_spans

    spans = run(lambda: list_spans(_root(workspace)))
    if not spans:
        typer.echo(f"no spans yet: drop labelled files into {_root(workspace) / 'inbox'}")
        return
    typer.echo(f"{'span':<16}  {'status':<7}  {'rows':>6}  {'accepted':<19}  source / per domain")
    for span in spans:
        typer.echo(
            f"{span.id:<16}  {span.status:<7}  {span.rows:>6}  {span.accepted_at[:19]:<19}  "
            f"{span.source_file}"
        )
        for domain, splits in sorted(span.counts.items()):
            shown = "  ".join(
                f"{split} {c['0']} neg / {c['1']} pos" for split, c in sorted(splits.items())
            )
            typer.echo(f"{'':>56}{domain}: {shown}")
        if span.status == "retired":
            typer.echo(f"{'':>56}retired {span.retired_at}: {span.reason}")


@data_app.command("retire")
def data_retire(
    span: SpanArgument, reason: ReasonOption, workspace: WorkspaceOption = None
) -> None:
    """Take a span out of future training; it stays on disk and `data restore` undoes it."""
    from lstm_model.data.spans import retire

    done = run(lambda: retire(_root(workspace), span, reason))
    if done is None:
        typer.echo(f"span {span} retired (its files are gone): the next retrain goes without it")
    else:
        typer.echo(f"span {done.id} retired: the next retrain leaves its {done.rows} rows out")


@data_app.command("restore")
def data_restore(
    span: SpanArgument, reason: ReasonOption = _BY_HAND, workspace: WorkspaceOption = None
) -> None:
    """Put a retired span back into training."""
    from lstm_model.data.spans import restore

    done = run(lambda: restore(_root(workspace), span, reason))
    rows = "" if done is None else f" its {done.rows} rows"
    typer.echo(f"span {span} restored: the next retrain takes{rows or ' it'} again")
