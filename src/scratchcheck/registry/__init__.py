"""A registry of known models' fingerprints: the store, bundles to share it, batch indexing, and scan."""
