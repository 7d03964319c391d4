"""jaxsemi benchmarks: plain scripts printing JSON; ``python -m benchmarks`` runs them all."""
