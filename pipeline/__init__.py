"""bbtr: the annual Broadband Traffic Report pipeline, from raw flow exports to PDF."""
