//! The server-side objects logical replication needs (`wal_level`, the publication, the slot),
//! created when missing, with errors that give the exact SQL and privileges when they cannot be.

use crate::catalog::TableInfo;
use crate::pgoutput::Lsn;
use crate::wire::{Connection, quote_ident, quote_literal};
use inlet_sdk::Error;

/// What the privileges section of an error says, once.
const PRIVILEGES: &str = "the user needs the REPLICATION attribute (`ALTER ROLE <user> WITH REPLICATION`; on Cloud SQL \
     `ALTER USER <user> WITH REPLICATION` as `cloudsqlsuperuser`, on RDS `GRANT rds_replication TO <user>`), \
     SELECT on the tables, and, to create the publication, ownership of the tables and CREATE on the database \
     (`GRANT CREATE ON DATABASE <database> TO <user>`), or a superuser creates it once: \
     `CREATE PUBLICATION <publication> FOR TABLE ...`";

/// A slot as `pg_replication_slots` shows it.
pub struct SlotInfo {
    pub plugin: String,
    /// The bytes of WAL the slot holds back: `pg_current_wal_lsn() - restart_lsn`.
    pub lag_bytes: Option<u64>,
    pub active: bool,
}

/// The server's major version number times 10000 (`150004`).
pub fn server_version(connection: &mut Connection) -> Result<u32, Error> {
    let rows = connection.query("SHOW server_version_num")?;
    Ok(first(&rows)
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0))
}

fn first(rows: &[Vec<Option<String>>]) -> Option<String> {
    rows.first().and_then(|r| r.first().cloned().flatten())
}

/// Fails unless `wal_level = logical`, naming the setting (and Cloud SQL's flag).
pub fn check_wal_level(connection: &mut Connection) -> Result<(), Error> {
    let level = first(&connection.query("SHOW wal_level")?).unwrap_or_default();
    if level == "logical" {
        return Ok(());
    }
    Err(Error::config(format!(
        "replication = \"logical\" needs `wal_level = logical` on the server, which has `wal_level = {level}`: \
         set it in postgresql.conf (`ALTER SYSTEM SET wal_level = logical`, plus enough `max_replication_slots` and \
         `max_wal_senders`) and restart; on Cloud SQL set the database flag `cloudsql.logical_decoding = on`; \
         on RDS/Aurora set `rds.logical_replication = 1` in the parameter group"
    )))
}

/// Fails for tables whose updates and deletes cannot be keyed: no primary key and the default
/// replica identity, or `REPLICA IDENTITY NOTHING`. Publishing them would make the server refuse
/// the application's own updates and deletes.
pub fn check_replica_identity(
    connection: &mut Connection,
    tables: &[&TableInfo],
) -> Result<(), Error> {
    for table in tables {
        let identity = first(&connection.query(&format!(
            "SELECT relreplident::text FROM pg_class WHERE oid = {}::regclass",
            quote_literal(&qualified(table))
        ))?)
        .unwrap_or_default();
        let unkeyed = match identity.as_str() {
            "n" => true,
            "d" => table.primary_key.is_empty(),
            _ => false,
        };
        if unkeyed {
            return Err(Error::config(format!(
                "table `{}` has no primary key and no replica identity, so its updates and deletes cannot be \
                 identified (and publishing it would make the server refuse them); add a primary key, or run \
                 `ALTER TABLE {} REPLICA IDENTITY FULL` (its rows are then appended, not merged), or leave it out \
                 of `schemas`",
                table.stream_name(),
                qualified(table)
            )));
        }
    }
    Ok(())
}

/// `"schema"."table"`, quoted for SQL.
pub fn qualified(table: &TableInfo) -> String {
    format!(
        "{}.{}",
        quote_ident(&table.schema),
        quote_ident(&table.name)
    )
}

/// Creates the publication for `tables`, or adds the tables it lacks.
pub fn ensure_publication(
    connection: &mut Connection,
    publication: &str,
    tables: &[&TableInfo],
) -> Result<(), Error> {
    let list = tables.iter().map(|t| qualified(t)).collect::<Vec<_>>();
    let exists = !connection
        .query(&format!(
            "SELECT 1 FROM pg_publication WHERE pubname = {}",
            quote_literal(publication)
        ))?
        .is_empty();
    let all_tables = exists
        && first(&connection.query(&format!(
            "SELECT puballtables::text FROM pg_publication WHERE pubname = {}",
            quote_literal(publication)
        ))?)
        .as_deref()
            == Some("true");
    if all_tables {
        return Ok(());
    }
    let sql = if exists {
        let published = connection.query(&format!(
            "SELECT schemaname::text, tablename::text FROM pg_publication_tables WHERE pubname = {}",
            quote_literal(publication)
        ))?;
        let missing: Vec<String> = tables
            .iter()
            .filter(|t| {
                !published.iter().any(|row| {
                    row.first().cloned().flatten().as_deref() == Some(t.schema.as_str())
                        && row.get(1).cloned().flatten().as_deref() == Some(t.name.as_str())
                })
            })
            .map(|t| qualified(t))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        format!(
            "ALTER PUBLICATION {} ADD TABLE {}",
            quote_ident(publication),
            missing.join(", ")
        )
    } else if list.is_empty() {
        return Err(Error::config(
            "replication = \"logical\": no tables to publish in the configured `schemas`",
        ));
    } else {
        format!(
            "CREATE PUBLICATION {} FOR TABLE {}",
            quote_ident(publication),
            list.join(", ")
        )
    };
    connection.query(&sql).map_err(|e| {
        Error::Auth(format!(
            "cannot set up publication `{publication}` ({e}); run as the tables' owner or a superuser: `{sql}`; {PRIVILEGES}"
        ))
    })?;
    Ok(())
}

