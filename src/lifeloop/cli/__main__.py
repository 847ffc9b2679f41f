"""``python -m lifeloop.cli``."""

from lifeloop.cli.app import main

main()
