"""Offline tools: data preparation, parameter conversion, demo reports and log plots.

Run each with `python -m tools.<name> --help`. Nothing in the toolkit imports them."""
