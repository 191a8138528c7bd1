"""The first lines `ordersaga run` prints: what a user must know before sending a request."""

from __future__ import annotations

from ordersaga.config.settings import Settings


def edge_summary(settings: Settings) -> list[str]:
    """What `ordersaga run` says first: auth, limits and the gateway's test faults.

    Whether the API asks for tokens comes first: an open API must not go unnoticed.
    """
    lines: list[str] = []
    if settings.auth_enabled:
        lines.append(
            f"auth      on: {settings.auth_algorithm} bearer tokens "
            "(`ordersaga token --customer ID` or `--admin` mints one)"
        )
    else:
        lines.append(
            "auth      OFF: every route is open to whoever reaches it; set "
            "ORDERSAGA_AUTH_SECRET (32+ characters) to require tokens"
        )
    reads = (
        f"; GETs {settings.read_rate_limit_per_s:g}/s, bursts of {settings.read_rate_limit_burst}"
        if settings.read_rate_limit_per_s > 0
        else "; GETs unlimited (ORDERSAGA_READ_RATE_LIMIT_PER_S=0)"
    )
    if settings.rate_limit_per_s > 0:
        lines.append(
            f"limits    {settings.rate_limit_per_s:g} mutating requests/s per client, "
            f"bursts of {settings.rate_limit_burst}{reads}"
        )
    else:
        lines.append(f"limits    off (ORDERSAGA_RATE_LIMIT_PER_S=0){reads}")
    if settings.gateway_faults:
        lines.append(
            "payments  simulated gateway with test faults ON: tok_decline, tok_timeout "
            "and tok_gateway_error decline, never answer or fail "
            "(ORDERSAGA_GATEWAY_FAULTS=false turns them off)"
        )
    else:
        lines.append("payments  simulated gateway, test faults off: every token is charged")
    return lines
