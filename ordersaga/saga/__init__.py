"""The pure saga rules: state machines and step functions, no Faust, Kafka or Redis."""
