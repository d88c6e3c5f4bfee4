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

    _real_insert = _store.Store.insert

    def _insert(self, *args, **kwargs):
        if os.path.exists(_flag):
            raise DatabaseError("Code: 243. DB::Exception: Cannot reserve 1.00 MiB, not enough space. "
                                "(NOT_ENOUGH_SPACE) (injected by the test)")
        return _real_insert(self, *args, **kwargs)

    _store.Store.insert = _insert
