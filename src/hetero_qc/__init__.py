"""hetero_qc: MRI quality from heteroscedastic reconstruction uncertainty."""

__version__ = "0.1.0"
