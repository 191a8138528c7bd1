"""Operations: metrics, topic admin, console tools, dead letters, audit and demo."""
