//! The clinic source schema (`mpfile`, `imfile`) as data, and its DDL per SQL dialect.
//!
//! The tables are described once ([`MPFILE`], [`IMFILE`]) with portable column types; a
//! [`Dialect`] renders them (SQLite, PostgreSQL, SQL Server) over the same typed rows
//! ([`super::model`]), whose `values()` are in [`TableDef::columns`] order.
//!
//! `patno` is `bigint` here although `docs/default-mapping.md` describes the clinic's column as
//! `int`: the synthetic generator writes patient numbers above 2 147 483 647 on purpose, so that
//! the range rule has rows to reject, and a typed engine needs a column that can hold them.
//! (`family_no` stays `int`: generated family numbers are below 100 000.)
//!
//! Text columns come in two kinds. Names, addresses and other text people type
//! ([`SqlType::NVarChar`], [`SqlType::Text`]) may hold any Unicode character (`José`,
//! `Nguyễn`); codes and numbers written as text ([`SqlType::VarChar`], [`SqlType::Char`]: sex,
//! state, ZIP, phone, vaccine and lot codes) are ASCII. Only SQL Server stores the two
//! differently: its `varchar` keeps only the characters of the column collation's code page and
//! silently turns `ễ` into `?`, so the first kind is `nvarchar` there.
//!
//! # SQL Server storage conventions
//!
//! Native types: `date`, `datetime2(7)` (clinic local time, 100 ns resolution, so every
//! timestamp the generators write is stored exactly), `bigint`/`int`, `nvarchar(n)` and
//! `nvarchar(max)` for people's text, `varchar(n)`/`char(n)` for codes; absent values are NULL.
//! Nullability is always spelled out (`NULL` / `NOT NULL`): otherwise it depends on the session's
//! and the database's ANSI_NULL_DFLT settings.
//!
//! # PostgreSQL storage conventions
//!
//! Native types: `date`, `timestamp` (without time zone, clinic local time, the same wall-clock
//! values the SQLite file holds as text), `bigint`/`integer`, `varchar(n)`/`char(n)`/`text`;
//! absent values are NULL.
//!
//! # SQLite storage conventions
//!
//! The sync's queries compare and order these columns as text, so every writer must keep them:
//!
//! - **dates** (`DATE`) are TEXT `YYYY-MM-DD`;
//! - **timestamps** (`DATETIME`) are TEXT `YYYY-MM-DD HH:MM:SS`, SQLite's own `datetime()`
//!   format with a space separator, followed by a fraction (`.SSS`, or 6/9 digits when finer)
//!   only when it is non-zero. Within one format, text order is time order, so
//!   `updated_at >= ?` with a window start bound in the same format is correct; the fraction only
//!   ever extends a string, and `"… 10:00:00" < "… 10:00:00.250"` holds as text;
//! - **integers** are INTEGER (64-bit; `patno` and `im_id` are `INTEGER PRIMARY KEY`, i.e. rowid
//!   aliases, which is why `bigint` is declared `INTEGER` here);
//! - **absent values** are NULL, never the empty string (an empty CSV cell becomes NULL).
//!
//! Declared types are the schema's own (`DATE`, `DATETIME`, `VARCHAR(60)`, `CHAR(1)`, `TEXT`,
//! `INTEGER`) so a reader can learn the logical type from `PRAGMA table_info`. SQLite gives
//! `DATE`/`DATETIME` NUMERIC affinity, which leaves ISO date text untouched. The tables are not
//! `STRICT` (STRICT tables only accept the five storage class names) and carry no foreign key:
//! a dose whose patient is missing is a case the sync must handle, so the schema must allow it.

/// A column type of the clinic source schema, independent of the database product.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqlType {
    /// 32-bit integer (`int`).
    Int,
    /// 64-bit integer (`bigint`).
    BigInt,
    /// Variable-length text of codes and numbers (ASCII), with a maximum length in characters.
    VarChar(u16),
    /// Variable-length text people type (names, addresses), any Unicode character, with a
    /// maximum length in characters: `nvarchar(n)` on SQL Server, `varchar(n)` elsewhere.
    NVarChar(u16),
    /// Fixed-length code text (ASCII).
    Char(u8),
    /// Unbounded text people type, any Unicode character (`nvarchar(max)` / `text`).
    Text,
    /// Calendar date without time.
    Date,
    /// Local timestamp without offset (`datetime2`).
    DateTime,
}

