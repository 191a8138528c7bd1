"""Settings, the Faust app factory, the wire codec, the embedded runtime and the CLI."""
