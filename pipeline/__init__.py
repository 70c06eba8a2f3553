"""bbtr: the annual Broadband Traffic Report pipeline (simulate → ingest → attribute → aggregate → charts → report)."""
