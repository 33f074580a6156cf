"""`python -m ccvec.cli …` runs the `ccvec` command."""

from ccvec.cli.common import main

main()
