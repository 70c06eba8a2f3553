"""Speed benchmarks: `python -m bench` prints figures measured side by side in one run."""
