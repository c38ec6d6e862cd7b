"""Offline evaluation of next-basket recommenders (Reality Check protocol and metrics)."""
