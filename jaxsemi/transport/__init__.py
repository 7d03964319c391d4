"""jaxsemi.transport (being built)."""
