"""Everything that touches data bytes: storage, hashing, formats, cache sync, load and mapped.

This package never imports `graph` or `lineage`: it takes paths and URIs and returns data, so it
works for any list of files.

>>> import loaders
>>> loaders.hash_string("abc"), loaders.suffix_of("s3://bucket/table.csv.gz")
('kAFQmDzST7DWlj99KOF_cg', '.csv.gz')
"""

from loaders.cache import cache_path, sync
from loaders.formats import describe_file, n_observations, otype_of, write_object
from loaders.hashing import (
    CHUNK_SIZE,
    HASH_LENGTH,
    b16_to_b64,
    hash_file,
    hash_from_etag,
    hash_set,
    hash_string,
    to_b64_str,
)
from loaders.load import load_file, load_files
from loaders.mapped import MappedCollection
from loaders.samplers import BlockShuffleSampler
from loaders.storage import (
    ENDPOINT_ENV,
    FileInfo,
    delete_file,
    delete_files,
    exists,
    file_info,
    filesystem,
    is_remote,
    is_under,
    join,
    put_file,
    put_files,
    restore_file,
    suffix_of,
    swap_in,
)

__all__ = [
    "CHUNK_SIZE",
    "ENDPOINT_ENV",
    "HASH_LENGTH",
    "BlockShuffleSampler",
    "FileInfo",
    "MappedCollection",
    "b16_to_b64",
    "cache_path",
    "delete_file",
    "delete_files",
    "describe_file",
    "exists",
    "file_info",
    "filesystem",
    "hash_file",
    "hash_from_etag",
    "hash_set",
    "hash_string",
    "is_remote",
    "is_under",
    "join",
    "load_file",
    "load_files",
    "n_observations",
    "otype_of",
    "put_file",
    "put_files",
    "restore_file",
    "suffix_of",
    "swap_in",
    "sync",
    "to_b64_str",
    "write_object",
]
