"""The console command, run for real as a user runs it (no Prefect server configured)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import pytest
import typer
from pydantic import BaseModel, Field
from typer.testing import CliRunner

from cli.main import app
from cli.options import ConfigOptions, ConfigValues, config_fields, config_options
from data_contracts.config import ReviewsContractConfig
from lstm_model.artifacts import sha256_file
from lstm_model.data.config import TokeniserConfig
from lstm_model.evaluation.config import GateConfig
from lstm_model.model.config import PRESETS

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"

# Config fields that the hand-written CLI never had as flags (batch scoring's hardening
# fields, and its Parquet and chunk memory bounds added since), and the commands added since.
NEW_FLAGS = {
    "score": {
        *("--max-row-bytes", "--reject-text-chars", "--max-attempts"),
        *("--max-row-group-bytes", "--chunk-bytes"),
    },
    "retrain": {
        *("--domain", "--test-share", "--max-class-share", "--labelled-settle-seconds"),
        *("--slice-gate", "--no-slice-gate", "--slice-confidence", "--domain-weight"),
        *("--mobile", "--no-mobile", "--mobile-accuracy-tolerance"),
    },
}
NEW_COMMANDS = {
    "models check": {"--workspace", "--registry", "--version"},
    "models sign": {"--workspace", "--registry", "--version"},
    "models history": {"--workspace", "--registry"},
    "data list": {"--workspace"},
    "data retire": {"--workspace", "--reason", "span"},
    "data restore": {"--workspace", "--reason", "span"},
    "doctor": set(),
    "gc": {
        *("--workspace", "--registry", "--keep-accepted", "--rollback-depth"),
        *("--candidate-hours", "--run-days", "--keep-results", "--dry-run"),
    },
}
# Options that are no config field, added by hand since: a flow parameter each.
NEW_HAND_WRITTEN = {"retrain": {"--force"}}


def _cli(
    *args: str, home: Path, timeout: float = 300, api_url: str | None = None
) -> subprocess.CompletedProcess[str]:
    """The command in a child process; with ``api_url``, its flows report to that server
    instead of a temporary one of their own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "LSTM_PIPELINE"))}
    (home / "prefect").mkdir(exist_ok=True)
    env.update(PREFECT_HOME=str(home / "prefect"), COLUMNS="200")
    if api_url is not None:
        env["PREFECT_API_URL"] = api_url
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        cwd=home,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_help_lists_the_commands(tmp_path: Path) -> None:
    out = _cli("--help", home=tmp_path)
    assert out.returncode == 0
    assert "retrain" in out.stdout and "show-source" in out.stdout


def test_retrain_help_explains_every_option(tmp_path: Path) -> None:
    out = _cli("retrain", "--help", home=tmp_path)
    assert out.returncode == 0
    options = ["--source", "--workspace", "--registry", "--preset", "--units", "--l2"] + [
        "--" + name.replace("_", "-")
        for model in (TokeniserConfig, ReviewsContractConfig, GateConfig)
        for name in model.model_fields
        if name != "max_examples"
    ]
    for option in options:
        assert option in out.stdout, option
    assert "LSTM_PIPELINE_SOURCE" in out.stdout and "aclImdb_v1.tar.gz" in out.stdout


def test_retrain_runs_the_flow_locally(fixture_archive: Path, tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    tiny = ["--min-rows", "100", "--vocab-size", "3000", "--maxlen", "40", "--units", "8",
            "--embedding-dim", "8", "--epochs", "1", "--min-accuracy", "0",
            "--min-margin-over-baseline", "-1", "--no-mobile"]  # fmt: skip
    out = _cli(
        "retrain", "--source", str(fixture_archive), "--workspace", str(workspace), *tiny,
        home=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    outputs = json.loads(out.stdout[out.stdout.index("{") :])
    assert sha256_file(Path(outputs["tokenised_path"])) == outputs["tokenised_sha256"]
    assert outputs["champion"] == outputs["model_version"] == 1
    assert "Finished in state Completed()" in out.stderr
    assert "tokenise: 408 reviews" in out.stderr  # library logs reach the run log
    assert "LSTM kernel: generic LSTM kernel on CPU" in out.stderr

    listed = _cli("models", "list", "--workspace", str(workspace), home=tmp_path)
    assert listed.returncode == 0
    assert "     1*" in listed.stdout and "champion" in listed.stdout
    rollback = _cli("models", "rollback", "--workspace", str(workspace), home=tmp_path)
    assert rollback.returncode == 1
    assert "error: version 1 is the first champion: nothing to roll back to" in rollback.stderr


def test_contract_failure_exits_1_with_the_reason(
    fixture_archive: Path, tmp_path: Path, prefect_harness: str
) -> None:
    out = _cli(
        "retrain", "--source", str(fixture_archive), "--workspace", str(tmp_path),
        home=tmp_path, api_url=prefect_harness,
    )  # fmt: skip
    assert out.returncode == 1
    error = out.stderr[out.stderr.index("error: ") :]
    assert "expect_table_row_count_to_be_between(min_value=1000" in error
    assert "Traceback" not in error


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["retrain", "--vocab-size", "2"], "vocab_size"),
        (["retrain", "--min-rows", "10", "--max-rows", "5"], "min_rows 10 > max_rows 5"),
        (["score", "--dask-workers", "-1"], "dask_workers"),
        (["score", "--dask-address", "10.0.0.5:8786"], "dask_address"),
    ],
)
def test_invalid_options_are_refused(tmp_path: Path, args: list[str], message: str) -> None:
    out = _cli(*args, home=tmp_path)
    assert out.returncode == 1
    assert "invalid option" in out.stderr and message in out.stderr


