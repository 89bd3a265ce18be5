"""Per-sample specifications as pure functions of (dataset seed, sample id, config)."""
