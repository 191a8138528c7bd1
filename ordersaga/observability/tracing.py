"""OpenTelemetry traces: a span per HTTP request and per message handled, linked over Kafka.

On only when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set; then each worker exports its
spans over OTLP/HTTP in batches (a background thread) as ``ordersaga-<group>``.
Off, a :class:`Node` holds no :class:`Tracing` at all: no provider, no spans, no
``traceparent`` built, and the hot path pays one ``is None`` check per message.

The link across Kafka is the W3C ``traceparent`` header: a message sent while a
span is current carries it, and the span of the message's handling is that
span's child. No span is made for a send itself: the handling span of the
sender already covers it, and a send is the cheap half of every hop.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from ordersaga.edge.http import Handler, route_template
from ordersaga.schemas.messages import Envelope

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
_PROPAGATOR = TraceContextTextMapPropagator()


def traces_url(endpoint: str) -> str:
    """Where OTLP/HTTP takes spans, given the base ``OTEL_EXPORTER_OTLP_ENDPOINT`` names."""
    return f"{endpoint.removesuffix('/')}/v1/traces"


def otlp_provider(service: str, endpoint: str) -> TracerProvider:
    """A provider exporting to ``endpoint`` over OTLP/HTTP in batches, as ``service``."""
    # Imported here: a worker with tracing off never loads the exporter (requests, protobuf).
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return provider_for(service, OTLPSpanExporter(endpoint=traces_url(endpoint)))


def tracing_for(service: str, endpoint: str | None) -> Tracing | None:
    """A worker's tracing when an OTLP endpoint is configured, else None: tracing off."""
    if not endpoint:
        return None
    return Tracing(otlp_provider(service, endpoint), consumer_group=service)


def provider_for(service: str, exporter: SpanExporter) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


class Tracing:
    """One worker's tracer, with the Kafka and HTTP ends of context propagation."""

    def __init__(self, provider: TracerProvider, consumer_group: str) -> None:
        self.provider = provider
        self.consumer_group = consumer_group
        self.tracer = provider.get_tracer("ordersaga")

    def headers(self) -> list[tuple[str, bytes]]:
        """The current span's ``traceparent`` (and ``tracestate``) as Kafka headers."""
        carrier: dict[str, str] = {}
        _PROPAGATOR.inject(carrier)
        return [(k, v.encode()) for k, v in carrier.items()]

    @contextmanager
    def handling(
        self,
        *,
        topic: str,
        partition: int,
        offset: int,
        key: Any,
        headers: Iterable[tuple[str, bytes]],
        envelope: Envelope | None,
    ) -> Iterator[Span]:
        """The span of one message handled, child of the span that sent it (if any)."""
        parent = _PROPAGATOR.extract(_trace_headers(headers))
        attributes: dict[str, str | int] = {
            "messaging.system": "kafka",
            "messaging.operation.type": "process",
            "messaging.operation.name": "process",
            "messaging.destination.name": topic,
            "messaging.destination.partition.id": str(partition),
            "messaging.kafka.offset": offset,
            "messaging.consumer.group.name": self.consumer_group,
        }
        if key is not None:
            attributes["messaging.kafka.message.key"] = _text(key)
        if envelope is not None:
            attributes["messaging.message.id"] = envelope.event_id
            attributes["ordersaga.event_type"] = envelope.type
            attributes["ordersaga.correlation_id"] = envelope.correlation_id
            if envelope.order_id:
                attributes["ordersaga.order_id"] = envelope.order_id
        with self.tracer.start_as_current_span(
            f"{topic} process", context=parent, kind=SpanKind.CONSUMER, attributes=attributes
        ) as span:
            yield span

    def middleware(self) -> Middleware:
        """An aiohttp middleware: a server span per request, child of its ``traceparent``."""
        tracer = self.tracer

        @web.middleware
        async def trace_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
            route = route_template(request)  # a span name of low cardinality
            parent = _PROPAGATOR.extract(request.headers)
            name = f"{request.method} {route}" if route else request.method
            attributes: dict[str, str | int] = {
                "http.request.method": request.method,
                "url.path": request.path,
            }
            if route:
                attributes["http.route"] = route
            with tracer.start_as_current_span(
                name, context=parent, kind=SpanKind.SERVER, attributes=attributes
            ) as span:
                response = await handler(request)
                span.set_attribute("http.response.status_code", response.status)
                correlation_id = response.headers.get("X-Correlation-ID")
                if correlation_id:
                    span.set_attribute("ordersaga.correlation_id", correlation_id)
                if response.status >= 500:
                    span.set_status(Status(StatusCode.ERROR))
                return response

        return trace_requests

    def shutdown(self) -> None:
        """Export what is still queued, then stop the export thread."""
        self.provider.shutdown()


def _trace_headers(headers: Iterable[tuple[str, bytes]] | Mapping[str, bytes]) -> dict[str, str]:
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    return {
        k: v.decode("latin-1")
        for k, v in pairs
        if k in (TRACEPARENT, TRACESTATE) and isinstance(v, bytes | bytearray)
    }


def _text(key: Any) -> str:
    return key.decode("utf-8", "replace") if isinstance(key, bytes | bytearray) else str(key)


__all__ = ["Tracing", "otlp_provider", "provider_for", "traces_url", "tracing_for"]
