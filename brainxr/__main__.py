"""``python -m brainxr``: the same as the ``brainxr`` command."""

import sys

from brainxr.cli import main

sys.exit(main())
