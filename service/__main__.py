"""`python -m service` is the `debrief` command."""

from service.cli import main

main()
