"""Functions a bench child runs (bench/child.py loads each module by path: no `bench` imports here,
and `pipeline` is the measured checkout's). Each returns the number of records it handled."""