def test_bad_padding_choice_is_refused(tmp_path: Path) -> None:
    out = _cli("retrain", "--padding", "middle", home=tmp_path)
    assert out.returncode == 2 and "middle" in out.stderr


def test_show_source_explains_the_choice(fixture_archive: Path, tmp_path: Path) -> None:
    env_out = _cli("show-source", "--source", str(fixture_archive), home=tmp_path)
    assert json.loads(env_out.stdout)["origin"] == "argument"
    missing = _cli("show-source", "--source", "nowhere.tar.gz", home=tmp_path)
    assert missing.returncode == 1
    assert "error: data source not found: nowhere.tar.gz (given by --source)" in missing.stderr


def _commands() -> dict[str, tuple[Callable[..., Any], typer.core.TyperCommand]]:
    """Command path -> (the function typer calls, the click command typer built from it)."""
    group = typer.main.get_command(app)
    found = {}
    for info in app.registered_commands:
        name = info.name or info.callback.__name__.replace("_", "-")
        found[name] = (info.callback, group.commands[name])
    for sub in app.registered_groups:
        for info in sub.typer_instance.registered_commands:
            found[f"{sub.name} {info.name}"] = (
                info.callback,
                group.commands[sub.name].commands[info.name],
            )
    return found


def test_every_flag_is_kept_and_new_ones_are_config_fields() -> None:
    before = json.loads((FIXTURES / "cli_options_before.json").read_text())
    commands = _commands()
    after = {
        path: {opt for p in command.params for opt in (*p.opts, *p.secondary_opts)}
        for path, (_, command) in commands.items()
    }
    assert {path: set(flags) for path, flags in before.items()} | NEW_COMMANDS == {
        path: flags - NEW_FLAGS.get(path, set()) - NEW_HAND_WRITTEN.get(path, set())
        for path, flags in after.items()
    }
    from flows.retrain import retrain as retrain_flow

    assert "force" in retrain_flow.parameters.properties
    for path, flags in NEW_FLAGS.items():
        sources = config_fields(commands[path][0])
        fields = {"--" + name.replace("_", "-") for name in sources}
        assert fields >= {flag.replace("--no-", "--") for flag in flags}, path  # --x/--no-x


def test_help_texts_are_kept_or_follow_the_config_fields() -> None:
    """A hand-written option keeps its help; a generated one shows its field's description
    (with the same additions as before where that description has not changed since)."""
    before = json.loads((FIXTURES / "cli_helps_before.json").read_text())
    checked = 0
    for path, (callback, command) in _commands().items():
        sources = config_fields(callback)
        helps = {p.name: p.help for p in command.params}
        for name, old_help in before.get(path, {}).items():
            if name in sources:
                model, field = sources[name]
                description = model.model_fields[field].description
                assert description and helps[name].startswith(description), (path, name)
                if old_help.startswith(description):
                    assert helps[name] == old_help, (path, name)
            else:
                assert helps[name] == old_help, (path, name)
            checked += 1
    assert checked == sum(len(helps) for helps in before.values())
    assert {"retrain", "score", "serve", "tune"} <= {
        path for path, (callback, _) in _commands().items() if config_fields(callback)
    }


