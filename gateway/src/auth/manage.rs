//! `routesim-gateway keys new|list|revoke`: managing a key file.
//!
//! `new` makes a secret from the OS's random source, appends the key's entry (with the salted hash only)
//! and prints the secret once on stdout: it cannot be shown again. `list` prints ids, status, limits and
//! metadata, never a hash. `revoke` marks a key `revoked = true`. The file is rewritten whole through a
//! temporary file and a rename (so a running gateway never reads half a file), owner-only on Unix;
//! comments in it are not kept.

use super::keys::{self, KeyEntry, KeyFile, StoredHash};
use router_core::{KeyLimits, MetaValue};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// `keys` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum KeysCommand {
    /// Create a key: appends it to the key file and prints its secret once.
    New(NewKey),
    /// List the keys of a key file (never their hashes).
    List {
        /// The key file.
        #[arg(long)]
        file: PathBuf,
    },
    /// Revoke a key (it is kept in the file, marked `revoked = true`).
    Revoke {
        /// The key file.
        #[arg(long)]
        file: PathBuf,
        /// The key's id.
        id: String,
    },
}

/// `keys new` options.
#[derive(Clone, Debug, clap::Args)]
pub struct NewKey {
    /// The key file (created if absent).
    #[arg(long)]
    pub file: PathBuf,
    /// The key's id (letters, digits, `_`, `-`).
    #[arg(long)]
    pub id: String,
    /// Free text.
    #[arg(long)]
    pub description: Option<String>,
    /// A model the key may request (repeatable; `prefix*` matches a prefix; none: any).
    #[arg(long = "model")]
    pub models: Vec<String>,
    /// An endpoint tag the key's requests are confined to (repeatable).
    #[arg(long = "endpoint-tag")]
    pub endpoint_tags: Vec<String>,
    /// Routing metadata KEY=VALUE added to every request (repeatable), e.g. team=search, plan=pro.
    #[arg(long = "meta", value_parser = parse_meta)]
    pub metadata: Vec<(String, MetaValue)>,
    /// Requests per minute.
    #[arg(long)]
    pub rpm: Option<u32>,
    /// Tokens per minute.
    #[arg(long)]
    pub tpm: Option<u64>,
    /// Requests in flight at once.
    #[arg(long)]
    pub concurrency: Option<u32>,
    /// Daily budget, USD.
    #[arg(long)]
    pub daily_budget_usd: Option<f64>,
    /// Monthly budget, USD.
    #[arg(long)]
    pub monthly_budget_usd: Option<f64>,
    /// Expiry: a date (2027-01-31) or date-time (2027-01-31T12:00:00Z).
    #[arg(long)]
    pub expires: Option<toml::value::Datetime>,
}

fn parse_meta(s: &str) -> Result<(String, MetaValue), String> {
    let (k, v) = s.split_once('=').ok_or_else(|| format!("expected KEY=VALUE, found {s:?}"))?;
    if k.is_empty() {
        return Err(format!("expected KEY=VALUE with a non-empty KEY, found {s:?}"));
    }
    let v = match v {
        "true" => MetaValue::Bool(true),
        "false" => MetaValue::Bool(false),
        _ => match v.parse::<f64>() {
            Ok(x) if x.is_finite() => MetaValue::Num(x),
            _ => MetaValue::Str(v.to_string()),
        },
    };
    Ok((k.to_string(), v))
}

/// Reads a key file (absent: empty when `missing_ok`); the error names the file, the field and the line.
fn read(file: &Path, missing_ok: bool) -> Result<KeyFile, String> {
    match std::fs::read_to_string(file) {
        Ok(text) => {
            let kf: KeyFile = routesim_schema::parse_toml(file, &text).map_err(|e| e.to_string())?;
            super::check_entries(file, &kf.keys, &[]).map_err(|e| e.to_string())?;
            Ok(kf)
        }
        Err(e) if missing_ok && e.kind() == std::io::ErrorKind::NotFound => Ok(KeyFile::default()),
        Err(e) => Err(format!("{}: cannot read the key file: {e}", file.display())),
    }
}

