"""Pydantic models for the wire envelope, every command and event, and the HTTP bodies."""

from ordersaga.schemas.messages import (
    MESSAGE_TYPES,
    Envelope,
    Message,
    message_type,
)

__all__ = ["MESSAGE_TYPES", "Envelope", "Message", "message_type"]
