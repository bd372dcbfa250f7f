//! The usage store: each key's spend in its current day and month, kept in an embedded `redb` database
//! (pure Rust, one file, crash-safe commits) so budgets survive a restart.
//!
//! It is written off the request path: requests only touch the in-memory meters; a background task saves
//! the records that changed every `[auth] flush_interval` and once more at shutdown (see
//! [`crate::auth::Access::flush`]). A crash loses at most one interval of spend. The sliding RPM and TPM
//! windows are not stored: they cover a minute, and a restart takes about that long anyway.

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use router_core::SpendRecord;
use std::path::{Path, PathBuf};

const SPEND: TableDefinition<&str, [u8; 32]> = TableDefinition::new("spend");

/// The open store.
pub struct UsageStore {
    db: Database,
    path: PathBuf,
}

impl std::fmt::Debug for UsageStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "UsageStore({})", self.path.display())
    }
}

fn encode(r: &SpendRecord) -> [u8; 32] {
    let mut b = [0u8; 32];
    b[0..8].copy_from_slice(&r.day.to_le_bytes());
    b[8..16].copy_from_slice(&r.day_usd.to_le_bytes());
    b[16..24].copy_from_slice(&r.month.to_le_bytes());
    b[24..32].copy_from_slice(&r.month_usd.to_le_bytes());
    b
}

fn decode(b: &[u8; 32]) -> SpendRecord {
    let u = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
    SpendRecord { day: u(0), day_usd: f64::from_bits(u(8)), month: u(16), month_usd: f64::from_bits(u(24)) }
}

impl UsageStore {
    /// Opens (or creates) the store at `path`.
    pub fn open(path: &Path) -> Result<UsageStore, String> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        let db = Database::create(path).map_err(|e| format!("cannot open the usage store {}: {e}", path.display()))?;
        Ok(UsageStore { db, path: path.to_path_buf() })
    }

    /// Every stored record.
    pub fn load(&self) -> Result<Vec<(String, SpendRecord)>, String> {
        let err = |e: &dyn std::fmt::Display| format!("cannot read the usage store {}: {e}", self.path.display());
        let tx = self.db.begin_read().map_err(|e| err(&e))?;
        let table = match tx.open_table(SPEND) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(err(&e)),
        };
        let mut out = Vec::new();
        for row in table.iter().map_err(|e| err(&e))? {
            let (k, v) = row.map_err(|e| err(&e))?;
            out.push((k.value().to_string(), decode(&v.value())));
        }
        Ok(out)
    }

    /// Writes `rows` in one transaction.
    pub fn save(&self, rows: &[(String, SpendRecord)]) -> Result<(), String> {
        if rows.is_empty() {
            return Ok(());
        }
        let err = |e: &dyn std::fmt::Display| format!("cannot write the usage store {}: {e}", self.path.display());
        let tx = self.db.begin_write().map_err(|e| err(&e))?;
        {
            let mut table = tx.open_table(SPEND).map_err(|e| err(&e))?;
            for (k, r) in rows {
                table.insert(k.as_str(), encode(r)).map_err(|e| err(&e))?;
            }
        }
        tx.commit().map_err(|e| err(&e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_survive_reopening() {
        let dir = std::env::temp_dir().join(format!("gw-store-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("usage.redb");
        let r = SpendRecord { day: 20_000, day_usd: 1.25, month: 657, month_usd: 7.5 };
        {
            let s = UsageStore::open(&path).unwrap();
            assert!(s.load().unwrap().is_empty());
            s.save(&[("team-a".into(), r)]).unwrap();
        }
        let s = UsageStore::open(&path).unwrap();
        assert_eq!(s.load().unwrap(), vec![("team-a".to_string(), r)]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
