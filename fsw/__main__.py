"""``python -m fsw``: the flight software process (see fsw.cli)."""

import sys

from .cli import main

sys.exit(main())
