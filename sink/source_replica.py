"""The sink's own copy of the source rows the calendar rules read (schema ``cdcsync``).

Each replica row carries the ``SourceCommitPosition`` of the change it reflects.
A change is applied only when its position is not older than the row's, so a
replay or a late duplicate never moves a row backwards. Deletes keep the row as
a marker (``_deleted``) with its position and last known values: a late older
change cannot resurrect it, and a later change that moved the row to a new key
can still take an unchanged TOASTed value from it.

``_committed_at`` is the commit time of the newest change that altered a kept
column (or the row's existence); changes to other columns leave it as it was.
"""

from __future__ import annotations

from collections.abc import Iterable

from psycopg import Cursor, sql

from cdcsync.sink.change_event import ChangeEvent, Key, Operation, SourceCommitPosition, TableTruncated
from cdcsync.sink.source_tables import SourceTable

REPLICA_SCHEMA = "cdcsync"
_POSITION_COLUMNS = ("_commit_lsn", "_change_lsn", "_committed_at")


def replica_table(table: SourceTable) -> sql.Identifier:
    return sql.Identifier(REPLICA_SCHEMA, table.name)


def staging_table(table: SourceTable) -> sql.Identifier:
    return sql.Identifier(f"stage_{table.name}")


def _prev(name: str) -> str:
    return f"_prev_{name}"


def replica_ddl(table: SourceTable) -> sql.Composed:
    """CREATE TABLE for the replica of ``table`` (idempotent)."""
    columns: list[sql.Composable] = [
        sql.SQL("{} {} NOT NULL").format(sql.Identifier(c.name), sql.SQL(c.sql_type)) for c in table.key
    ]
    columns += [sql.SQL("{} {}").format(sql.Identifier(c.name), sql.SQL(c.sql_type)) for c in table.columns]
    columns += [
        sql.SQL("_deleted boolean NOT NULL"),
        sql.SQL("_commit_lsn bigint NOT NULL"),
        sql.SQL("_change_lsn bigint NOT NULL"),
        sql.SQL("_committed_at timestamptz NOT NULL"),
        sql.SQL("PRIMARY KEY ({})").format(sql.SQL(", ").join(map(sql.Identifier, table.key_names))),
    ]
    return sql.SQL("CREATE TABLE IF NOT EXISTS {} ({})").format(replica_table(table), sql.SQL(", ").join(columns))


def staging_ddl(table: SourceTable) -> sql.Composed:
    """A session temp table the batch's changes are COPYed into; emptied at commit."""
    columns: list[sql.Composable] = [
        sql.SQL("{} {}").format(sql.Identifier(c.name), sql.SQL(c.sql_type)) for c in table.all_columns
    ]
    columns += [sql.SQL("{} bigint").format(sql.Identifier(_prev(c.name))) for c in table.key]
    columns += [
        sql.SQL("_op char(1) NOT NULL"),
        sql.SQL("_unavailable text[] NOT NULL"),
        sql.SQL("_commit_lsn bigint NOT NULL"),
        sql.SQL("_change_lsn bigint NOT NULL"),
        sql.SQL("_committed_at timestamptz NOT NULL"),
    ]
    return sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {} ({}) ON COMMIT DELETE ROWS").format(
        staging_table(table), sql.SQL(", ").join(columns)
    )


def _staging_columns(table: SourceTable) -> list[str]:
    return [
        *(c.name for c in table.all_columns),
        *(_prev(c.name) for c in table.key),
        "_op",
        "_unavailable",
        *_POSITION_COLUMNS,
    ]


def _staging_row(table: SourceTable, event: ChangeEvent) -> tuple[object, ...]:
    previous = event.previous_key or (None,) * len(table.key)
    return (
        *event.key,
        *(event.values.get(name) for name in table.column_names),
        *previous,
        "d" if event.operation is Operation.DELETE else "u",
        sorted(event.unavailable),
        event.position.commit_lsn,
        event.position.change_lsn,
        event.committed_at,
    )


