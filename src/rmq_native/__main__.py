"""``python -m rmq_native``: the rmq-native command line."""

import sys

from .cli import main

sys.exit(main())
