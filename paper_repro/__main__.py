"""``python -m paper_repro`` is ``paper-repro``."""
import sys

from .cli import main

sys.exit(main())
