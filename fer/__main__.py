"""``python -m fer``: see :mod:`fer.cli`."""

import sys

from fer.cli import main

sys.exit(main())
