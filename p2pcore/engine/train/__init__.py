"""Training: the loop, one side's update, what a run's state holds, activation recomputation and the weight average."""
