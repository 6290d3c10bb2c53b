"""``python -m hw_sim``: the simulated hardware process (see hw_sim.cli)."""

import sys

from .cli import main

sys.exit(main())
