"""One error path for every command: the line a person reads and the exit code."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from tickwatch.cli.errors import exits_on_error, mask_in_errors
from tickwatch.errors import ConfigError, StoreError


@pytest.fixture(autouse=True)
def _no_secrets():
    yield
    mask_in_errors([])


def _app(command: object) -> typer.Typer:
    app = typer.Typer()
    app.command()(command)  # type: ignore[arg-type]
    app.command("other")(lambda: None)  # two commands: the name is an argument
    return app


def test_a_project_error_is_one_line_with_exit_2_and_secrets_masked():
    mask_in_errors(["s3cr3tkey"])

    @exits_on_error()
    def load(name: str) -> None:
        raise ConfigError(f"[{name}] ALPHA_VANTAGE_API_KEY=s3cr3tkey is refused")

    done = CliRunner().invoke(_app(load), ["load", "x[/]"])
    assert done.exit_code == 2
    # markup escaped: the brackets a message quotes are shown as they are
    assert done.output.strip() == "error: [x[/]] ALPHA_VANTAGE_API_KEY=*** is refused"


def test_around_a_step_the_code_is_the_one_given_and_other_errors_pass():
    calls = []

    @exits_on_error()
    def finish(step: str) -> None:
        calls.append(step)
        if step == "store":
            with exits_on_error(1):
                raise StoreError("3 windows could not be stored")
        raise ValueError("a bug, not an input problem")

    stored = CliRunner().invoke(_app(finish), ["finish", "store"])
    assert stored.exit_code == 1
    assert "error: 3 windows could not be stored" in stored.output
    bug = CliRunner().invoke(_app(finish), ["finish", "other"])
    assert isinstance(bug.exception, ValueError)  # a traceback, not a polite exit
    assert calls == ["store", "other"]
