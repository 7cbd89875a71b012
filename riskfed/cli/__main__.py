"""``python -m riskfed.cli`` runs the command line (as the ``riskfed`` script does)."""

import sys

from riskfed.cli import main

sys.exit(main())
