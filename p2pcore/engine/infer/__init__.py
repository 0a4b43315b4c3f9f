"""Inference: the test-time protocols, translating files (batched, tiled, pipelined) and exporting a generator."""
