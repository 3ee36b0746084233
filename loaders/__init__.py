"""Everything that touches data bytes: storage, hashing, cache sync, load, mapped.

This package never imports `graph` or `lineage`: it takes paths and URIs and returns data, so it
works for any list of files. Its modules arrive with the loaders issue; until then it is empty.
"""
