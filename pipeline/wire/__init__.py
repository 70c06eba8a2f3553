"""Wire formats of flow exports: one module or folder per format, reader and writer side by side.

`ipfix/` (RFC 7011 messages and RFC 5655 files; the decoder also reads NetFlow v9 and v5 datagrams),
`netflow_v9`, `netflow_v5`, `datagrams` (transport datagrams of any version → decoder input),
`pcap/` (pcap and pcapng captures), `nfcapd/` (nfdump 1.7 files), `nfdump_text/` (nfdump csv/json
exports), `address_text` (text addresses → integers). Every reader returns a `records.DecodeResult`.
Used by ingest, collect, simulate and the tests; this package imports no pipeline stage.
"""
