"""``python -m kmsforensics``: the ``kmsforensics`` command."""

from .cli import main

raise SystemExit(main())
