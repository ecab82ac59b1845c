//! Outbound message classes ([`Class`]) and the rules that give them
//! ([`ClassRules`]): data, like the reply catalog, from the shipped
//! `senders.d/` plus the `[senders] dirs` of a config. Here, in the
//! foundation, so the config checks a rule file once at load (file, line,
//! rule and key of a problem) and the ledger ([`crate::mail::ledger`]) uses
//! what was checked.

use std::path::Path;

use regex::Regex;
use serde::Deserialize;
use toml::Spanned;

crate::spelling::closed_set! {
    /// What kind of outbound message it is (counts, metrics and alerts are
    /// keyed on it; the name is the rules', the API's and the metrics').
    #[derive(PartialOrd, Ord)]
    pub enum Class {
        /// Mail a person or an application sent.
        User = "user",
        /// A null-sender message (`MAIL FROM:<>`): bounces, DSNs.
        Bounce = "bounce",
        /// An automatic reply (vacation, autoresponders).
        Autoreply = "autoreply",
        /// A DMARC aggregate or TLS-RPT report.
        Report = "report",
        /// Mail received and sent on to a remote address (SRS, aliases).
        Forward = "forward",
    }
}

impl Class {
    /// Mail the server sends by itself (everything but `user`).
    pub fn automated(self) -> bool {
        self != Class::User
    }
}

/// Why the class rules cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    /// A file that does not parse or holds a bad rule: `file:line: rule "id",
    /// key `class`: what`, as much of it as is known.
    #[error("{file}{}: {}{}{msg}", line.map(|l| format!(":{l}")).unwrap_or_default(), rule.as_ref().map(|r| format!("rule {r:?}")).unwrap_or_default(), match (rule, key) { (Some(_), Some(k)) => format!(", key `{k}`: "), (None, Some(k)) => format!("key `{k}`: "), (Some(_), None) => ": ".to_string(), (None, None) => String::new() })]
    Bad {
        /// File name.
        file: String,
        /// Its line (1-based), when known.
        line: Option<usize>,
        /// The rule's id, when the problem is in one.
        rule: Option<String>,
        /// The key at fault (`class`, `pattern`…).
        key: Option<String>,
        /// What is wrong.
        msg: String,
    },
    /// I/O.
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    rule: Vec<Spanned<RawRule>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    id: Spanned<String>,
    class: Spanned<String>,
    #[serde(default)]
    sender: Option<Spanned<String>>,
    #[serde(default)]
    header: Option<Spanned<String>>,
    #[serde(default)]
    pattern: Option<Spanned<String>>,
    #[serde(default)]
    source: Option<String>,
}

/// What a rule looks at.
#[derive(Debug, Clone)]
enum Field {
    Sender,
    Header(String),
}

/// One class rule.
#[derive(Debug, Clone)]
pub struct ClassRule {
    /// Rule id (a user rule with a shipped id replaces it).
    pub id: String,
    /// The class it gives.
    pub class: Class,
    field: Field,
    pattern: Regex,
}

/// The class rules, in the order they are tried.
#[derive(Debug, Clone, Default)]
pub struct ClassRules {
    rules: Vec<ClassRule>,
}

/// The shipped rule files (`senders.d/`), embedded.
pub const SHIPPED: &[(&str, &str)] = &[("classes.toml", include_str!("../senders.d/classes.toml"))];

impl ClassRules {
    /// The shipped rules.
    pub fn shipped() -> Result<Self, RulesError> {
        let mut r = ClassRules::default();
        for (name, text) in SHIPPED {
            r.rules.extend(parse_rules(name, text)?);
        }
        Ok(r)
    }

    /// Adds the `*.toml` files of `dir` before the others (tried first); a rule
    /// with the id of an existing one replaces it. On error nothing changes.
    pub fn extend_from_dir(&mut self, dir: &Path) -> Result<(), RulesError> {
        let rd =
            std::fs::read_dir(dir).map_err(|e| RulesError::Io(dir.display().to_string(), e))?;
        let mut files: Vec<_> = rd
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        let mut added: Vec<ClassRule> = Vec::new();
        for p in files {
            let name = p.display().to_string();
            let text = std::fs::read_to_string(&p).map_err(|e| RulesError::Io(name.clone(), e))?;
            for r in parse_rules(&name, &text)? {
                if added.iter().any(|a| a.id == r.id) {
                    // which of two rules with one id wins would be an accident of file order
                    return Err(RulesError::Bad {
                        file: name,
                        line: None,
                        rule: Some(r.id),
                        key: Some("id".into()),
                        msg: format!("the id is used twice in {}", dir.display()),
                    });
                }
                added.push(r);
            }
        }
        self.rules.retain(|r| !added.iter().any(|a| a.id == r.id));
        added.append(&mut self.rules);
        self.rules = added;
        Ok(())
    }

