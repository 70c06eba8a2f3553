"""nfcapd files of nfdump 1.7: layout constants, block compression, reader and writer."""
