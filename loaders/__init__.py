"""Everything that touches data bytes: storage, hashing, folders, formats, cache sync, load,
open and mapped.

This package never imports `graph` or `lineage`: it takes paths and URIs and returns data, so it
works for any list of files.

>>> import loaders
>>> loaders.hash_string("abc"), loaders.suffix_of("s3://bucket/table.csv.gz")
('kAFQmDzST7DWlj99KOF_cg', '.csv.gz')
"""

from loaders.access import OPENABLE, open_file
from loaders.cache import (
    CacheEntry,
    CacheUsage,
    cache_path,
    clear,
    entries,
    evict,
    parse_size,
    release,
    sync,
    sync_dir,
    usage,
)
from loaders.folders import dir_info, list_dir, put_dir, put_dirs
from loaders.formats import describe_file, n_observations, otype_of, write_object
from loaders.hashing import (
    CHUNK_SIZE,
    HASH_LENGTH,
    b16_to_b64,
    hash_file,
    hash_from_etag,
    hash_from_hashes_list,
    hash_set,
    hash_string,
    to_b64_str,
)
from loaders.load import load_file, load_files
from loaders.mapped import MappedCollection
from loaders.samplers import BalancedBlockSampler, BlockShuffleSampler
from loaders.storage import (
    ENDPOINT_ENV,
    FileInfo,
    as_folder,
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
    "OPENABLE",
    "BalancedBlockSampler",
    "BlockShuffleSampler",
    "CacheEntry",
    "CacheUsage",
    "FileInfo",
    "MappedCollection",
    "as_folder",
    "b16_to_b64",
    "cache_path",
    "clear",
    "delete_file",
    "delete_files",
    "describe_file",
    "dir_info",
    "entries",
    "evict",
    "exists",
    "file_info",
    "filesystem",
    "hash_file",
    "hash_from_etag",
    "hash_from_hashes_list",
    "hash_set",
    "hash_string",
    "is_remote",
    "is_under",
    "join",
    "list_dir",
    "load_file",
    "load_files",
    "n_observations",
    "open_file",
    "otype_of",
    "parse_size",
    "put_dir",
    "put_dirs",
    "put_file",
    "put_files",
    "release",
    "restore_file",
    "suffix_of",
    "swap_in",
    "sync",
    "sync_dir",
    "to_b64_str",
    "usage",
    "write_object",
]
