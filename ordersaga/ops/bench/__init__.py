"""``ordersaga bench``: sagas per second, latency, memory and lag, against a ceiling.

What one run does:

1. Starts the embedded system (broker, Redis, ``--workers`` workers per agent
   group, on free ports, no demo catalogue) or, with ``--attach``, uses the one
   that ``KAFKA_BROKER`` and ``ORDERSAGA_WEB_PORT`` (and ``ORDERSAGA_WEB_HOST``)
   point at.
2. Creates ``--skus`` SKUs with stock for every order over
   ``POST /inventory/{sku}/restock`` and waits until ``GET /inventory/{sku}``
   shows it.
3. Unless ``--no-relay``, measures the ceiling with the workers idle: a plain
   aiokafka relay of as many hops as a saga has (``ordersaga.ops.relay``), a
   flood and then a closed-loop chain. Unless ``--no-faust-chain`` (or
   ``--no-relay``), the same closed-loop chain (``--faust-chains`` chains,
   1000) through seven pass-through Faust apps made with the workers'
   settings (``ordersaga.ops.faustchain``): Faust's own cost, apart from the
   saga's.
4. Unless ``--lone 0``, places ``--lone`` orders (30) one at a time on the
   idle system, each once the previous one ended, after three unmeasured ones:
   a lone saga's latency.
5. Places ``--warmup`` then ``--orders`` orders (one SKU each, ``tok_visa``, an
   address the carrier accepts), either closed loop (``--concurrency`` orders
   in flight, the default) or open loop (``--rate`` orders per second whatever
   the system does), injected ``--via kafka`` (PlaceOrder envelopes produced
   straight onto ``orders.commands``, keyed by order id) or ``--via http``
   (``POST /orders`` over keep-alive connections).
   It reads the cost counters (``costs``) as the warm-up's last order is
   placed and again once every order ended.
6. Reads the outcome of every order from ``orders.events`` with a group-less
   consumer on every partition, starting at the end offsets taken before the
   first order.
7. Unless ``--no-step-up``, steps an open loop via Kafka up from 0.75 times
   the measured sagas/s until a step does not hold (``stepup``): the maximum
   sustained rate. Then ``--overload``, idle CPU, lag, ``--audit``; reads the
   workers' peak RSS and consumer lag, writes a JSON file and prints a
   one-screen summary.

Definitions (every time is this machine's wall clock, in seconds):

- *accepted*: ``--via kafka``, when the broker acknowledged the produce of the
  PlaceOrder; ``--via http``, when the 202 arrived.
- *ended*: the envelope ``occurred_at`` of the first OrderEvent of the order
  whose snapshot status is COMPLETED, FAILED or CANCELLED (stamped by the
  orders worker when it decided). Against ``--attach`` on other machines their
  clock skew enters the latency.
- *latency*: ended - accepted, per measured order. Percentiles are nearest-rank:
  the smallest value with at least p% of the values at or below it.
- *warm-up*: the first ``--warmup`` orders injected; the ``--orders`` after
  them are the measured ones.
- *sagas/s*: the window opens when the first measured order is accepted and
  closes when the last measured order ends; the rate is the number of bench
  orders (warm-up ones included) that ended inside the window divided by its
  length. Counting every order that ended inside it, not only measured ones,
  gives what the system sustained during the window: in closed loop the
  warm-up orders still in flight when it opens end inside it, and excluding
  them would understate the rate by (K-1)/N.
- *accepted/s*: measured orders / (last measured accepted - first measured
  accepted); in open loop, how much of ``--rate`` was really offered.
- *ceiling*: the relay's messages per second (see ``ordersaga.ops.relay``);
  the summary gives sagas/s as a share of it.
- *Faust chain*: chains per second of the closed loop through the Faust apps
  (as many in flight as ``--concurrency``), measured once a probe went through
  every partition; its CPU ms per chain as for sagas (the apps and the
  broker; the load generator apart).
- *peak RSS*: VmHWM of every worker process (and of the broker and Redis) from
  ``/proc/<pid>/status`` at the end; not available with ``--attach``.
- *lag*: per consumer group ``ordersaga-<group>``, end offset - committed offset
  summed per topic, read as soon as the last order ended and again once the
  groups have caught up (or ``--settle`` seconds passed): Faust commits every
  few seconds, so some lag right at the end is normal. Committed offsets are
  asked for per partition, because the embedded broker (Tansu) drops the
  connection on an OffsetFetch for all of a group's offsets; a group whose
  offsets cannot be read is reported n/a with the error.
- *CPU %*: CPU time of each process over the saga phase (and over the relay)
  as a share of one core; it shows which process limits the rate.
- *CPU ms/saga*: a process's CPU % * 10 / sagas/s (p% of a core is p/100
  core-seconds each second). The *system* figure sums the workers, broker and
  Redis; the load generator (the bench process: injection, its consumers) is
  given on its own and left out of it.
- *per saga* (handled, produced, Kafka requests, Redis calls): the growth of a
  counter between the two cost readings divided by the bench orders that
  ended between them. *Handled*: ``ordersaga_messages_handled_total`` of each
  worker's ``/metrics``, summed per agent group. *Produced*: end offsets
  summed over every partition of every topic (changelogs and Kafka's internal
  topics included, the relay's not), by topic in the JSON. *Kafka requests*:
  ``ordersaga_kafka_requests_total`` of the workers (every request their
  aiokafka clients sent, by request class; the bench's own are not counted).
  *Redis calls*: the calls of ``INFO commandstats`` summed over commands
  (Redis counts a script's call and each command the script runs). Work
  still under way at either reading (sagas in flight, projections behind)
  makes the two ends differ by about as much as they cancel in a steady run.
- *lone saga*: latency (as above) of orders placed one at a time, each when
  the previous one ended, on the system with nothing else to do.
- *maximum sustained rate*: the accepted/s of the fastest open-loop step that
  held: 10 s steps growing by 25%, each judged once its orders ended or 2 s
  passed; a step does not hold when its p99 (an order not ended counts as
  slower than any) passes 2 s, its orders' ends come out at under 90% of the
  rate they were accepted at (ends per second from the step's first end to
  its last), or more than 1% of them had not ended. At most 90 s in all.

With ``--attach`` the relay topics ``relay.0 .. relay.13`` stay on that broker
(a later run reuses them), and the bench's SKUs stay in its inventory.

Where it is: ``run`` (one run from start to end, and the CLI entry point
``main``), ``config`` (``BenchConfig``), ``phases`` (stock, ceiling, sagas,
lag, audit, peak RSS), ``load`` (the orders and their tracking), ``probes``
(/proc, consumer lag, the machine), ``costs`` (messages, requests and Redis
calls per saga), ``stepup`` (the maximum sustained rate), ``stats`` (the figures defined above) and
``report`` (the summary printed at the end).
"""

from ordersaga.ops.bench.config import BenchConfig
from ordersaga.ops.bench.load import Ended, Tracker
from ordersaga.ops.bench.probes import cpu_percent, lag_by_topic, parse_cpu_ticks, parse_vmhwm_kb
from ordersaga.ops.bench.report import default_out_path, format_summary
from ordersaga.ops.bench.run import main, run_bench
from ordersaga.ops.bench.stats import (
    Window,
    cpu_ms_per_saga,
    latency_stats,
    percentile,
    rate_between,
    throughput_window,
)

__all__ = [
    "BenchConfig",
    "Ended",
    "Tracker",
    "Window",
    "cpu_ms_per_saga",
    "cpu_percent",
    "default_out_path",
    "format_summary",
    "lag_by_topic",
    "latency_stats",
    "main",
    "parse_cpu_ticks",
    "parse_vmhwm_kb",
    "percentile",
    "rate_between",
    "run_bench",
    "throughput_window",
]
