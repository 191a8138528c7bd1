"""ordersaga: an order-fulfilment saga running as Faust stream processors on Kafka."""

__all__ = ["__version__"]
__version__ = "0.1.0"
