"""Benchmarks: each compares our code with its baseline side by side, in one run."""
