"""``python -m modelport.cli``: the ``modelport`` command."""

import sys

from modelport.cli import main

sys.exit(main())
