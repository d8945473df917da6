"""``python -m llem``."""

from llem.cli import main

raise SystemExit(main())