/// One column of a clinic source table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    /// Column name, lower case with underscores (valid unquoted on every dialect).
    pub name: &'static str,
    /// Portable type.
    pub ty: SqlType,
    /// Whether the column accepts NULL.
    pub nullable: bool,
}

/// A secondary (non-unique) index over one column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexDef {
    /// Index name, unique within the database.
    pub name: &'static str,
    /// Indexed column.
    pub column: &'static str,
}

/// A clinic source table: its columns in insertion order, primary key and indexes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableDef {
    /// Table name.
    pub name: &'static str,
    /// Columns, in the order the typed rows' `values()` produce them.
    pub columns: &'static [Column],
    /// The single-column primary key.
    pub primary_key: &'static str,
    /// Secondary indexes.
    pub indexes: &'static [IndexDef],
}

const fn col(name: &'static str, ty: SqlType, nullable: bool) -> Column {
    Column { name, ty, nullable }
}

const NULL: bool = true;
const NOT_NULL: bool = false;

/// `mpfile`, the patient master file (one row per patient).
pub const MPFILE: TableDef = TableDef {
    name: "mpfile",
    columns: &[
        col("patno", SqlType::BigInt, NOT_NULL),
        col("lname", SqlType::NVarChar(60), NOT_NULL),
        col("fname", SqlType::NVarChar(60), NOT_NULL),
        col("mname", SqlType::NVarChar(60), NULL),
        col("birth_date", SqlType::Date, NOT_NULL),
        col("sex", SqlType::Char(1), NULL),
        col("addr1", SqlType::NVarChar(80), NULL),
        col("addr2", SqlType::NVarChar(80), NULL),
        col("city", SqlType::NVarChar(40), NULL),
        col("state", SqlType::Char(2), NULL),
        col("zip", SqlType::VarChar(10), NULL),
        col("home_phone", SqlType::VarChar(20), NULL),
        col("cell_phone", SqlType::VarChar(20), NULL),
        col("email", SqlType::NVarChar(120), NULL),
        // 60, not 40: OMB's "Native Hawaiian or Other Pacific Islander" has 41 characters, and
        // engines that enforce lengths (PostgreSQL, SQL Server) refused it.
        col("race", SqlType::NVarChar(60), NULL),
        col("ethnicity", SqlType::NVarChar(60), NULL),
        col("family_no", SqlType::Int, NULL),
        col("notes", SqlType::Text, NULL),
        col("updated_at", SqlType::DateTime, NOT_NULL),
    ],
    primary_key: "patno",
    indexes: &[IndexDef {
        name: "mpfile_updated_at",
        column: "updated_at",
    }],
};

/// `imfile`, the immunization records (one row per dose).
pub const IMFILE: TableDef = TableDef {
    name: "imfile",
    columns: &[
        col("im_id", SqlType::BigInt, NOT_NULL),
        col("patno", SqlType::BigInt, NOT_NULL),
        col("vac_code", SqlType::VarChar(10), NULL),
        col("vac_desc", SqlType::NVarChar(80), NULL),
        col("cvx", SqlType::Int, NOT_NULL),
        col("mvx", SqlType::VarChar(4), NULL),
        col("lot_no", SqlType::VarChar(20), NULL),
        col("exp_date", SqlType::Date, NULL),
        col("admin_date", SqlType::Date, NOT_NULL),
        col("history", SqlType::Char(1), NOT_NULL),
        col("provider", SqlType::VarChar(10), NULL),
        col("dosage", SqlType::VarChar(10), NULL),
        col("site", SqlType::VarChar(20), NULL),
        col("given_by", SqlType::NVarChar(40), NULL),
        col("vfc_code", SqlType::VarChar(20), NULL),
        col("vfc_desc", SqlType::NVarChar(60), NULL),
        col("encounter_id", SqlType::VarChar(20), NULL),
        col("comments", SqlType::Text, NULL),
        col("updated_at", SqlType::DateTime, NOT_NULL),
    ],
    primary_key: "im_id",
    indexes: &[
        IndexDef {
            name: "imfile_patno",
            column: "patno",
        },
        IndexDef {
            name: "imfile_updated_at",
            column: "updated_at",
        },
    ],
};

