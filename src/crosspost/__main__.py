"""``python -m crosspost``."""

from crosspost.cli import main

main()
