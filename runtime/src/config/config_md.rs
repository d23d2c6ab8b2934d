//! docs/CONFIG.md against the code. Each section's table lists exactly the keys its struct
//! accepts (a key refused with the way to give it instead, `password`, needs no row), and a
//! default the table gives as a value is the one the code applies: writing it into the file
//! changes nothing. A default changed in code but not in the docs, or a key added without a
//! row, fails here. The option tables of the PostgreSQL and SQL Server URLs list exactly the
//! options their parsers read.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::de::{DeserializeOwned, Visitor};

use super::*;
use crate::notify::settings::{EventKind, RawEmail, RawWebhook, SmtpTls};

/// docs/CONFIG.md in the repository, from this crate's folder.
fn config_md_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/CONFIG.md")
}

/// Every section of the file: its name as CONFIG.md's heading gives it (`[name]` or
/// `[[name]]`) and the keys its struct accepts.
fn sections() -> Vec<(&'static str, &'static [&'static str])> {
    vec![
        ("reqcheck", keys_of::<reqcheck::RawReqCheck>()),
        ("source", keys_of::<RawSource>()),
        ("sync", keys_of::<sync::RawSync>()),
        ("jobs", keys_of::<jobs::RawJob>()),
        ("daemon", keys_of::<daemon::RawDaemon>()),
        ("audit", keys_of::<RawAudit>()),
        ("secrets", keys_of::<RawSecrets>()),
        ("status", keys_of::<RawStatus>()),
        ("notify", keys_of::<RawNotify>()),
        ("notify.email", keys_of::<RawEmail>()),
        ("notify.webhook", keys_of::<RawWebhook>()),
    ]
}

/// A config that loads, with `line` in section `section`.
fn config_with(section: &str, line: &str) -> String {
    let mut text = String::from("[reqcheck]\nurl = \"https://reqcheck.example.org\"\n");
    if section == "reqcheck" {
        text += &format!("{line}\n");
    }
    text += "[source]\nurl = \"sqlite://clinic.db\"\n";
    if section == "source" {
        text += &format!("{line}\n");
    }
    text += "[[jobs]]\nname = \"patients\"\nquery = \"queries/patients.sql\"\n\
             transform = \"transforms/patients.wasm\"\ntemplate = \"templates/patient_data.json.j2\"\n";
    let hook = "[[notify.webhook]]\nurl = \"https://hooks.example.org/reqsync\"";
    let email = "[notify.email]\nhost = \"smtp.example.org\"\nfrom = \"reqsync@example.org\"\n\
                 to = [\"ops@example.org\"]";
    text += &match section {
        "reqcheck" | "source" => String::new(),
        "jobs" => format!("{line}\n"),
        "notify" => format!("[notify]\n{line}\n{hook}\n"),
        "notify.email" => format!("[notify]\n{email}\n{line}\n"),
        "notify.webhook" => format!("[notify]\n{hook}\n{line}\n"),
        other => format!("[{other}]\n{line}\n"),
    };
    text
}

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(Path::new("/srv/reqsync/reqsync.toml"), text)
}

/// A table row of CONFIG.md: its keys and its default cell (`None` in a table without one).
#[derive(Debug)]
struct Row {
    keys: Vec<String>,
    default: Option<String>,
}

/// The `| key | … |` tables of CONFIG.md, by the section whose heading they follow.
fn documented(text: &str) -> BTreeMap<String, Vec<Row>> {
    let mut tables: BTreeMap<String, Vec<Row>> = BTreeMap::new();
    let mut section: Option<String> = None;
    let mut in_code = false;
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if line.starts_with("```") {
            in_code = !in_code;
        }
        if in_code {
            continue;
        }
        if line.starts_with('#') {
            // `## [reqcheck]`, `### [[notify.webhook]]`; other headings (`### Retries`) are
            // parts of the section above them.
            let quoted = backticked(line);
            if let [name] = quoted.as_slice()
                && name.starts_with('[')
            {
                section = Some(name.trim_matches(['[', ']']).to_string());
            } else if line.starts_with("## ") {
                section = None;
            }
            continue;
        }
        let Some(section) = &section else { continue };
        let header = cells(line);
        if header.first().map(String::as_str) != Some("key") {
            continue;
        }
        let default_column = header.iter().position(|h| h == "default");
        lines.next(); // | --- | --- |
        while let Some(row) = lines.next_if(|l| l.starts_with('|')) {
            let cells = cells(row);
            tables.entry(section.clone()).or_default().push(Row {
                keys: backticked(&cells[0]),
                default: default_column.map(|i| cells[i].clone()),
            });
        }
    }
    tables
}

