"""Run every benchmark: `python -m bench`."""

from bench import decode_ipfix, decode_netflow

if __name__ == "__main__":
    decode_ipfix.main()
    print()
    decode_netflow.main()
