//! Closed sets stored as text: each value has one spelling, used in SQLite,
//! JSON and the API alike, and an unknown spelling read back is an error
//! rather than a silent default.

use rusqlite::types::{FromSqlError, FromSqlResult, ToSqlOutput, ValueRef};

/// Defines an enum whose values are stored as fixed strings: `as_str`,
/// `parse`, `ALL`, `Display`, serde and rusqlite conversions.
macro_rules! text_enum {
    ($(#[$m:meta])* pub enum $name:ident { $($(#[$vm:meta])* $v:ident = $s:literal,)+ }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vm])* $v,)+ }

        impl $name {
            /// Every value.
            pub const ALL: &'static [$name] = &[$($name::$v,)+];

            /// The stored spelling.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$v => $s,)+ }
            }

            /// Parses a stored spelling.
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($s => Some($name::$v),)+ _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        $crate::store::sql::sql_text!($name);
    };
}

/// rusqlite conversions for a type with `as_str` and `parse`.
macro_rules! sql_text {
    ($t:ty) => {
        impl rusqlite::types::ToSql for $t {
            fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
                $crate::store::sql::to_sql(self.as_str())
            }
        }
        impl rusqlite::types::FromSql for $t {
            fn column_result(
                v: rusqlite::types::ValueRef<'_>,
            ) -> rusqlite::types::FromSqlResult<Self> {
                $crate::store::sql::from_sql(v, stringify!($t), <$t>::parse)
            }
        }
    };
}

pub(crate) use {sql_text, text_enum};

pub(crate) fn to_sql(s: &'static str) -> rusqlite::Result<ToSqlOutput<'static>> {
    Ok(ToSqlOutput::from(s))
}

pub(crate) fn from_sql<T>(
    v: ValueRef<'_>,
    what: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> FromSqlResult<T> {
    let s = v.as_str()?;
    parse(s).ok_or_else(|| FromSqlError::Other(format!("unknown {what} {s:?}").into()))
}

sql_text!(crate::event::EventKind);
sql_text!(crate::event::Severity);
sql_text!(crate::smtp_probe::RndrVerdict);
