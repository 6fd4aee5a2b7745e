"""`python -m tickwatch.cli`: the `tickwatch` command."""

from tickwatch.cli import app

if __name__ == "__main__":  # importing this module (e.g. walking the package) runs nothing
    app()
