"""The local runtime behind ``ordersaga run``: the broker and Redis it starts, the
topics it creates, and the supervisor that keeps every group's workers running."""
