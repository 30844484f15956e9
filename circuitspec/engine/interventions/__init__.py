"""One module per intervention, each with one entry point."""