/// Writes a key file through a temporary file and a rename, owner-only on Unix.
fn write(file: &Path, kf: &KeyFile) -> Result<(), String> {
    let body = toml::to_string(kf).map_err(|e| format!("cannot encode the key file: {e}"))?;
    let text = format!(
        "# routesim-gateway client keys (written by `routesim-gateway keys`): salted SHA-256 hashes only, never \
         secrets.\n\n{body}"
    );
    let dir = file.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let tmp = dir.join(format!(".{}.tmp", file.file_name().and_then(|n| n.to_str()).unwrap_or("keys")));
    let err = |e: std::io::Error| format!("{}: cannot write the key file: {e}", file.display());
    {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts.open(&tmp).map_err(err)?;
        f.write_all(text.as_bytes()).map_err(err)?;
        f.sync_all().map_err(err)?;
    }
    std::fs::rename(&tmp, file).map_err(err)
}

/// Creates key `opts.id`; returns its secret.
pub fn new_key(opts: &NewKey, now_nanos: u64) -> Result<String, String> {
    let mut kf = read(&opts.file, true)?;
    if !keys::valid_id(&opts.id) {
        return Err(format!("--id: expected 1 to 64 letters, digits, `_` or `-`, found {:?}", opts.id));
    }
    if kf.keys.iter().any(|k| k.id == opts.id) {
        return Err(format!(
            "{}: a key `{}` exists already (revoke it, or choose another id)",
            opts.file.display(),
            opts.id
        ));
    }
    let limits = KeyLimits {
        rpm: opts.rpm,
        tpm: opts.tpm,
        concurrency: opts.concurrency,
        daily_budget_usd: opts.daily_budget_usd,
        monthly_budget_usd: opts.monthly_budget_usd,
    };
    limits.validate().map_err(|(f, m)| format!("--{}: {m}", f.replace('_', "-")))?;
    if let Some(x) = &opts.expires {
        // A key that is expired when made is a mistake (a typo in the year), never what was meant.
        match keys::datetime_nanos(x) {
            Some(e) if e <= now_nanos => {
                return Err(format!(
                    "--expires: {x} is in the past (now is {}): expected a future date",
                    keys::nanos_datetime(now_nanos)
                ));
            }
            Some(_) => {}
            None => return Err(format!("--expires: expected a date or date-time after 1970, found {x}")),
        }
    }
    let secret = keys::new_secret(&opts.id);
    let entry = KeyEntry {
        id: opts.id.clone(),
        hash: StoredHash::new(&secret).encode(),
        description: opts.description.clone(),
        models: opts.models.clone(),
        endpoint_tags: opts.endpoint_tags.clone(),
        metadata: opts.metadata.iter().cloned().collect::<BTreeMap<_, _>>(),
        limits,
        expires: opts.expires,
        revoked: false,
        created: Some(keys::nanos_datetime(now_nanos)),
        share: None,
        classes: None,
    };
    keys::check_entry("key", &entry).map_err(|(p, m)| format!("{p}: {m}"))?;
    kf.keys.push(entry);
    write(&opts.file, &kf)?;
    Ok(secret)
}

/// The `keys list` table.
pub fn list(file: &Path, now_nanos: u64) -> Result<String, String> {
    let kf = read(file, false)?;
    let mut out =
        format!("{:<20} {:<8} {:<21} {:<40} {}\n", "id", "status", "expires", "limits", "models / tags / metadata");
    for k in &kf.keys {
        let expired = k.expires.as_ref().and_then(keys::datetime_nanos).is_some_and(|e| now_nanos >= e);
        let status = if k.revoked {
            "revoked"
        } else if expired {
            "expired"
        } else {
            "active"
        };
        let l = &k.limits;
        let mut lim = Vec::new();
        if let Some(x) = l.rpm {
            lim.push(format!("rpm={x}"));
        }
        if let Some(x) = l.tpm {
            lim.push(format!("tpm={x}"));
        }
        if let Some(x) = l.concurrency {
            lim.push(format!("conc={x}"));
        }
        if let Some(x) = l.daily_budget_usd {
            lim.push(format!("day=${x}"));
        }
        if let Some(x) = l.monthly_budget_usd {
            lim.push(format!("month=${x}"));
        }
        let mut what = Vec::new();
        if !k.models.is_empty() {
            what.push(format!("models={}", k.models.join(",")));
        }
        if !k.endpoint_tags.is_empty() {
            what.push(format!("tags={}", k.endpoint_tags.join(",")));
        }
        for (m, v) in &k.metadata {
            let v = match v {
                MetaValue::Str(s) => s.clone(),
                MetaValue::Num(n) => n.to_string(),
                MetaValue::Bool(b) => b.to_string(),
            };
            what.push(format!("{m}={v}"));
        }
        let expires = k.expires.map(|e| e.to_string()).unwrap_or_else(|| "never".into());
        let lim = if lim.is_empty() { "unlimited".to_string() } else { lim.join(" ") };
        out.push_str(&format!("{:<20} {:<8} {:<21} {:<40} {}\n", k.id, status, expires, lim, what.join(" ")));
    }
    Ok(out)
}

