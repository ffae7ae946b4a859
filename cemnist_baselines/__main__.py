"""``python -m cemnist_baselines`` = the ``cemnist-baselines`` command."""
import sys

from .cli import main

sys.exit(main())
