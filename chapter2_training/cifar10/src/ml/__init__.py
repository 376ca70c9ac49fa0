"""Data, network, export and evaluation: no HTTP, no registry."""