/// Marks key `id` revoked.
pub fn revoke(file: &Path, id: &str) -> Result<(), String> {
    let mut kf = read(file, false)?;
    let Some(k) = kf.keys.iter_mut().find(|k| k.id == id) else {
        let ids: Vec<&str> = kf.keys.iter().map(|k| k.id.as_str()).collect();
        let near = ids.iter().copied().find(|c| strsim::levenshtein(c, id) <= 2);
        return Err(format!(
            "{}: no key `{id}`{}",
            file.display(),
            near.map(|n| format!(" (did you mean `{n}`?)")).unwrap_or_default()
        ));
    };
    k.revoked = true;
    write(file, &kf)
}

/// Runs a `keys` subcommand: 0 on success, 2 on an error (printed).
pub fn run(cmd: &KeysCommand) -> std::process::ExitCode {
    let now = super::wall_nanos();
    let result = match cmd {
        KeysCommand::New(opts) => new_key(opts, now).map(|secret| {
            eprintln!(
                "created key `{}` in {}; its secret is shown once, below (only its salted hash is stored):",
                opts.id,
                opts.file.display()
            );
            println!("{secret}");
        }),
        KeysCommand::List { file } => list(file, now).map(|t| print!("{t}")),
        KeysCommand::Revoke { file, id } => revoke(file, id).map(|()| {
            eprintln!("revoked key `{id}` in {} (a running gateway picks it up within its reload interval, or at once on SIGHUP)", file.display());
        }),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_list_revoke_round_trip_without_storing_the_secret() {
        let dir = std::env::temp_dir().join(format!("gw-keys-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("keys.toml");
        let opts = NewKey {
            file: file.clone(),
            id: "team-a".into(),
            description: None,
            models: vec!["gpt-4o*".into()],
            endpoint_tags: vec![],
            metadata: vec![parse_meta("team=search").unwrap(), parse_meta("tier=2").unwrap()],
            rpm: Some(60),
            tpm: None,
            concurrency: None,
            daily_budget_usd: Some(5.0),
            monthly_budget_usd: None,
            expires: Some("2099-01-01".parse().unwrap()),
        };
        let secret = new_key(&opts, 0).unwrap();
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(!text.contains(&secret) && !text.contains(secret.rsplit_once('.').unwrap().1));
        let kf: KeyFile = toml::from_str(&text).unwrap();
        assert!(StoredHash::parse(&kf.keys[0].hash).unwrap().verify(&secret));
        assert_eq!(kf.keys[0].metadata["tier"], MetaValue::Num(2.0));
        assert!(new_key(&opts, 0).unwrap_err().contains("exists already"));
        // An expiry in the past is refused, naming the option.
        let late = NewKey { id: "team-late".into(), ..opts.clone() };
        let now_2100 = 4_102_444_800 * 1_000_000_000; // 2100-01-01T00:00:00Z
        let e = new_key(&late, now_2100).unwrap_err();
        assert!(e.starts_with("--expires: 2099-01-01 is in the past"), "{e}");
        assert!(!std::fs::read_to_string(&file).unwrap().contains("team-late"), "nothing written");
        let listed = list(&file, 0).unwrap();
        assert!(listed.contains("team-a") && listed.contains("active") && listed.contains("rpm=60"));
        assert!(!listed.contains("sha256"));
        assert!(revoke(&file, "team-b").unwrap_err().contains("did you mean `team-a`"));
        revoke(&file, "team-a").unwrap();
        assert!(list(&file, 0).unwrap().contains("revoked"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
