"""Mechanisms behind the paper's experiments: corrupt test scans, predict, summarise (no plotting)."""
