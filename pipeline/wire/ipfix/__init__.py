"""IPFIX (RFC 7011): constants, the vectorised decoder (also of NetFlow v9/v5), the writer."""
