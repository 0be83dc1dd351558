//! Discovery: tables (and, when asked, views) with their columns, types, nullability, primary keys
//! and a suggested cursor, read from `pg_catalog`.

use crate::types::PgType;
use crate::wire::{Connection, quote_literal};
use inlet_sdk::Error;

/// A column of a table.
#[derive(Debug, Clone)]
pub struct ColumnInfo {
    pub name: String,
    pub ty: PgType,
    pub nullable: bool,
    pub serial: bool,
}

/// A table or view.
#[derive(Debug, Clone)]
pub struct TableInfo {
    pub schema: String,
    pub name: String,
    pub columns: Vec<ColumnInfo>,
    pub primary_key: Vec<String>,
}

impl TableInfo {
    /// The stream name: `schema.table`.
    pub fn stream_name(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }

    /// The column a cursor suggestion points to: a NOT NULL `updated_at`-like timestamp, else a
    /// serial key, else a nullable `updated_at`-like timestamp (rows whose cursor is NULL are only
    /// read by the first sync, see the README).
    pub fn suggested_cursor(&self) -> Option<&ColumnInfo> {
        self.change_timestamp(|c| !c.nullable)
            .or_else(|| self.serial_key())
            .or_else(|| self.change_timestamp(|_| true))
    }

    /// The cursor suggested before NOT NULL columns were preferred (the first `updated_at`-like
    /// timestamp, else a serial key): states saved then are positions in this column.
    pub fn legacy_suggested_cursor(&self) -> Option<&ColumnInfo> {
        self.change_timestamp(|_| true)
            .or_else(|| self.serial_key())
    }

    /// The first timestamp column named like a last-change time that `also` accepts.
    fn change_timestamp(&self, also: impl Fn(&ColumnInfo) -> bool) -> Option<&ColumnInfo> {
        const NAMES: [&str; 6] = [
            "updated_at",
            "modified_at",
            "last_modified",
            "updated",
            "modified",
            "last_updated",
        ];
        self.columns.iter().find(|c| {
            matches!(c.ty, PgType::Timestamp | PgType::Timestamptz)
                && NAMES.contains(&c.name.as_str())
                && also(c)
        })
    }

    /// A single-column serial or identity primary key that can order reads.
    fn serial_key(&self) -> Option<&ColumnInfo> {
        match self.primary_key.as_slice() {
            [key] => self
                .columns
                .iter()
                .find(|c| &c.name == key && c.serial && c.ty.can_be_cursor()),
            _ => None,
        }
    }

    /// A column by name.
    pub fn column(&self, name: &str) -> Option<&ColumnInfo> {
        self.columns.iter().find(|c| c.name == name)
    }
}

/// Reads the tables of `schemas` (and views and materialized views when `include_views`).
pub fn tables(
    connection: &mut Connection,
    schemas: &[String],
    include_views: bool,
) -> Result<Vec<TableInfo>, Error> {
    let schema_list = schemas
        .iter()
        .map(|s| quote_literal(s))
        .collect::<Vec<_>>()
        .join(", ");
    let kinds = if include_views {
        "'r', 'p', 'v', 'm', 'f'"
    } else {
        "'r', 'p'"
    };
    let columns = connection.query(&format!(
        "SELECT n.nspname, c.relname, a.attname, a.attnotnull::text, t.typname, t.typtype::text, \
                et.typname, et.typtype::text, a.atttypmod::text, \
                (coalesce(pg_get_expr(d.adbin, d.adrelid), '') LIKE 'nextval(%' OR a.attidentity <> '')::text \
         FROM pg_attribute a \
         JOIN pg_class c ON c.oid = a.attrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         JOIN pg_type t ON t.oid = a.atttypid \
         LEFT JOIN pg_type et ON et.oid = t.typelem AND t.typcategory = 'A' \
         LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum \
         WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ({kinds}) AND n.nspname IN ({schema_list}) \
         ORDER BY n.nspname, c.relname, a.attnum"
    ))?;
    let keys = connection.query(&format!(
        "SELECT n.nspname, c.relname, a.attname \
         FROM pg_index i \
         JOIN pg_class c ON c.oid = i.indrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) \
         JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum \
         WHERE i.indisprimary AND n.nspname IN ({schema_list}) \
         ORDER BY n.nspname, c.relname, k.ord"
    ))?;
    let mut tables: Vec<TableInfo> = Vec::new();
    for row in columns {
        let text = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
        let (schema, table) = (text(0), text(1));
        let element = row.get(6).cloned().flatten().map(|name| (name, text(7)));
        let typmod: i32 = text(8).parse().unwrap_or(-1);
        let ty = PgType::from_catalog(
            &text(4),
            &text(5),
            element.as_ref().map(|(n, t)| (n.as_str(), t.as_str())),
            typmod,
        );
        let column = ColumnInfo {
            name: text(2),
            ty,
            nullable: text(3) != "true",
            serial: text(9) == "true",
        };
        match tables.last_mut() {
            Some(last) if last.schema == schema && last.name == table => last.columns.push(column),
            _ => tables.push(TableInfo {
                schema,
                name: table,
                columns: vec![column],
                primary_key: Vec::new(),
            }),
        }
    }
    for row in keys {
        let text = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
        if let Some(table) = tables
            .iter_mut()
            .find(|t| t.schema == text(0) && t.name == text(1))
        {
            table.primary_key.push(text(2));
        }
    }
    Ok(tables)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(name: &str, ty: PgType, nullable: bool, serial: bool) -> ColumnInfo {
        ColumnInfo {
            name: name.into(),
            ty,
            nullable,
            serial,
        }
    }

    #[test]
    fn not_null_cursors_are_preferred_and_old_states_keep_theirs() {
        let table = TableInfo {
            schema: "public".into(),
            name: "t".into(),
            columns: vec![
                column("id", PgType::Int8, false, true),
                column("updated_at", PgType::Timestamptz, true, false),
                column("modified_at", PgType::Timestamp, false, false),
            ],
            primary_key: vec!["id".into()],
        };
        assert_eq!(table.suggested_cursor().unwrap().name, "modified_at");
        assert_eq!(table.legacy_suggested_cursor().unwrap().name, "updated_at");
        let nullable_only = TableInfo {
            columns: table.columns[..2].to_vec(),
            ..table.clone()
        };
        assert_eq!(nullable_only.suggested_cursor().unwrap().name, "id");
        assert_eq!(
            nullable_only.legacy_suggested_cursor().unwrap().name,
            "updated_at"
        );
    }
}
