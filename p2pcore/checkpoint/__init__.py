"""Checkpoints: the safetensors file format read and checked without torch, reading and writing files, and a run's
state as tensors and JSON metadata."""