/// Both tables, in creation order.
pub const TABLES: [&TableDef; 2] = [&MPFILE, &IMFILE];

/// A SQL dialect the schema can be rendered for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Dialect {
    /// SQLite 3 (see the module docs for the storage conventions).
    Sqlite,
    /// PostgreSQL 9.5 or later (`IF NOT EXISTS`, `ON CONFLICT`).
    Postgres,
    /// SQL Server 2016 or later, T-SQL (`datetime2`, `@P1` parameters of `sp_executesql`).
    SqlServer,
}

impl Dialect {
    /// The declared type of a column.
    pub fn type_name(self, ty: SqlType) -> String {
        match self {
            // INTEGER for bigint too: only the exact spelling `INTEGER PRIMARY KEY` makes the
            // key a rowid alias, and SQLite integers are 64-bit anyway.
            Dialect::Sqlite => match ty {
                SqlType::Int | SqlType::BigInt => "INTEGER".to_owned(),
                // SQLite text is Unicode whatever it is declared as.
                SqlType::VarChar(n) | SqlType::NVarChar(n) => format!("VARCHAR({n})"),
                SqlType::Char(n) => format!("CHAR({n})"),
                SqlType::Text => "TEXT".to_owned(),
                SqlType::Date => "DATE".to_owned(),
                SqlType::DateTime => "DATETIME".to_owned(),
            },
            Dialect::Postgres => match ty {
                SqlType::Int => "integer".to_owned(),
                SqlType::BigInt => "bigint".to_owned(),
                // `varchar` holds any character in a UTF-8 database, PostgreSQL's usual encoding
                // (`nvarchar` is only an alias there).
                SqlType::VarChar(n) | SqlType::NVarChar(n) => format!("varchar({n})"),
                SqlType::Char(n) => format!("char({n})"),
                SqlType::Text => "text".to_owned(),
                SqlType::Date => "date".to_owned(),
                // Without time zone: source timestamps are clinic wall-clock times.
                SqlType::DateTime => "timestamp".to_owned(),
            },
            Dialect::SqlServer => match ty {
                SqlType::Int => "int".to_owned(),
                SqlType::BigInt => "bigint".to_owned(),
                SqlType::VarChar(n) => format!("varchar({n})"),
                // See the module docs: `varchar` would lose characters outside the code page.
                SqlType::NVarChar(n) => format!("nvarchar({n})"),
                SqlType::Char(n) => format!("char({n})"),
                // Not `ntext`, deprecated since SQL Server 2005.
                SqlType::Text => "nvarchar(max)".to_owned(),
                SqlType::Date => "date".to_owned(),
                // Not `datetime`: its 1/300 s ticks would round the timestamps the generators
                // write, and the window comparison depends on exact values.
                SqlType::DateTime => "datetime2(7)".to_owned(),
            },
        }
    }

    /// `CREATE TABLE` for one table; a no-op when the table exists.
    pub fn create_table(self, table: &TableDef) -> String {
        let columns: Vec<String> = table
            .columns
            .iter()
            .map(|c| {
                let mut def = format!("    {} {}", c.name, self.type_name(c.ty));
                match self {
                    Dialect::Sqlite | Dialect::Postgres => {
                        if c.name == table.primary_key {
                            def.push_str(" PRIMARY KEY");
                        }
                        if !c.nullable {
                            def.push_str(" NOT NULL");
                        }
                    }
                    Dialect::SqlServer => {
                        // Explicit NULL (see the module docs); the key constraint is named like
                        // PostgreSQL's, instead of SQL Server's generated `PK__mpfile__…`.
                        def.push_str(if c.nullable { " NULL" } else { " NOT NULL" });
                        if c.name == table.primary_key {
                            def.push_str(&format!(" CONSTRAINT {}_pkey PRIMARY KEY", table.name));
                        }
                    }
                }
                def
            })
            .collect();
        match self {
            Dialect::Sqlite | Dialect::Postgres => format!(
                "CREATE TABLE IF NOT EXISTS {} (\n{}\n)",
                table.name,
                columns.join(",\n")
            ),
            // T-SQL has no `CREATE TABLE IF NOT EXISTS`.
            Dialect::SqlServer => format!(
                "IF OBJECT_ID(N'{0}', N'U') IS NULL\nCREATE TABLE {0} (\n{1}\n)",
                table.name,
                columns.join(",\n")
            ),
        }
    }

