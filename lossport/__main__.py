"""``python -m lossport`` runs the command line."""

from lossport.cli import main

main()
