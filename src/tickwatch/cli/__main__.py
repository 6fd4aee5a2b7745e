"""`python -m tickwatch.cli`: the `tickwatch` command."""

from tickwatch.cli import app

app()
