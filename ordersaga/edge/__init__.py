"""The HTTP edge every worker shares: JSON errors and views, documented operations,
and the bearer tokens that say who calls."""