    /// The rules, in order.
    pub fn rules(&self) -> &[ClassRule] {
        &self.rules
    }

    /// The class a rule gives a message with this sender and these logged
    /// headers (lower-case names), if any matches.
    pub fn classify(&self, sender: &str, headers: &[(String, String)]) -> Option<Class> {
        self.rules.iter().find_map(|r| {
            let hit = match &r.field {
                Field::Sender => r.pattern.is_match(sender),
                Field::Header(h) => headers.iter().any(|(n, v)| n == h && r.pattern.is_match(v)),
            };
            hit.then_some(r.class)
        })
    }
}

/// The 1-based line of a byte offset of `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()
        .iter()
        .take(offset)
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

fn parse_rules(file: &str, text: &str) -> Result<Vec<ClassRule>, RulesError> {
    let bad =
        |at: Option<usize>, rule: Option<&str>, key: Option<&str>, msg: String| RulesError::Bad {
            file: file.to_string(),
            line: at.map(|o| line_of(text, o)),
            rule: rule.map(str::to_string),
            key: key.map(str::to_string),
            msg,
        };
    let raw: RawFile = toml::from_str(text).map_err(|e| {
        bad(
            e.span().map(|s| s.start),
            None,
            None,
            e.message().to_string(),
        )
    })?;
    let mut out = Vec::new();
    for r in raw.rule {
        let at = r.span().start;
        let r = r.into_inner();
        let _ = r.source;
        let id = r.id.get_ref().as_str();
        let class = Class::parse(r.class.get_ref()).ok_or_else(|| {
            bad(
                Some(r.class.span().start),
                Some(id),
                Some("class"),
                format!(
                    "unknown class {:?} (user, bounce, autoreply, report, forward)",
                    r.class.get_ref()
                ),
            )
        })?;
        let (field, pat) =
            match (&r.sender, &r.header, &r.pattern) {
                (Some(s), None, None) => (Field::Sender, s),
                (None, Some(h), Some(p)) => (Field::Header(h.get_ref().to_ascii_lowercase()), p),
                _ => return Err(bad(
                    Some(at),
                    Some(id),
                    None,
                    "give either sender = \"regex\" or header = \"name\" with pattern = \"regex\""
                        .into(),
                )),
            };
        let key = if r.sender.is_some() {
            "sender"
        } else {
            "pattern"
        };
        let pattern = regex::RegexBuilder::new(pat.get_ref())
            .size_limit(1 << 20)
            .build()
            .map_err(|e| bad(Some(pat.span().start), Some(id), Some(key), e.to_string()))?;
        out.push(ClassRule {
            id: id.to_string(),
            class,
            field,
            pattern,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_rule_is_named_by_file_line_rule_and_key() {
        for (text, want) in [
            (
                "[[rule]]\nid = \"x\"\nclass = \"spam\"\nsender = \"x\"\n",
                "f.toml:3: rule \"x\", key `class`: unknown class \"spam\"",
            ),
            (
                "\n[[rule]]\nid = \"y\"\nclass = \"user\"\nheader = \"precedence\"\npattern = \"(\"\n",
                "f.toml:6: rule \"y\", key `pattern`: regex parse error",
            ),
            (
                "[[rule]]\nid = \"z\"\nclass = \"user\"\n",
                "f.toml:1: rule \"z\": give either sender",
            ),
            ("[[rule]]\nid = \"w\"\nclas = 1\n", "f.toml:3: unknown field `clas`"),
        ] {
            let e = parse_rules("f.toml", text).unwrap_err().to_string();
            assert!(e.starts_with(want), "{text}: {e}");
        }
        assert_eq!(parse_rules("f.toml", "").unwrap().len(), 0);
    }

    #[test]
    fn one_id_twice_in_a_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let rule = "[[rule]]\nid = \"same\"\nclass = \"user\"\nsender = \"x\"\n";
        std::fs::write(dir.path().join("a.toml"), rule).unwrap();
        std::fs::write(dir.path().join("b.toml"), rule).unwrap();
        let mut r = ClassRules::shipped().unwrap();
        let n = r.rules().len();
        let e = r.extend_from_dir(dir.path()).unwrap_err().to_string();
        assert!(e.contains("b.toml") && e.contains("used twice"), "{e}");
        assert_eq!(r.rules().len(), n, "nothing changed");
    }
}
