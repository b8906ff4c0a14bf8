"""``python -m cellshift`` runs the command line (also under ``accelerate launch -m cellshift``)."""

import sys

from cellshift.cli import main

sys.exit(main())
