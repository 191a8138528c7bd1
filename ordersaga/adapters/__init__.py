"""Adapters to the world outside the saga: the (simulated) payment provider."""