def stage_changes(cur: Cursor[tuple[object, ...]], table: SourceTable, events: Iterable[ChangeEvent]) -> None:
    """COPY the batch's changes of ``table`` into its staging table, and analyze it."""
    columns = _staging_columns(table)
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        staging_table(table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    with cur.copy(statement) as copy:
        for event in events:
            copy.write_row(_staging_row(table, event))
    # A temp table is never analyzed by autovacuum: without statistics the planner takes it for a
    # large one and hashes the whole replica table instead of probing its primary key per change.
    cur.execute(sql.SQL("ANALYZE {}").format(staging_table(table)))


def apply_staged_changes(cur: Cursor[tuple[object, ...]], table: SourceTable) -> int:
    """Upsert the staged changes into the replica, guarded by position. Returns rows written."""
    cur.execute(_apply_statement(table))
    return cur.rowcount


def replica_positions(
    cur: Cursor[tuple[object, ...]], table: SourceTable, keys: Iterable[Key]
) -> dict[Key, SourceCommitPosition]:
    """The replica position of each given row that the replica holds (deleted ones included). One query."""
    keys = list(keys)
    if not keys:
        return {}
    names = table.key_names
    columns = [[key[i] for key in keys] for i in range(len(names))]
    query = sql.SQL(
        "SELECT {key}, r._commit_lsn, r._change_lsn FROM {replica} r"
        " JOIN unnest({arrays}) AS k({key_names}) USING ({key_names})"
    ).format(
        key=sql.SQL(", ").join(sql.SQL("r.{}").format(sql.Identifier(n)) for n in names),
        replica=replica_table(table),
        arrays=sql.SQL(", ").join(sql.SQL("%s::bigint[]") for _ in names),
        key_names=sql.SQL(", ").join(map(sql.Identifier, names)),
    )
    cur.execute(query, columns)
    positions: dict[Key, SourceCommitPosition] = {}
    for row in cur.fetchall():
        *key, commit, change = (int(str(value)) for value in row)
        positions[tuple(key)] = SourceCommitPosition(commit, change)
    return positions


def truncation_positions(cur: Cursor[tuple[object, ...]]) -> dict[str, SourceCommitPosition]:
    """Table name -> position of the last truncate the replica applied."""
    cur.execute("SELECT table_name, commit_lsn, change_lsn FROM cdcsync.truncations")
    return {str(name): SourceCommitPosition(int(str(c)), int(str(ch))) for name, c, ch in cur.fetchall()}


def truncate_replica(cur: Cursor[tuple[object, ...]], truncated: TableTruncated) -> int:
    """Mark every row older than the truncate deleted, at the truncate's position. Returns rows marked.

    The truncate's position is also kept per table, so that a late change older than
    the truncate, of a row the replica never held, cannot bring that row back.
    """
    position = truncated.position
    cur.execute(
        "INSERT INTO cdcsync.truncations AS t (table_name, commit_lsn, change_lsn) VALUES (%s, %s, %s)"
        " ON CONFLICT (table_name) DO UPDATE SET commit_lsn = EXCLUDED.commit_lsn, change_lsn = EXCLUDED.change_lsn"
        " WHERE (t.commit_lsn, t.change_lsn) < (EXCLUDED.commit_lsn, EXCLUDED.change_lsn)",
        (truncated.table.name, position.commit_lsn, position.change_lsn),
    )
    cur.execute(
        sql.SQL(
            "UPDATE {} SET _deleted = true, _commit_lsn = %s, _change_lsn = %s,"
            " _committed_at = CASE WHEN _deleted THEN _committed_at ELSE %s END"
            " WHERE (_commit_lsn, _change_lsn) < (%s, %s)"
        ).format(replica_table(truncated.table)),
        (position.commit_lsn, position.change_lsn, truncated.committed_at, position.commit_lsn, position.change_lsn),
    )
    return cur.rowcount


def _apply_statement(table: SourceTable) -> sql.Composed:
    ident = sql.Identifier
    key = [ident(n) for n in table.key_names]
    cols = [ident(n) for n in table.column_names]
    has_prev = sql.SQL(" AND ").join(sql.SQL("s.{} IS NOT NULL").format(ident(_prev(n))) for n in table.key_names)

    def resolved(name: str) -> sql.Composable:
        # An unavailable value (a placeholder, or any column of a delete) keeps the
        # last known value of this row, or of the previous key when the change moved
        # the row; so deletes keep their values for a later move to read.
        return sql.SQL(
            "CASE WHEN {n} = ANY(s._unavailable) THEN CASE WHEN {has_prev} THEN prev.{c} ELSE cur.{c} END "
            "ELSE s.{c} END AS {c}"
        ).format(c=ident(name), n=sql.Literal(name), has_prev=has_prev)

    join_cur = sql.SQL(" AND ").join(sql.SQL("cur.{k} = s.{k}").format(k=k) for k in key)
    join_prev = sql.SQL(" AND ").join(
        sql.SQL("prev.{k} = s.{p}").format(k=ident(n), p=ident(_prev(n))) for n in table.key_names
    )
    first_key = key[0]
    unchanged = sql.SQL(
        "i._existed AND i._was_deleted = i._deleted AND ({cur_cols}) IS NOT DISTINCT FROM ({new_cols})"
    ).format(
        cur_cols=sql.SQL(", ").join(ident(f"_cur_{n}") for n in table.column_names),
        new_cols=sql.SQL(", ").join(sql.SQL("i.{}").format(c) for c in cols),
    )
    return sql.SQL(
        """
        WITH incoming AS (
            SELECT {s_key}, {resolved},
                   s._op = 'd' AS _deleted, s._commit_lsn, s._change_lsn, s._committed_at,
                   cur.{first_key} IS NOT NULL AS _existed,
                   COALESCE(cur._deleted, false) AS _was_deleted,
                   cur._committed_at AS _cur_committed_at,
                   {cur_cols}
            FROM {stage} s
            LEFT JOIN {replica} cur ON {join_cur}
            LEFT JOIN {replica} prev ON {join_prev}
            WHERE (cur.{first_key} IS NULL OR (cur._commit_lsn, cur._change_lsn) <= (s._commit_lsn, s._change_lsn))
              AND NOT EXISTS (
                  SELECT 1 FROM cdcsync.truncations t
                  WHERE t.table_name = {table_name} AND (t.commit_lsn, t.change_lsn) >= (s._commit_lsn, s._change_lsn))
        )
        INSERT INTO {replica} AS r ({key}, {cols}, _deleted, _commit_lsn, _change_lsn, _committed_at)
        SELECT {i_key}, {i_cols}, i._deleted, i._commit_lsn, i._change_lsn,
               CASE WHEN {unchanged} THEN i._cur_committed_at ELSE i._committed_at END
        FROM incoming i
        ON CONFLICT ({key}) DO UPDATE SET {updates},
            _deleted = EXCLUDED._deleted,
            _commit_lsn = EXCLUDED._commit_lsn,
            _change_lsn = EXCLUDED._change_lsn,
            _committed_at = EXCLUDED._committed_at
        """
    ).format(
        s_key=sql.SQL(", ").join(sql.SQL("s.{}").format(k) for k in key),
        resolved=sql.SQL(", ").join(resolved(n) for n in table.column_names),
        cur_cols=sql.SQL(", ").join(
            sql.SQL("cur.{} AS {}").format(ident(n), ident(f"_cur_{n}")) for n in table.column_names
        ),
        stage=staging_table(table),
        replica=replica_table(table),
        table_name=sql.Literal(table.name),
        join_cur=join_cur,
        join_prev=join_prev,
        first_key=first_key,
        key=sql.SQL(", ").join(key),
        cols=sql.SQL(", ").join(cols),
        i_key=sql.SQL(", ").join(sql.SQL("i.{}").format(k) for k in key),
        i_cols=sql.SQL(", ").join(sql.SQL("i.{}").format(c) for c in cols),
        unchanged=unchanged,
        updates=sql.SQL(", ").join(sql.SQL("{c} = EXCLUDED.{c}").format(c=c) for c in cols),
    )
