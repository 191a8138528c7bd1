"""``python -m ordersaga`` is the ``ordersaga`` command."""

import sys

from ordersaga.app.cli import main

sys.exit(main())
