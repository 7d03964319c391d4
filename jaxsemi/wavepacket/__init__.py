"""jaxsemi.wavepacket (being built)."""