fn cells(line: &str) -> Vec<String> {
    let Some(inner) = line.trim().strip_prefix('|') else {
        return Vec::new();
    };
    inner.split('|').map(|c| c.trim().to_string()).collect()
}

/// The `code spans` of a line of Markdown.
fn backticked(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// A default described in words rather than given as a value: what to write to state it
/// (when the config can), and the values from code the words must mention.
struct Prose {
    write: Option<String>,
    mentions: Vec<String>,
}

fn prose_defaults() -> BTreeMap<&'static str, Prose> {
    let same_as_sync = || Prose {
        write: None,
        mentions: vec!["`[sync]`".into()],
    };
    BTreeMap::from([
        (
            "secrets.dir",
            Prose {
                write: Some(format!("{:?}", crate::secret_store::DEFAULT_DIR)),
                mentions: vec![format!("`{}`", crate::secret_store::DEFAULT_DIR)],
            },
        ),
        (
            "notify.on",
            Prose {
                write: Some(format!(
                    "[{}]",
                    EventKind::CONFIGURABLE
                        .map(|k| format!("{:?}", k.as_str()))
                        .join(", ")
                )),
                mentions: Vec::new(),
            },
        ),
        (
            "notify.email.port",
            Prose {
                write: Some(SmtpTls::default().default_port().to_string()),
                mentions: [SmtpTls::StartTls, SmtpTls::Tls]
                    .map(|tls| format!("`{}`", tls.default_port()))
                    .to_vec(),
            },
        ),
        (
            // The endpoint of the module's record type: known once the module is loaded.
            "jobs.endpoint",
            Prose {
                write: None,
                mentions: Vec::new(),
            },
        ),
        (
            // Applies to dose jobs only, when the pipeline groups their rows.
            "jobs.group_by_column",
            Prose {
                write: None,
                mentions: vec![format!("`{DEFAULT_GROUP_BY_COLUMN}`")],
            },
        ),
        ("jobs.transform_deadline_ms", same_as_sync()),
        ("jobs.transform_memory_mb", same_as_sync()),
        ("jobs.transform_max_record_kb", same_as_sync()),
    ])
}

/// What a table cell says when a key has no default: required, or nothing unless given.
fn no_default(cell: &str) -> bool {
    matches!(cell, "" | "—" | "— (required)" | "(required)" | "none")
}

/// `value` (a default as CONFIG.md quotes it, `"2m"`, `6`, `America/Chicago`) as TOML: as it
/// is when it is a TOML value, else as a string.
fn as_toml(value: &str) -> String {
    match toml::from_str::<toml::Table>(&format!("v = {value}")) {
        Ok(_) => value.to_string(),
        Err(_) => format!("{value:?}"),
    }
}

#[test]
fn config_md_documents_every_key_of_every_section_and_no_other() {
    let text = std::fs::read_to_string(config_md_path()).expect("docs/CONFIG.md");
    let tables = documented(&text);
    let sections = sections();
    let names: BTreeSet<&str> = sections.iter().map(|(name, _)| *name).collect();
    // Every section the file accepts is checked (a subsection, such as `email` of `[notify]`,
    // is a section of its own).
    for key in keys_of::<RawConfig>() {
        assert!(
            names.contains(key),
            "[{key}] is not among the sections checked here"
        );
    }
    for (section, accepted) in &sections {
        let rows = tables
            .get(*section)
            .unwrap_or_else(|| panic!("docs/CONFIG.md has no table of [{section}]"));
        let documented: BTreeSet<&str> = rows
            .iter()
            .flat_map(|row| row.keys.iter().map(String::as_str))
            .collect();
        for key in &documented {
            assert!(
                accepted.contains(key),
                "docs/CONFIG.md documents `{section}.{key}`, which the config does not accept"
            );
        }
        for key in accepted.iter().filter(|key| !documented.contains(*key)) {
            if names.contains(format!("{section}.{key}").as_str()) {
                continue;
            }
            // Accepted only to be refused with the way to give it instead.
            let refused = parse(&config_with(section, &format!("{key} = \"x\"")));
            assert!(
                matches!(&refused, Err(ConfigError::Invalid { reason, .. })
                    if reason.contains("passwords never go in the config file")),
                "`{section}.{key}` is accepted but has no row in docs/CONFIG.md: {refused:?}"
            );
        }
    }
}

