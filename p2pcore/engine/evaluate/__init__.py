"""Evaluation: the recipe's metrics over a split, and the sample grids written at epoch ends."""
