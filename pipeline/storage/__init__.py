"""Where raw inputs, warehouse and history live: a local folder (the default) or an S3-compatible
object store, behind one `Store` interface (pyarrow filesystems; no hand-written S3 calls)."""
