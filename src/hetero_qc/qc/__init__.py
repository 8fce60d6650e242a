"""The QC tool: score a user's T1 scans with a trained multi-task model."""
