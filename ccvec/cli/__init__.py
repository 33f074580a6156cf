"""The `ccvec` command line: one module per command group, each a thin shell over a module that works.

`common` holds the app, shared option types and helpers. Importing a group module registers its
commands; the order below (the data flow) is the order `ccvec --help` lists them in.
"""

# isort: off
from ccvec.cli import run, loading, neardup, graph, clusters, report, scores, abtest, models, database, spark  # noqa: F401

# isort: on
from ccvec.cli.common import app, main

__all__ = ["app", "main"]
