"""Run every benchmark: `python -m bench`."""

from bench import decode_ipfix

if __name__ == "__main__":
    decode_ipfix.main()
