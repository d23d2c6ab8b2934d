//! `reqsync secret set|check|remove NAME`: the secret store that `password_secret = "NAME"`
//! (and the other `*_secret` keys, and a source URL's `password_secret=`) read from. See
//! `reqsync_runtime::secret_store` for where secrets live and how each platform protects them.
//!
//! The secret itself never appears on the command line (process lists and shell histories
//! show it): `set` reads it from standard input, typed without echo at a terminal.

use std::io::{IsTerminal, Read};
use std::path::PathBuf;

use anyhow::{Context, anyhow};
use clap::{Args, Subcommand, ValueEnum};
use reqsync_runtime::config::Config;
use reqsync_runtime::reqcheck::{CredentialsSource, Secret};
use reqsync_runtime::secret_store::{self, Scope, SecretName, WriteOptions};

use super::exit::{self, Failure, OrExit};

#[derive(Debug, Args)]
pub struct SecretArgs {
    #[command(subcommand)]
    pub action: SecretAction,
}

#[derive(Debug, Subcommand)]
pub enum SecretAction {
    /// Store a secret, read from standard input (typed twice without echo at a terminal;
    /// otherwise pipe it in: `reqsync secret set NAME < file`). Replaces any previous value.
    /// Run it as the account that runs reqsync, or (Windows) as an administrator.
    Set(SetArgs),
    /// Say whether a secret can be read, from where, and its length; never its value. Run it
    /// as the account that runs reqsync.
    Check(NameArgs),
    /// Delete a secret from the store.
    Remove(NameArgs),
}

#[derive(Debug, Args)]
pub struct NameArgs {
    /// The secret's name, as the config names it (`password_secret = "NAME"`): letters,
    /// digits, `-`, `_` and `.`.
    pub name: SecretName,
    /// The config file: its `[secrets] dir` (by default `secrets` beside it) is the store.
    #[arg(long, short, default_value_os_t = super::default_config())]
    pub config: PathBuf,
}