@pytest.fixture
def retrain_calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The configurations `retrain` hands to the flow (which is not run)."""
    calls: list[dict[str, Any]] = []

    class _Outputs:
        def model_dump_json(self, **_: object) -> str:
            return "{}"

    def flow(**kwargs: Any) -> _Outputs:
        calls.append(kwargs)
        return _Outputs()

    monkeypatch.setitem(sys.modules, "flows.retrain", types.SimpleNamespace(retrain=flow))
    monkeypatch.setattr("cli.common.prepare_prefect", lambda: lambda: None)  # no server either
    return calls


def test_preset_values_stay_unless_an_option_overrides_them(
    retrain_calls: list[dict[str, Any]],
) -> None:
    out = CliRunner().invoke(app, ["retrain", "--preset", "classic", "--units", "7"])
    assert out.exit_code == 0, out.output
    [call] = retrain_calls
    assert call["model"] == PRESETS["classic"][1].model_copy(update={"units": 7})
    assert call["tokeniser"] == PRESETS["classic"][0]
    assert call["gate_config"] == GateConfig()
    assert call["baseline_config"].enabled


def test_no_baseline_switches_the_margin_off(retrain_calls: list[dict[str, Any]]) -> None:
    args = ["retrain", "--no-baseline", "--maxlen", "50", "--padding", "post", "--epochs", "2"]
    out = CliRunner().invoke(app, [*args, "--named-config", "tuned"])
    assert out.exit_code == 0, out.output
    [call] = retrain_calls
    assert call["gate_config"].min_margin_over_baseline is None
    assert not call["baseline_config"].enabled
    assert call["tokeniser"] == TokeniserConfig(maxlen=50, padding="post")
    assert call["training"].epochs == 2 and call["named_config"] == "tuned"


def test_domain_weights_are_repeated_key_value_options(
    retrain_calls: list[dict[str, Any]],
) -> None:
    out = CliRunner().invoke(
        app, ["retrain", "--domain-weight", "shop=5", "--domain-weight", " tickets = 2.5 "]
    )
    assert out.exit_code == 0, out.output
    assert CliRunner().invoke(app, ["retrain"]).exit_code == 0
    assert [call["training"].domain_weights for call in retrain_calls] == [
        {"shop": 5.0, "tickets": 2.5},
        {},
    ]
    for bad, message in (
        ("shop", "--domain-weight 'shop': expected KEY=VALUE"),
        ("imdb=2", "'imdb' is not a labelled domain name"),
        ("shop=0", "the weight of 'shop' is 0.0"),
    ):
        refused = CliRunner().invoke(app, ["retrain", "--domain-weight", bad])
        assert refused.exit_code == 1 and "error: invalid option:" in refused.output, bad
        assert message in refused.output, refused.output
    assert len(retrain_calls) == 2


class _Demo(BaseModel):
    size: int = Field(3, ge=1, description="How many.")
    side: Literal["pre", "post"] = Field("pre", description="Which side.")
    ratio: float | None = Field(None, gt=0, description="A share, or none.")
    verbose: bool = Field(False, description="Say more.")
    names: tuple[str, ...] = Field((), description="Not one option.")


def _demo_app(spec: ConfigOptions, seen: list[_Demo]) -> typer.Typer:
    def run(*, label: str = "x", demo_config: ConfigValues[_Demo]) -> None:
        seen.append(demo_config.build(_Demo(size=9)))

    # `spec` is local: the annotation must be an object, not a string to evaluate later
    run.__annotations__["demo_config"] = Annotated[ConfigValues[_Demo], spec]
    demo = typer.Typer()
    demo.command()(config_options(run))
    return demo


def test_a_config_field_becomes_an_option_with_its_help_and_default() -> None:
    seen: list[_Demo] = []
    demo = _demo_app(ConfigOptions(exclude=("names",), rename={"verbose": "chatty"}), seen)
    shown = CliRunner().invoke(demo, ["--help"], env={"COLUMNS": "200"})
    assert shown.exit_code == 0
    for text in ("--size", "How many.", "[default: 3]", "--side", "--ratio", "--chatty"):
        assert text in shown.output, text
    assert "--names" not in shown.output and "--verbose" not in shown.output

    out = CliRunner().invoke(demo, ["--ratio", "0.5", "--chatty"])
    assert out.exit_code == 0, out.output
    assert seen == [_Demo(size=3, ratio=0.5, verbose=True)]  # the option's default wins
    refused = CliRunner().invoke(demo, ["--size", "0"])
    assert refused.exit_code == 1
    assert "error: invalid option:" in refused.output and "size" in refused.output


def test_override_options_keep_the_base_value_unless_given() -> None:
    seen: list[_Demo] = []
    demo = _demo_app(ConfigOptions(only=("size", "side"), overrides=True), seen)
    assert CliRunner().invoke(demo, []).exit_code == 0
    assert CliRunner().invoke(demo, ["--side", "post"]).exit_code == 0
    assert seen == [_Demo(size=9), _Demo(size=9, side="post")]


def test_a_field_that_cannot_be_one_option_is_refused_by_name() -> None:
    with pytest.raises(TypeError, match=r"_Demo\.names"):
        _demo_app(ConfigOptions(), [])
    with pytest.raises(ValueError, match="_Demo has no field nope"):
        _demo_app(ConfigOptions(exclude=("nope",)), [])


def test_models_check_prints_the_behaviour_table_and_exits_on_failure(
    registry_with_champion: Path, tmp_path: Path
) -> None:
    result = _cli("models", "check", "--registry", str(registry_with_champion), home=tmp_path)
    # The fixture's tiny model fails the directional cases: the table, and exit 1.
    assert result.returncode == 1, result.stderr[-2000:]
    assert "minimum functionality" in result.stdout and "directional" in result.stdout
    assert "FAIL" in result.stdout
    empty = _cli("models", "check", "--registry", str(tmp_path / "none"), home=tmp_path)
    assert empty.returncode == 1 and "champion" in empty.stderr