    /// `CREATE INDEX` statements for one table; each a no-op when the index exists.
    pub fn create_indexes(self, table: &TableDef) -> Vec<String> {
        table
            .indexes
            .iter()
            .map(|ix| match self {
                Dialect::Sqlite | Dialect::Postgres => format!(
                    "CREATE INDEX IF NOT EXISTS {} ON {} ({})",
                    ix.name, table.name, ix.column
                ),
                // Nor `CREATE INDEX IF NOT EXISTS`: ask the catalog.
                Dialect::SqlServer => format!(
                    "IF NOT EXISTS (SELECT 1 FROM sys.indexes WHERE object_id = OBJECT_ID(N'{1}') \
                     AND name = N'{0}')\nCREATE INDEX {0} ON {1} ({2})",
                    ix.name, table.name, ix.column
                ),
            })
            .collect()
    }

    /// Every statement that creates the clinic source schema, in order. Idempotent.
    pub fn ddl(self) -> Vec<String> {
        let mut statements = Vec::new();
        for table in TABLES {
            statements.push(self.create_table(table));
            statements.extend(self.create_indexes(table));
        }
        statements
    }

    /// The statement that inserts one row of `table`, replacing any row with the same primary
    /// key, with one positional parameter per column in [`TableDef::columns`] order.
    pub fn upsert(self, table: &TableDef) -> String {
        self.upsert_rows(table, 1)
    }

    /// [`Dialect::upsert`] for `rows` rows in one statement (parameters row after row). The
    /// rows must have distinct keys: PostgreSQL refuses to update one row twice in a statement,
    /// and SQL Server's `INSERT` would meet the key twice.
    pub fn upsert_rows(self, table: &TableDef, rows: usize) -> String {
        let names: Vec<&str> = table.columns.iter().map(|c| c.name).collect();
        let width = names.len();
        let param = |n: usize| match self {
            Dialect::Sqlite => format!("?{n}"),
            Dialect::Postgres => format!("${n}"),
            Dialect::SqlServer => format!("@P{n}"),
        };
        let values: Vec<String> = (0..rows)
            .map(|r| {
                let params: Vec<String> = (1..=width).map(|i| param(r * width + i)).collect();
                format!("({})", params.join(", "))
            })
            .collect();
        match self {
            Dialect::Sqlite => format!(
                "INSERT OR REPLACE INTO {} ({}) VALUES {}",
                table.name,
                names.join(", "),
                values.join(", ")
            ),
            Dialect::Postgres => {
                let updates: Vec<String> = names
                    .iter()
                    .filter(|&&n| n != table.primary_key)
                    .map(|n| format!("{n} = EXCLUDED.{n}"))
                    .collect();
                format!(
                    "INSERT INTO {} ({}) VALUES {} ON CONFLICT ({}) DO UPDATE SET {}",
                    table.name,
                    names.join(", "),
                    values.join(", "),
                    table.primary_key,
                    updates.join(", ")
                )
            }
            Dialect::SqlServer => {
                sql_server_upsert(table, &vec![false; rows * table.columns.len()])
            }
        }
    }
}

