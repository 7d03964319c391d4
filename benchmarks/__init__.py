"""Committed benchmark reports (``results/``); the benchmarks themselves are ``jaxsemi.bench``."""
