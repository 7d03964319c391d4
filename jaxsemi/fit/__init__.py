"""jaxsemi.fit (being built)."""
