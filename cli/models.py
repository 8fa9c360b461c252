"""``lstm-pipeline models``: the registered model versions."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.common import RegistryOption, WorkspaceOption, registry_root, run
from flows.config import ExportConfig

models_app = typer.Typer(
    help="List the registered model versions, check or sign one, or roll back the champion."
)


@models_app.command("list")
def models_list(workspace: WorkspaceOption = None, registry: RegistryOption = None) -> None:
    """Every registered version with its test accuracy, status and reason."""
    from lstm_model.release.registry import Registry

    versions = Registry(registry_root(workspace, registry)).list_versions()
    if not versions:
        typer.echo("no model versions registered yet")
        return
    typer.echo(f"{'version':>7}  {'accuracy':>8}  {'status':<9}  {'created':<25}  reason")
    for v in versions:
        accuracy = "-" if v.accuracy is None else f"{v.accuracy:.4f}"
        marker = "*" if v.is_champion else " "
        removed = f" (model files removed {v.removed_at[:19]})" if v.removed_at else ""
        typer.echo(
            f"{v.version:>6}{marker}  {accuracy:>8}  {v.status:<9}  {v.created_at[:25]:<25}  "
            f"{v.reason}{removed}"
        )


@models_app.command("history")
def models_history(workspace: WorkspaceOption = None, registry: RegistryOption = None) -> None:
    """Per version: the dataset version it was trained on, its accuracy per slice (aclImdb
    test and each domain of labelled data), its status and why."""
    from lstm_model.release.history import history_rows, render_history

    typer.echo(render_history(run(lambda: history_rows(registry_root(workspace, registry)))))


@models_app.command("rollback")
def models_rollback(workspace: WorkspaceOption = None, registry: RegistryOption = None) -> None:
    """Make the previous champion the champion again."""
    from lstm_model.release.promotion import rollback_champion

    version = run(lambda: rollback_champion(registry_root(workspace, registry), ExportConfig()))
    typer.echo(f"champion is now version {version}")


@models_app.command("check")
def models_check(
    workspace: WorkspaceOption = None,
    registry: RegistryOption = None,
    version: Annotated[
        int | None, typer.Option(help="Registered version to check. Default: the champion.")
    ] = None,
) -> None:
    """Run the behavioural checks on a registered version; exit 1 if one fails."""
    # imported here: loading a model pulls in Keras, which --help need not wait for
    from lstm_model.release.checks import check_version

    report = run(lambda: check_version(registry_root(workspace, registry), version))
    typer.echo(report.render())
    if not report.passed:
        raise typer.Exit(code=1)


@models_app.command("sign")
def models_sign(
    version: Annotated[int, typer.Option(help="Registered version whose manifest to sign.")],
    workspace: WorkspaceOption = None,
    registry: RegistryOption = None,
) -> None:
    """Sign a version's manifest with $LSTM_PIPELINE_SIGNING_KEY, after checking every file
    against it: for versions registered before the key was set."""
    from lstm_model.release.registry import Registry

    run(lambda: Registry(registry_root(workspace, registry)).sign(version))
    typer.echo(f"model version {version}: manifest signed")