/// The slot `name`, if it exists in this database.
pub fn find_slot(connection: &mut Connection, name: &str) -> Result<Option<SlotInfo>, Error> {
    let rows = connection.query(&format!(
        "SELECT coalesce(plugin, ''), (pg_current_wal_lsn() - restart_lsn)::int8::text, active::text \
         FROM pg_replication_slots WHERE slot_name = {}",
        quote_literal(name)
    ))?;
    Ok(rows.into_iter().next().map(|row| {
        let text = |i: usize| row.get(i).cloned().flatten();
        SlotInfo {
            plugin: text(0).unwrap_or_default(),
            lag_bytes: text(1).and_then(|v| v.parse().ok()),
            active: text(2).as_deref() == Some("true"),
        }
    }))
}

/// The error of a replication connection the server refused, with the privileges it needs
/// (other failures, such as an unreachable server, stay as they are).
pub fn replication_refused(error: Error) -> Error {
    match error {
        Error::Config(message) | Error::Auth(message) => Error::Auth(format!(
            "the server refused a replication connection ({message}); {PRIVILEGES}"
        )),
        other => other,
    }
}

/// Drops the slot `name` (it must not be in use).
pub fn drop_slot(connection: &mut Connection, name: &str) -> Result<(), Error> {
    connection
        .query(&format!(
            "SELECT pg_drop_replication_slot({})",
            quote_literal(name)
        ))
        .map_err(|e| {
            Error::config(format!(
                "cannot drop replication slot `{name}` to take a new snapshot ({e}); is another inlet run using it? \
                 a superuser can drop it: `SELECT pg_drop_replication_slot('{name}')`"
            ))
        })?;
    Ok(())
}

/// A new slot and the snapshot it exports: the state of the database at `consistent_point`.
pub struct NewSlot {
    pub consistent_point: Lsn,
    pub snapshot: String,
}

/// Creates slot `name` with `pgoutput` on a replication session, exporting a snapshot that stays
/// valid until the next command on that session.
pub fn create_slot(
    replication: &mut Connection,
    name: &str,
    server_version: u32,
) -> Result<NewSlot, Error> {
    let sql = if server_version >= 150_000 {
        format!(
            "CREATE_REPLICATION_SLOT {} LOGICAL pgoutput (SNAPSHOT 'export')",
            quote_ident(name)
        )
    } else {
        format!(
            "CREATE_REPLICATION_SLOT {} LOGICAL pgoutput EXPORT_SNAPSHOT",
            quote_ident(name)
        )
    };
    let rows = replication.query(&sql).map_err(|e| {
        Error::Auth(format!(
            "cannot create replication slot `{name}` ({e}): `{sql}` on a replication connection; {PRIVILEGES}; \
             the server also needs a free slot (`max_replication_slots`) and WAL sender (`max_wal_senders`)"
        ))
    })?;
    let row = rows.into_iter().next().unwrap_or_default();
    let text = |i: usize| row.get(i).cloned().flatten();
    let consistent_point = text(1)
        .ok_or_else(|| Error::data("CREATE_REPLICATION_SLOT returned no consistent point"))?
        .parse::<Lsn>()
        .map_err(|e| Error::data(format!("CREATE_REPLICATION_SLOT consistent point: {e}")))?;
    let snapshot =
        text(2).ok_or_else(|| Error::data("CREATE_REPLICATION_SLOT exported no snapshot"))?;
    Ok(NewSlot {
        consistent_point,
        snapshot,
    })
}

/// Writes a transactional logical message and answers its position: every transaction
/// committed before it is decoded before it, so a run that has seen the stream pass it has read
/// everything committed when the run started.
pub fn end_marker(connection: &mut Connection) -> Result<Lsn, Error> {
    let rows = connection
        .query(
            "BEGIN; SET LOCAL synchronous_commit = on; \
             SELECT pg_logical_emit_message(true, 'inlet', 'end of run')::text; COMMIT",
        )
        .map_err(|e| {
            Error::Auth(format!(
                "cannot mark the end of this run in the log with `pg_logical_emit_message` ({e}); {PRIVILEGES}"
            ))
        })?;
    first(&rows)
        .ok_or_else(|| Error::data("pg_logical_emit_message returned no position"))?
        .parse::<Lsn>()
        .map_err(|e| Error::data(format!("pg_logical_emit_message: {e}")))
}

/// A type as `pg_type` names it: what [`crate::types::PgType::from_catalog`] maps.
#[derive(Debug, Clone)]
pub struct TypeName {
    pub typname: String,
    pub typtype: String,
    /// An array's element type: its name and `typtype`.
    pub element: Option<(String, String)>,
}

/// The name, kind and element type of each type in `oids`.
pub fn type_names(
    connection: &mut Connection,
    oids: &[u32],
) -> Result<Vec<(u32, TypeName)>, Error> {
    if oids.is_empty() {
        return Ok(Vec::new());
    }
    let list = oids
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let rows = connection.query(&format!(
        "SELECT t.oid::text, t.typname, t.typtype::text, et.typname, et.typtype::text \
         FROM pg_type t LEFT JOIN pg_type et ON et.oid = t.typelem AND t.typcategory = 'A' \
         WHERE t.oid IN ({list})"
    ))?;
    Ok(rows
        .into_iter()
        .filter_map(|row| {
            let text = |i: usize| row.get(i).cloned().flatten();
            let oid = text(0)?.parse().ok()?;
            let element = text(3).map(|name| (name, text(4).unwrap_or_default()));
            Some((
                oid,
                TypeName {
                    typname: text(1)?,
                    typtype: text(2).unwrap_or_default(),
                    element,
                },
            ))
        })
        .collect())
}
