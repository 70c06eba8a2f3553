"""Helpers shared by the tests: real-capture paths, the fuzz corpus, fixture tables."""
