"""Every side effect warroom has: thin, typed, idempotent activities over vendor APIs."""
