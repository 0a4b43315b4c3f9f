"""Converters from checkpoints written by other implementations into p2p networks."""
