"""Training: the loop (`trainer`) and its collaborators, one job each: the data feed, the optimisation, one
training step, one side's update and the divergence guard, the epoch end, the checkpointing, the callbacks,
the networks made ready, activation recomputation, interrupts and the weight average."""
