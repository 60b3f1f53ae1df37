"""Experiments that combine the sub-packages: mode sweeps, the demo pipeline."""
