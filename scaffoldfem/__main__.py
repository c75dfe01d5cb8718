"""``python -m scaffoldfem`` runs the command line."""

import sys

from scaffoldfem.cli import main

sys.exit(main())
