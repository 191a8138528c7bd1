"""The Faust shell around the pure rules: each agent group's app (``Node``), the wire
codec, typed tables, routing, dead letters, and the worker pages and heartbeat that
attach to a node. Every Faust and aiokafka patch lives in ``patches``."""
