"""One module per CLI command; see `simpsons_core.cli`."""
