"""Run every benchmark: `python -m bench`."""

from bench import decode_ipfix, decode_netflow, nfcapd_vs_nfdump

if __name__ == "__main__":
    decode_ipfix.main()
    print()
    decode_netflow.main()
    print()
    nfcapd_vs_nfdump.main()
