"""The command line: the typer app and its commands (cli/*_commands.py: parse, call the
library, render); cli/common.py maps errors to exit codes.

Imports stay light: TensorFlow loads only inside `train`, so --help, recommend, check and
datasets answer at once.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from taskfit.cli import run_commands, serve_command, spec_commands, train_commands
from taskfit.cli.common import run_app
from taskfit.model.keras_setup import lean_first_imports

app = typer.Typer(
    name="taskfit",
    help="A YAML task spec becomes the right Keras model: output layer, loss and metrics from one "
    "recommendation table, then trained and saved.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: formatting it with rich costs a tenth of a second
)


def _print_version(asked: bool) -> None:
    if asked:
        from taskfit import __version__

        typer.echo(f"taskfit {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            help="print taskfit's version and exit",
            callback=_print_version,
            is_eager=True,
        ),
    ] = False,
) -> None:
    """The options before a command."""


# The commands in the order --help lists them.
for command in (
    spec_commands.recommend,
    spec_commands.check,
    train_commands.train,
    run_commands.predict,
    run_commands.evaluate,
    run_commands.explain,
    spec_commands.datasets,
    run_commands.compare,
    run_commands.report,
    train_commands.tune,
    run_commands.export,
    serve_command.serve,
    spec_commands.schema,
):
    app.command()(command)


def main() -> None:
    # before any command imports Keras: the backend a KERAS_BACKEND in the shell would pick
    # breaks predict and evaluate (model/keras_setup.py); the workers set their own
    os.environ["KERAS_BACKEND"] = "tensorflow"
    # TensorFlow imports JAX, when it is installed, for TFLite's JAX converter, which taskfit
    # never calls: 0.4-0.7 s of each command that loads TensorFlow (python -X importtime), and
    # a Ctrl-C landing in JAX's garbage-collection callback was swallowed there (predict went
    # on and exited 0). The workers of --workers run JAX in processes of their own.
    sys.modules.setdefault("jax", None)  # type: ignore[arg-type]
    lean_first_imports()
    run_app(app)
