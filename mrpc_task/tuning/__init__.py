"""Choosing a recipe: the selection split, scoring a checkpoint on named data, sweeps over
grids and seeds, and weight soups. Dev reports; these choose."""
