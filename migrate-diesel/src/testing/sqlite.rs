//! Test databases on SQLite: files in `<temp>/migrate-tests`, each a copy
//! of its template file.

use std::fs;
use std::path::PathBuf;

use diesel::{Connection, SqliteConnection};

use super::{Server, TestConnection, gone};

#[diagnostic::do_not_recommend]
impl TestConnection for SqliteConnection {
    type Server = Files;
}

/// The directory of templates and test databases.
#[doc(hidden)]
pub struct Files {
    root: PathBuf,
}

impl Files {
    fn template_path(&self, key: &str) -> PathBuf {
        self.root.join(format!("migrate_tpl_{key}.sqlite"))
    }
}

fn open(path: &std::path::Path) -> Result<SqliteConnection, String> {
    let path = path
        .to_str()
        .ok_or("the temporary directory's path is not UTF-8")?;
    SqliteConnection::establish(path).map_err(|e| format!("cannot open {path}: {e}"))
}

impl Server<SqliteConnection> for Files {
    fn connect() -> Result<Files, String> {
        let root = std::env::temp_dir().join("migrate-tests");
        fs::create_dir_all(&root).map_err(|e| format!("cannot create {}: {e}", root.display()))?;
        Ok(Files { root })
    }

    fn clean(&mut self) {
        let Ok(entries) = fs::read_dir(&self.root) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            if name.to_str().is_some_and(gone) {
                let _ = fs::remove_file(entry.path());
            }
        }
    }

    fn template(
        &mut self,
        key: &str,
        build: &dyn Fn(&mut SqliteConnection) -> Result<(), String>,
    ) -> Result<(), String> {
        let path = self.template_path(key);
        if path.exists() {
            return Ok(());
        }
        // Another test process may be building it: wait for its lock.
        let lock_path = self.root.join(format!("migrate_tpl_{key}.lock"));
        let lock = fs::File::create(&lock_path)
            .map_err(|e| format!("cannot create {}: {e}", lock_path.display()))?;
        lock.lock()
            .map_err(|e| format!("cannot lock {}: {e}", lock_path.display()))?;
        if path.exists() {
            return Ok(());
        }
        let building = self
            .root
            .join(format!("migrate_tpl_{key}.{}.building", std::process::id()));
        let _ = fs::remove_file(&building);
        let mut conn = open(&building)?;
        let built = build(&mut conn);
        drop(conn);
        let _ = fs::remove_file(format!("{}-migrate.lock", building.display()));
        if let Err(e) = built {
            let _ = fs::remove_file(&building);
            return Err(e);
        }
        // A rename is atomic: a template is there whole, or not at all.
        fs::rename(&building, &path)
            .map_err(|e| format!("cannot rename {}: {e}", building.display()))
    }

    fn create(
        &mut self,
        key: &str,
        name: &str,
        _build: &dyn Fn(&mut SqliteConnection) -> Result<(), String>,
    ) -> Result<(SqliteConnection, String), String> {
        let path = self.root.join(format!("{name}.sqlite"));
        let template = self.template_path(key);
        fs::copy(&template, &path).map_err(|e| {
            format!(
                "cannot copy {} to {}: {e}",
                template.display(),
                path.display()
            )
        })?;
        Ok((open(&path)?, path.display().to_string()))
    }

    fn url(&self, place: &str) -> Result<String, String> {
        Ok(place.to_owned())
    }

    fn drop_database(&mut self, place: &str) -> Result<(), String> {
        for suffix in ["-journal", "-wal", "-shm", "-migrate.lock"] {
            let _ = fs::remove_file(format!("{place}{suffix}"));
        }
        fs::remove_file(place).map_err(|e| e.to_string())
    }
}
