"""Column types shared by the tables: integers that hold milliseconds, bytes and queue positions.

SQLite's INTEGER is already 64-bit; PostgreSQL's is 32-bit, too small for a millisecond clock
(2**31 ms is 25 days) or a file over 2 GiB, so those columns are BIGINT there. The variant keeps
the SQLite declaration exactly as the baseline schema wrote it.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Integer

BigInt = BigInteger().with_variant(Integer(), "sqlite")
