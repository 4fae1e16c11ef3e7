"""warroom's shared vocabulary: pure models and parsers, no I/O."""