/// The options of the `| option |` table under the heading starting with `heading`.
fn url_options(text: &str, heading: &str) -> BTreeSet<String> {
    let mut lines = text.lines().skip_while(|line| !line.starts_with(heading));
    lines
        .next()
        .unwrap_or_else(|| panic!("docs/CONFIG.md has no heading {heading}"));
    let mut lines = lines
        .take_while(|line| !line.starts_with("### "))
        .skip_while(|line| cells(line).first().map(String::as_str) != Some("option"))
        .skip(2); // the header and | --- |
    let mut options = BTreeSet::new();
    while let Some(row) = lines.next().filter(|line| line.starts_with('|')) {
        options.extend(backticked(&cells(row)[0]));
    }
    options
}

#[test]
fn config_md_documents_every_url_option_of_each_database_and_no_other() {
    let text = std::fs::read_to_string(config_md_path()).expect("docs/CONFIG.md");
    for (heading, accepted) in [
        ("### PostgreSQL", crate::source::postgres::URL_OPTIONS),
        ("### SQL Server", crate::source::sqlserver::config::OPTIONS),
    ] {
        let accepted: BTreeSet<String> = accepted.iter().map(|o| o.to_string()).collect();
        assert_eq!(
            url_options(&text, heading),
            accepted,
            "docs/CONFIG.md's options under {heading} differ from those the URL parser reads"
        );
    }
}

#[test]
fn config_md_states_the_defaults_the_code_applies() {
    let text = std::fs::read_to_string(config_md_path()).expect("docs/CONFIG.md");
    let mut prose = prose_defaults();
    let mut checked = 0;
    for (section, rows) in documented(&text) {
        let unchanged = format!("{:?}", parse(&config_with(&section, "")).unwrap());
        for row in &rows {
            let Some(cell) = &row.default else { continue };
            for key in &row.keys {
                let name = format!("{section}.{key}");
                let write = if no_default(cell) {
                    continue;
                } else if let [value] = backticked(cell).as_slice()
                    && *cell == format!("`{value}`")
                {
                    as_toml(value)
                } else {
                    let described = prose.remove(name.as_str()).unwrap_or_else(|| {
                        panic!(
                            "docs/CONFIG.md describes the default of `{name}` ({cell}): give it \
                             as a value in backticks, or say in `prose_defaults` how to check it"
                        )
                    });
                    for mention in &described.mentions {
                        assert!(
                            cell.contains(mention.as_str()),
                            "docs/CONFIG.md's default of `{name}` ({cell}) does not say {mention}"
                        );
                    }
                    match described.write {
                        Some(write) => write,
                        None => continue,
                    }
                };
                let line = format!("{key} = {write}");
                let stated = parse(&config_with(&section, &line))
                    .unwrap_or_else(|e| panic!("`{name}`'s documented default: {line}: {e}"));
                assert!(
                    format!("{stated:?}") == unchanged,
                    "docs/CONFIG.md gives `{name}` the default {cell}, the code another"
                );
                checked += 1;
            }
        }
    }
    assert!(
        prose.is_empty(),
        "`prose_defaults` describes keys CONFIG.md gives no such default: {:?}",
        prose.keys().collect::<Vec<_>>()
    );
    // Guards the reading of the tables themselves: they give over 30 defaults as values.
    assert!(
        checked >= 30,
        "only {checked} defaults found in docs/CONFIG.md"
    );
}

/// The keys a section's struct accepts, as serde lists them for `deny_unknown_fields`.
fn keys_of<T: DeserializeOwned>() -> &'static [&'static str] {
    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(FieldNames(&mut fields));
    assert!(
        !fields.is_empty(),
        "{} is not a struct",
        std::any::type_name::<T>()
    );
    fields
}

/// A deserializer that only notes the field names of the struct asked of it.
struct FieldNames<'a>(&'a mut &'static [&'static str]);

impl<'de> serde::Deserializer<'de> for FieldNames<'_> {
    type Error = serde::de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(serde::de::Error::custom("not a struct"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = fields;
        Err(serde::de::Error::custom("fields noted"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}
