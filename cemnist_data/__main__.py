"""``python -m cemnist_data``: the ``cemnist`` command."""

import sys

from .cli import main

sys.exit(main())