#[derive(Debug, Args)]
pub struct SetArgs {
    #[command(flatten)]
    pub target: NameArgs,
    /// Windows only: who can decrypt the secret. `machine` (the default): any account on this
    /// machine that may read the file, so a service account can use what an administrator
    /// stored; `user`: only the account running this command.
    #[arg(long, value_enum)]
    pub scope: Option<ScopeArg>,
    /// Windows only: an account allowed to read the secret's file besides SYSTEM,
    /// Administrators and its owner; repeat for several (default: `NT SERVICE\reqsync` and
    /// `NETWORK SERVICE`, what `reqsync service install` and `reqsync schedule install` run
    /// as).
    #[arg(long = "reader", value_name = "ACCOUNT")]
    pub readers: Vec<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ScopeArg {
    Machine,
    User,
}

pub fn run(args: SecretArgs) -> Result<u8, Failure> {
    match args.action {
        SecretAction::Set(args) => set(args),
        SecretAction::Check(args) => check(args),
        SecretAction::Remove(args) => remove(args),
    }
}

fn set(args: SetArgs) -> Result<u8, Failure> {
    if !cfg!(windows) && (args.scope.is_some() || !args.readers.is_empty()) {
        return Err(Failure::new(
            exit::USAGE,
            anyhow!(
                "`--scope` and `--reader` are for Windows (DPAPI and the file's ACL); on Unix \
                 the store's file is readable by its owner only: run this command as the user \
                 that runs reqsync"
            ),
        ));
    }
    let name = &args.target.name;
    let config = load(&args.target.config)?;
    let value = read_value(name).or_exit(exit::USAGE, "nothing was stored")?;
    let options = WriteOptions {
        scope: match args.scope {
            Some(ScopeArg::User) => Scope::User,
            Some(ScopeArg::Machine) | None => Scope::Machine,
        },
        readers: (!args.readers.is_empty()).then_some(args.readers),
    };
    let written = config
        .secrets
        .write(name, &value, &options)
        .or_exit(exit::CONFIG, &format!("cannot store the secret `{name}`"))?;
    println!("stored the secret `{name}` in {}", written.path.display());
    if cfg!(windows) {
        let scope = match options.scope {
            Scope::Machine => "any account on this machine that may read the file",
            Scope::User => "only this account, on this machine",
        };
        println!(
            "encrypted with DPAPI for {scope}; readable by SYSTEM, Administrators, its owner \
             and {}",
            written.readers.join(", ")
        );
    }
    note_systemd_credentials(name);
    let users = users_of(&config, name);
    if users.is_empty() {
        println!(
            "note: {} does not use it yet; name it with e.g. `password_secret = \"{name}\"` in \
             [reqcheck]",
            config.path.display()
        );
    }
    Ok(exit::OK)
}

fn check(args: NameArgs) -> Result<u8, Failure> {
    let name = &args.name;
    let config = load(&args.config)?;
    let location = config.secrets.locate(name);
    let found = config
        .secrets
        .read_at(name, location)
        .or_exit(exit::CONFIG, &format!("the secret `{name}` cannot be read"))?;
    println!(
        "the secret `{name}` can be read from {}: {} characters",
        found.location,
        found.secret.expose().chars().count()
    );
    let users = users_of(&config, name);
    if users.is_empty() {
        println!("{} does not use it", config.path.display());
    } else {
        println!("used by {}", users.join(", "));
    }
    Ok(exit::OK)
}

fn remove(args: NameArgs) -> Result<u8, Failure> {
    let name = &args.name;
    let config = load(&args.config)?;
    let path = config
        .secrets
        .remove(name)
        .or_exit(exit::CONFIG, &format!("cannot remove the secret `{name}`"))?;
    println!("removed the secret `{name}` ({})", path.display());
    let users = users_of(&config, name);
    if !users.is_empty() {
        eprintln!(
            "note: the config still uses it ({}); runs fail until it is stored again",
            users.join(", ")
        );
    }
    Ok(exit::OK)
}

fn load(config: &std::path::Path) -> Result<Config, Failure> {
    Config::load(config).or_exit(exit::CONFIG, "cannot load the configuration")
}

/// The secret, from the terminal without echo, or from standard input: one line ending
/// dropped, as the store drops one when reading.
fn read_value(name: &SecretName) -> anyhow::Result<Secret> {
    let value = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(format!("secret `{name}` (not shown): "))
            .context("cannot read from the terminal")?;
        let again = rpassword::prompt_password("again, to confirm: ")
            .context("cannot read from the terminal")?;
        if first != again {
            return Err(anyhow!("the two entries differ"));
        }
        first
    } else {
        let limit = reqsync_runtime::input_file::SECRET.max_bytes;
        let mut bytes = Vec::new();
        std::io::stdin()
            .take(limit + 1)
            .read_to_end(&mut bytes)
            .context("cannot read standard input")?;
        if bytes.len() as u64 > limit {
            return Err(anyhow!(
                "standard input holds more than {} KiB: not a secret",
                limit / 1024
            ));
        }
        let mut text =
            String::from_utf8(bytes).map_err(|_| anyhow!("standard input is not UTF-8 text"))?;
        if text.ends_with('\n') {
            text.pop();
            if text.ends_with('\r') {
                text.pop();
            }
        }
        text
    };
    if value.is_empty() {
        return Err(anyhow!(
            "the secret is empty (pipe it in, e.g. `reqsync secret set {name} < file`, or run \
             this command at a terminal to type it)"
        ));
    }
    // A second line is a file piped in by mistake, and no password has one.
    if value.contains(['\n', '\r', '\0']) {
        return Err(anyhow!(
            "the secret spans more than one line; give one line (a trailing newline is fine)"
        ));
    }
    Ok(Secret::new(value))
}

/// Under systemd with credentials, reqsync reads secrets from there and never from the store
/// this command writes: say so, or the operator wonders why the new value is not used.
fn note_systemd_credentials(name: &SecretName) {
    if let Some(dir) =
        std::env::var_os(secret_store::CREDENTIALS_DIRECTORY).filter(|d| !d.is_empty())
    {
        eprintln!(
            "note: $CREDENTIALS_DIRECTORY is set ({}): where it is set, reqsync reads `{name}` \
             from systemd's credentials there, not from this store",
            PathBuf::from(dir).display()
        );
    }
}

/// The config keys that name secret `name`.
fn users_of(config: &Config, name: &SecretName) -> Vec<String> {
    let uses = |source: &CredentialsSource| matches!(source, CredentialsSource::Store(secret) if &secret.name == name);
    let mut users = Vec::new();
    let r = &config.reqcheck;
    for (key, source) in [("username", &r.username), ("password", &r.password)] {
        if uses(source) {
            users.push(format!("reqcheck.{key}_secret"));
        }
    }
    if let Some(proxy) = &r.proxy_credentials {
        for (key, source) in [("username", &proxy.username), ("password", &proxy.password)] {
            if uses(source) {
                users.push(format!("reqcheck.proxy_{key}_secret"));
            }
        }
    }
    if let Ok(url) = config.source()
        && url
            .password_secret()
            .is_some_and(|secret| &secret.name == name)
    {
        users.push("the source URL's password_secret".into());
    }
    users
}
