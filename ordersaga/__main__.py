"""``python -m ordersaga`` is the ``ordersaga`` command."""

import sys

from ordersaga.cli import main

sys.exit(main())
