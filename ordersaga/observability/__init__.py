"""What an operator reads: JSON logs with message and correlation ids, Prometheus
metrics, and OpenTelemetry traces."""
