"""Generators for the shipped layouts (run `python -m store_layouts.generate`)."""
