"""Pydantic models for the wire envelope, every command and event, the HTTP bodies, and
the vocabulary of statuses and failure reasons (``status``)."""
