"""The training engine: everything here imports torch."""
