"""Lightning wrappers: the only package that imports Lightning."""
