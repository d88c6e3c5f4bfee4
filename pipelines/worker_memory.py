"""Arrow's buffers in a pipeline worker come from the C library's allocator, which gives them back.

pyarrow allocates from mimalloc by default, and mimalloc keeps freed pages for
reuse. A worker builds an Arrow table of the raw samples at every flush (about
10 MB a second at 512 GPUs) and frees it once it is inserted; mimalloc held on
to those pages, and the worker's peak RSS was 60-90 MiB higher for it
(``bench/ingest_throughput.py``: 866 against 777-814 MiB, not file-backed 577
against 474-512). glibc's malloc maps blocks this large on their own and
unmaps them when freed. Throughput was the same within the run-to-run noise
(issue 10).

>>> import pyarrow as pa
>>> before = pa.default_memory_pool()
>>> use_system_allocator_for_arrow(); pa.default_memory_pool().backend_name
'system'
>>> pa.set_memory_pool(before)
"""

from __future__ import annotations


def use_system_allocator_for_arrow() -> None:
    """Make the system allocator Arrow's default pool for what this process allocates from now on."""
    import pyarrow as pa

    pa.set_memory_pool(pa.system_memory_pool())
