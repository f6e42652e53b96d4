"""``python -m crosspost``."""

from crosspost.entry import main

main()
