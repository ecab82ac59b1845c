//! Closed sets spelled as fixed strings: the one mechanism behind every enum
//! whose values are written down (in the config, SQLite, JSON, hook
//! environments, logs and metrics).
//!
//! [`closed_set!`] declares the enum in its domain module together with its
//! spellings, and derives from that one table `ALL`, `as_str`, `parse`,
//! `FromStr`, `Display`, serde and rusqlite's `ToSql`/`FromSql`. A spelling is
//! therefore written once: SQL binds it or formats it from `as_str`, serde
//! reads and writes it, and an unknown spelling read back is an error rather
//! than a silent default.

use rusqlite::types::{FromSqlError, FromSqlResult, ValueRef};

/// A spelling that names no value of a closed set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {set} {got:?} (expected one of: {})", expected.join(", "))]
pub struct UnknownSpelling {
    /// The set's name.
    pub set: &'static str,
    /// What was read.
    pub got: String,
    /// Every spelling of the set.
    pub expected: &'static [&'static str],
}

/// Declares an enum of unit variants, each with its one spelling:
///
/// ```ignore
/// crate::spelling::closed_set! {
///     /// Where a sweep stands.
///     #[derive(PartialOrd, Ord)]
///     pub enum SweepStatus {
///         /// Started, not committed yet.
///         Running = "running",
///         Done = "done",
///     }
/// }
/// ```
///
/// The enum derives `Debug, Clone, Copy, PartialEq, Eq, Hash` (more through
/// its own attributes) and gets `ALL` (declaration order), `NAMES` (the
/// spellings, same order), `const fn as_str`, `parse` (`None` for an unknown
/// spelling), `FromStr` ([`UnknownSpelling`]), `Display`, serde (a string; an
/// unknown one fails as serde's `unknown variant` does) and rusqlite's
/// `ToSql`/`FromSql` (TEXT; an unknown one is a conversion error).
macro_rules! closed_set {
    ($(#[$m:meta])* $vis:vis enum $name:ident { $($(#[$vm:meta])* $v:ident = $s:literal,)+ }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        $vis enum $name { $($(#[$vm])* $v,)+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: [$name; [$($s),+].len()] = [$($name::$v,)+];

            /// Every spelling, in declaration order.
            pub const NAMES: &'static [&'static str] = &[$($s,)+];

            /// The one spelling (config, database, API, logs).
            pub const fn as_str(self) -> &'static str {
                match self { $($name::$v => $s,)+ }
            }

            /// The value a spelling names, if any.
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($s => Some($name::$v),)+ _ => None }
            }
        }

        // the OpenAPI document describes the set as its spellings
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .enum_values(Some(Self::NAMES.iter().copied()))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}

        impl std::str::FromStr for $name {
            type Err = $crate::spelling::UnknownSpelling;
            fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
                Self::parse(s).ok_or_else(|| $crate::spelling::UnknownSpelling {
                    set: stringify!($name),
                    got: s.to_string(),
                    expected: Self::NAMES,
                })
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

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
                $crate::spelling::deserialize(d, Self::NAMES, Self::parse)
            }
        }

        impl rusqlite::types::ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
                Ok(rusqlite::types::ToSqlOutput::from(self.as_str()))
            }
        }

        impl rusqlite::types::FromSql for $name {
            fn column_result(v: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
                $crate::spelling::from_sql(v, stringify!($name), Self::parse)
            }
        }
    };
}

pub(crate) use closed_set;

/// Reads a spelling through serde (for [`closed_set!`]).
pub fn deserialize<'de, D, T>(
    d: D,
    names: &'static [&'static str],
    parse: fn(&str) -> Option<T>,
) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
{
    struct Visit<T> {
        names: &'static [&'static str],
        parse: fn(&str) -> Option<T>,
    }
    impl<T> serde::de::Visitor<'_> for Visit<T> {
        type Value = T;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "one of {}", self.names.join(", "))
        }
        fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<T, E> {
            (self.parse)(s).ok_or_else(|| E::unknown_variant(s, self.names))
        }
    }
    d.deserialize_str(Visit { names, parse })
}

/// Reads a spelling from SQLite (for [`closed_set!`]).
pub fn from_sql<T>(v: ValueRef<'_>, what: &str, parse: fn(&str) -> Option<T>) -> FromSqlResult<T> {
    let s = v.as_str()?;
    parse(s).ok_or_else(|| FromSqlError::Other(format!("unknown {what} {s:?}").into()))
}

/// `'a', 'b'`: spellings as an SQL list, for `IN (…)` where binding each
/// value would not read better. Spellings are this crate's own literals;
/// one with a quote would be a bug, refused here rather than escaped.
pub fn sql_list<T: Copy>(values: &[T], as_str: fn(T) -> &'static str) -> String {
    values
        .iter()
        .map(|v| {
            let s = as_str(*v);
            assert!(!s.contains('\''), "spelling {s:?} holds a quote");
            format!("'{s}'")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
#[allow(unreachable_pub)] // the macro's items are `pub`, as the sets it serves need
mod tests {
    use std::str::FromStr;

    closed_set! {
        /// A set for the tests.
        #[derive(PartialOrd, Ord)]
        pub enum Colour {
            /// Red.
            Red = "red",
            /// Dark blue.
            DarkBlue = "dark-blue",
        }
    }

    #[test]
    fn one_table_gives_every_spelling() {
        assert_eq!(Colour::ALL, [Colour::Red, Colour::DarkBlue]);
        assert_eq!(Colour::NAMES, ["red", "dark-blue"]);
        for c in Colour::ALL {
            assert_eq!(Colour::parse(c.as_str()), Some(c));
            assert_eq!(Colour::from_str(&c.to_string()), Ok(c));
            let j = serde_json::to_string(&c).unwrap();
            assert_eq!(j, format!("\"{c}\""));
            assert_eq!(serde_json::from_str::<Colour>(&j).unwrap(), c);
        }
        assert!(Colour::Red < Colour::DarkBlue, "own derives are kept");
    }

    #[test]
    fn an_unknown_spelling_is_an_error_everywhere() {
        assert_eq!(Colour::parse("Red"), None);
        let e = Colour::from_str("green").unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown Colour \"green\" (expected one of: red, dark-blue)"
        );
        // as serde's own derive words it, so config errors read as before
        let e = serde_json::from_str::<Colour>("\"green\"").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("unknown variant `green`, expected `red` or `dark-blue`"),
            "{e}"
        );
        let c = rusqlite::Connection::open_in_memory().unwrap();
        let got: rusqlite::Result<Colour> = c.query_row("SELECT 'green'", [], |r| r.get(0));
        assert!(got.unwrap_err().to_string().contains("unknown Colour"));
        let got: Colour = c
            .query_row("SELECT ?1", [Colour::DarkBlue], |r| r.get(0))
            .unwrap();
        assert_eq!(got, Colour::DarkBlue);
    }

    #[test]
    fn sql_list_quotes_each_spelling() {
        assert_eq!(
            super::sql_list(&Colour::ALL, Colour::as_str),
            "'red', 'dark-blue'"
        );
    }
}
