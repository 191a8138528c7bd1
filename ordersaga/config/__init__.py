"""The one configuration: ``Settings``, read from ``ORDERSAGA_*`` variables, in sections."""
