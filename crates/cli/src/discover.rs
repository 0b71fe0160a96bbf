//! `autosync discover`: print (or write) the controller configuration that
//! `autosync_service::discover` proposes from the configuration and the run
//! history. Settings are shown as the file writes them (`${ENV}`, `X_file`),
//! never the secrets they stand for; the `--write` file is created 0600.

use crate::args::{Cli, DiscoverArgs};
use crate::commands::load;
use crate::exit::{Code, Failure};
use crate::private_file;
use anyhow::Context as _;
use autosync_discover::{self as discover, History};
use autosync_store::{Store, sqlite::SqliteStore};

pub fn discover(cli: &Cli, a: &DiscoverArgs) -> Result<Code, Failure> {
    let (loaded, registry) = load(cli)?;
    if let Err(diagnostics) = autosync_service::controller_config(&loaded, &registry) {
        errln!(
            "warning: the controller settings have problems; they are kept in the proposal as written:\n{}",
            loaded.error(diagnostics)
        );
    }
    // Read the history only from a store that exists: discover creates nothing.
    let store_path = loaded.system.base_dir.join(&loaded.system.store.path);
    let history = match SqliteStore::open_existing(&store_path)? {
        Some(store) => discover::read_history(&loaded, &mut *store.read()?)?,
        None => History::default(),
    };
    let proposal = discover::propose(&loaded, &registry, &history);
    let toml = discover::to_toml(&proposal);
    if let Some(path) = &a.write {
        // Readable by its owner only: it holds the user's settings.
        let written = if a.force {
            private_file::replace(path, toml.as_bytes())
        } else {
            private_file::create_new(path, toml.as_bytes())
        };
        match written {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(Failure::Usage(format!(
                    "{} exists; pass --force to overwrite it",
                    path.display()
                )));
            }
            other => other.with_context(|| format!("cannot write {}", path.display()))?,
        }
    }
    if a.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&proposal).context("cannot encode the proposal")?
        );
    } else if let Some(path) = &a.write {
        outln!(
            "wrote the proposed controller configuration to {}",
            path.display()
        );
        for line in discover::summary_lines_of(&proposal) {
            outln!("{}", line.trim_start_matches("discover: "));
        }
    } else {
        out!("{toml}");
    }
    Ok(Code::Ok)
}
