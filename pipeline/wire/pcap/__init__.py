"""pcap and pcapng captures of export datagrams: reader and writer."""
