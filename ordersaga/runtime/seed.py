"""The demo catalogue and customers, stocked and registered over the web view's API.

`ordersaga run` seeds them when it is up (ORDERSAGA_SEED_CATALOG); `ordersaga seed`
does the same against any running web view (docker-compose's one-shot `seed`
service), so the README's examples order as customers that exist. Re-seeding is
harmless: restocks carry Idempotency-Keys and a registration of a known
customer changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import httpx

from ordersaga.runtime.supervision import stock_check, wait_all

DEMO_CATALOGUE = (("book", 100, 1500), ("mug", 100, 900), ("poster", 50, 1200))
# The customers `make run` registers, who the README's examples and the demo order as.
DEMO_CUSTOMERS = (
    ("cust-ada", "Ada Lovelace", "ada@example.com"),
    ("cust-grace", "Grace Hopper", "grace@example.com"),
    ("cust-alan", "Alan Turing", "alan@example.com"),
)
# How long the stock may take to show in the web view after its restock is sent.
CATALOGUE_TIMEOUT_S = 60.0


async def seed_demo(
    base_url: str,
    headers: Mapping[str, str],
    say: Callable[[str], None],
    where: str = "the web view's log",
    timeout_s: float = CATALOGUE_TIMEOUT_S,
) -> None:
    """Restock the demo catalogue, wait until it shows, then register the demo customers."""
    async with httpx.AsyncClient(base_url=base_url, timeout=5, headers=dict(headers)) as client:
        for sku, quantity, price in DEMO_CATALOGUE:
            # json= also sets the Content-Type: application/json the route asks for.
            r = await client.post(
                f"/inventory/{sku}/restock",
                json={"quantity": quantity, "unit_price": price},
                headers={"Idempotency-Key": f"seed-{sku}"},
            )
            if r.status_code != 202:
                raise RuntimeError(f"restock of {sku} answered {r.status_code}: {r.text}")
        # A 202 only means the restock was sent; "seeded" promises the stock is on show.
        say("waiting for the catalogue to show in the web view...")
        checks = {sku: stock_check(client, sku, q) for sku, q, _ in DEMO_CATALOGUE}
        await wait_all(checks, f"not in the web view (see {where})", say, timeout_s)
        for customer_id, name, email in DEMO_CUSTOMERS:
            r = await client.post(
                "/customers", json={"customer_id": customer_id, "name": name, "email": email}
            )
            if r.status_code not in (200, 201, 202):
                raise RuntimeError(f"customer {customer_id} answered {r.status_code}: {r.text}")
    say("catalogue " + ", ".join(f"{s} x{q} @ {p}c" for s, q, p in DEMO_CATALOGUE))
    say("customers " + ", ".join(c for c, _, _ in DEMO_CUSTOMERS))
