"""One module per agent group, each a Faust app: ``faust -A ordersaga.agents.<group> worker``.

Each module's ``build(settings)`` makes its group from explicit settings; the
module's own ``app``, ``node``, tables and agents are its default group's, built
from the process settings on first use (``ordersaga.agents.building``). The
groups themselves (names, modules, ports) are listed in ``ordersaga.shell.groups``.
"""
