"""Which storage errors are outages to retry: the pipeline dead-letters the rows of any other."""

from __future__ import annotations

import pytest

from processor.sink.base import is_retriable
from processor.sink.chdb import _sink_error

#: What chDB raises for an insert into a data directory it may not write (chmod -R a-w).
READ_ONLY = (
    "Code: 1001. DB::Exception: std::__1::filesystem::filesystem_error: filesystem error: in "
    'create_directories: Permission denied ["/data/chdb/store/9e0/tmp_insert_20261207_2_2_1"]. '
    "(STD_EXCEPTION)"
)


@pytest.mark.parametrize(
    ("code", "text"),
    [
        (210, "Code: 210. DB::NetException: Connection refused (NETWORK_ERROR)"),
        (243, "Code: 243. DB::Exception: Cannot reserve 1.00 MiB, not enough space."),
        (76, "Code: 76. Cannot open file /var/lib/clickhouse/x.bin, errno: 13"),
        (1001, READ_ONLY),
        (1001, "Code: 1001. DB::Exception: std::exception: Read-only file system (STD_EXCEPTION)"),
        (None, "write failed: No space left on device"),
    ],
)
def test_outages_and_failing_disks_are_retriable(code: int | None, text: str):
    assert is_retriable(code, text)


@pytest.mark.parametrize(
    ("code", "text"),
    [
        (349, "Code: 349. DB::Exception: Cannot convert NULL value to non-Nullable type"),
        (27, "Code: 27. DB::Exception: Cannot parse input: expected '\"' before: 'x'"),
        (1001, "Code: 1001. DB::Exception: std::out_of_range: basic_string (STD_EXCEPTION)"),
    ],
)
def test_bad_data_is_not_retriable(code: int, text: str):
    assert not is_retriable(code, text)


def test_a_read_only_chdb_directory_is_an_outage_not_bad_rows():
    error = _sink_error(RuntimeError(READ_ONLY), "insert of 3 rows into activities")
    assert error.retriable
    assert error.code == 1001
