"""Building a run from a validated recipe: the adapter, the task, the networks, their devices and their first
weights."""
