"""``python -m rmq_native.devbroker``: see :mod:`rmq_native.devbroker.cli`."""

import sys

from .cli import main

sys.exit(main())