/// SQL Server's upsert of `nulls.len() / columns` rows of `table`, where `nulls` says, row after
/// row and column by column, which values are NULL.
///
/// A NULL is written into the statement as `CAST(NULL AS <the column's type>)` and is not a
/// parameter: tiberius sends a NULL string, date or timestamp parameter with TDS's NULLTYPE
/// (0x1F) and no type, which Babelfish for PostgreSQL refuses with error 8009 ("Data type 0x1F
/// is unknown"), and the driver offers no way to send a typed NULL in its place. The other
/// values are parameters `@P1`, `@P2`, … numbered in the order they are bound, so a row's
/// parameter numbers depend on the NULLs before it.
///
/// Delete-then-insert by key, what SQLite's INSERT OR REPLACE does, rather than MERGE: two plain
/// statements whose behaviour needs no footnotes. The DELETE reuses the key parameters of the
/// INSERT (a key is never NULL), so a row costs at most one parameter per column. Run it inside
/// a transaction, where no other session sees the gap.
pub fn sql_server_upsert(table: &TableDef, nulls: &[bool]) -> String {
    let names: Vec<&str> = table.columns.iter().map(|c| c.name).collect();
    let width = names.len();
    let key = table
        .columns
        .iter()
        .position(|c| c.name == table.primary_key)
        .unwrap_or(0);
    let mut next = 0usize;
    let mut keys = Vec::new();
    let values: Vec<String> = nulls
        .chunks(width)
        .map(|row| {
            let items: Vec<String> = row
                .iter()
                .zip(table.columns)
                .enumerate()
                .map(|(i, (&null, column))| {
                    if null {
                        format!("CAST(NULL AS {})", Dialect::SqlServer.type_name(column.ty))
                    } else {
                        next += 1;
                        if i == key {
                            keys.push(format!("@P{next}"));
                        }
                        format!("@P{next}")
                    }
                })
                .collect();
            format!("({})", items.join(", "))
        })
        .collect();
    format!(
        "DELETE FROM {0} WHERE {1} IN ({2});\nINSERT INTO {0} ({3}) VALUES {4}",
        table.name,
        table.primary_key,
        keys.join(", "),
        names.join(", "),
        values.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_has_its_primary_key_and_indexed_columns() {
        for table in TABLES {
            let has = |name: &str| table.columns.iter().any(|c| c.name == name);
            assert!(has(table.primary_key), "{}", table.name);
            for ix in table.indexes {
                assert!(has(ix.column), "{}.{}", table.name, ix.column);
            }
            let pk = table.columns.iter().find(|c| c.name == table.primary_key);
            assert!(pk.is_some_and(|c| !c.nullable));
        }
    }

    #[test]
    fn sqlite_ddl_declares_primary_keys_and_not_null() {
        let ddl = Dialect::Sqlite.create_table(&MPFILE);
        assert!(ddl.contains("patno INTEGER PRIMARY KEY NOT NULL"), "{ddl}");
        assert!(ddl.contains("birth_date DATE NOT NULL"), "{ddl}");
        assert!(ddl.contains("mname VARCHAR(60),"), "{ddl}");
        assert!(ddl.contains("updated_at DATETIME NOT NULL"), "{ddl}");
        let ddl = Dialect::Sqlite.create_table(&IMFILE);
        assert!(ddl.contains("im_id INTEGER PRIMARY KEY NOT NULL"), "{ddl}");
        assert!(ddl.contains("history CHAR(1) NOT NULL"), "{ddl}");
        assert!(ddl.contains("comments TEXT,"), "{ddl}");
    }

    #[test]
    fn postgres_ddl_uses_native_types_and_bigint_patient_numbers() {
        let ddl = Dialect::Postgres.create_table(&MPFILE);
        assert!(ddl.contains("patno bigint PRIMARY KEY NOT NULL"), "{ddl}");
        assert!(ddl.contains("birth_date date NOT NULL"), "{ddl}");
        assert!(ddl.contains("family_no integer,"), "{ddl}");
        assert!(ddl.contains("updated_at timestamp NOT NULL"), "{ddl}");
        let ddl = Dialect::Postgres.create_table(&IMFILE);
        assert!(ddl.contains("patno bigint NOT NULL"), "{ddl}");
        assert!(ddl.contains("history char(1) NOT NULL"), "{ddl}");
    }

    #[test]
    fn sql_server_ddl_is_idempotent_t_sql_with_unicode_names() {
        let ddl = Dialect::SqlServer.create_table(&MPFILE);
        assert!(
            ddl.starts_with("IF OBJECT_ID(N'mpfile', N'U') IS NULL\nCREATE TABLE mpfile ("),
            "{ddl}"
        );
        assert!(
            ddl.contains("patno bigint NOT NULL CONSTRAINT mpfile_pkey PRIMARY KEY,"),
            "{ddl}"
        );
        assert!(ddl.contains("lname nvarchar(60) NOT NULL,"), "{ddl}");
        assert!(ddl.contains("mname nvarchar(60) NULL,"), "{ddl}");
        assert!(ddl.contains("birth_date date NOT NULL,"), "{ddl}");
        assert!(ddl.contains("sex char(1) NULL,"), "{ddl}");
        assert!(ddl.contains("zip varchar(10) NULL,"), "{ddl}");
        assert!(ddl.contains("family_no int NULL,"), "{ddl}");
        assert!(ddl.contains("notes nvarchar(max) NULL,"), "{ddl}");
        assert!(ddl.contains("updated_at datetime2(7) NOT NULL\n)"), "{ddl}");
        let ddl = Dialect::SqlServer.create_table(&IMFILE);
        assert!(ddl.contains("patno bigint NOT NULL,"), "{ddl}");
        assert!(ddl.contains("given_by nvarchar(40) NULL,"), "{ddl}");
        assert!(ddl.contains("lot_no varchar(20) NULL,"), "{ddl}");
        assert!(ddl.contains("comments nvarchar(max) NULL,"), "{ddl}");
        let indexes = Dialect::SqlServer.create_indexes(&IMFILE);
        assert_eq!(
            indexes[0],
            "IF NOT EXISTS (SELECT 1 FROM sys.indexes WHERE object_id = OBJECT_ID(N'imfile') \
             AND name = N'imfile_patno')\nCREATE INDEX imfile_patno ON imfile (patno)"
        );
        assert_eq!(Dialect::SqlServer.ddl().len(), 5);
    }

    #[test]
    fn other_dialects_store_unicode_text_in_plain_varchar() {
        let ddl = Dialect::Sqlite.create_table(&MPFILE);
        assert!(ddl.contains("lname VARCHAR(60) NOT NULL"), "{ddl}");
        let ddl = Dialect::Postgres.create_table(&MPFILE);
        assert!(ddl.contains("lname varchar(60) NOT NULL"), "{ddl}");
    }

    #[test]
    fn sql_server_upserts_delete_by_key_then_insert() {
        let sql = Dialect::SqlServer.upsert_rows(&IMFILE, 2);
        assert!(
            sql.starts_with(
                "DELETE FROM imfile WHERE im_id IN (@P1, @P20);\nINSERT INTO imfile (im_id, patno,"
            ),
            "{sql}"
        );
        assert!(sql.contains("VALUES (@P1, @P2,"), "{sql}");
        assert!(sql.ends_with("@P19), (@P20, @P21, @P22, @P23, @P24, @P25, @P26, @P27, @P28, @P29, @P30, @P31, @P32, @P33, @P34, @P35, @P36, @P37, @P38)"), "{sql}");
    }

    #[test]
    fn sql_server_nulls_are_typed_literals_and_not_parameters() {
        // Row 1: mname (column 4) and family_no (17) NULL; row 2: nothing NULL.
        let width = MPFILE.columns.len();
        let mut nulls = vec![false; 2 * width];
        nulls[3] = true;
        nulls[16] = true;
        let sql = sql_server_upsert(&MPFILE, &nulls);
        assert!(
            sql.starts_with("DELETE FROM mpfile WHERE patno IN (@P1, @P18);"),
            "{sql}"
        );
        assert!(
            sql.contains("VALUES (@P1, @P2, @P3, CAST(NULL AS nvarchar(60)), @P4,"),
            "{sql}"
        );
        assert!(
            sql.contains("@P15, CAST(NULL AS int), @P16, @P17), (@P18,"),
            "{sql}"
        );
        assert!(sql.ends_with("@P35, @P36)"), "{sql}");
        assert_eq!(
            sql_server_upsert(&MPFILE, &vec![false; 3 * width]),
            Dialect::SqlServer.upsert_rows(&MPFILE, 3)
        );
    }

    #[test]
    fn upserts_number_parameters_row_after_row() {
        let sql = Dialect::Postgres.upsert_rows(&MPFILE, 2);
        assert!(sql.contains("($1, $2,"), "{sql}");
        assert!(sql.contains("$19), ($20, $21,"), "{sql}");
        assert!(sql.ends_with("updated_at = EXCLUDED.updated_at"), "{sql}");
        assert!(sql.contains("ON CONFLICT (patno) DO UPDATE SET lname = EXCLUDED.lname"));
        assert!(!sql.contains("patno = EXCLUDED.patno"), "{sql}");
        let sql = Dialect::Sqlite.upsert(&MPFILE);
        assert!(
            sql.starts_with("INSERT OR REPLACE INTO mpfile (patno, lname"),
            "{sql}"
        );
        assert!(sql.ends_with("?18, ?19)"), "{sql}");
    }
}
