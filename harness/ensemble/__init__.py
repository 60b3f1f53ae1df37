"""Ensembles of trained models: run members that differ by one named factor, analyse agreement."""
