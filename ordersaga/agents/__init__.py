"""One module per agent group, each a Faust app: ``faust -A ordersaga.agents.<group> worker``.

The groups themselves (names, modules, ports) are listed in ``ordersaga.shell.groups``.
"""
