"""Test-only fault injection for a pipeline subprocess: ClickHouse inserts fail while a file exists.

A test puts this folder first on the child's PYTHONPATH and names the file in
``GPUWATCH_TEST_FAIL_INSERTS_WHILE``; Python imports this module at start-up.
Inserts then fail the way a full disk makes them fail (the server's own error),
while reads keep working, until the test removes the file.
"""

import os

_flag = os.environ.get("GPUWATCH_TEST_FAIL_INSERTS_WHILE")
if _flag:
    from clickhouse_connect.driver.exceptions import DatabaseError

    from pipelines import store as _store

    def _failing(real):
        def insert(self, *args, **kwargs):
            if os.path.exists(_flag):
                raise DatabaseError("Code: 243. DB::Exception: Cannot reserve 1.00 MiB, not enough space. "
                                    "(NOT_ENOUGH_SPACE) (injected by the test)")
            return real(self, *args, **kwargs)
        return insert

    # rows and Arrow column batches (raw samples) alike
    _store.Store.insert = _failing(_store.Store.insert)
    _store.Store.insert_arrow = _failing(_store.Store.insert_arrow)
