//! `autosync status`: the running service's, through its HTTP API when
//! `api.json` next to the store names one that answers; else what the
//! store holds (a service without its API, or one in the last moments of
//! its stop, is said to be there: the state shown is the one it last
//! saved), with the runs a process that ended left in progress and the
//! connector spaces the configuration no longer names.

#![allow(clippy::print_stdout)] // printing is what this command is for

use crate::args::Cli;
use crate::control::{api_error, call, service_without_api};
use crate::exit::{Code, Failure};
use crate::locate::Located;
use anyhow::Context as _;
use autosync_service::{Status, controller_config, status_from_store, status_from_store_alone};

pub fn status(cli: &Cli, json: bool) -> Result<Code, Failure> {
    let located = Located::find(&cli.config)?;
    located.warn();
    // The service answered `service-stopping`: it is stopping, not off.
    let mut stopping = false;
    let from_api = match located
        .api_file()
        .and_then(|api| call(&api, "/api/v1/status", None))
    {
        Some(answer) => {
            let (code, text) = answer?;
            // In the last moments of its stop (its notifications sent) the
            // service no longer answers its status: what it saved is read.
            if code == 503 {
                stopping = true;
                None
            } else if code != 200 {
                return Err(api_error(code, &text));
            } else {
                Some(text)
            }
        }
        None => None,
    };
    // A service that runs without its API (`--once`, `--no-api`).
    let mut saved_by_service = false;
    let status: Status = match from_api {
        Some(text) => serde_json::from_str(&text).context("the API's status cannot be decoded")?,
        None => {
            // A service without its API saves its state in the store as it
            // goes: that is what is shown, and said so.
            let why = if stopping {
                Some(format!(
                    "the autosync service on the store {} is stopping (a graceful stop) and no longer answers its status",
                    located.store_path.display()
                ))
            } else {
                service_without_api(&located)?
            };
            if let Some(why) = why {
                saved_by_service = true;
                let note = format!(
                    "{why}: this is the state it last saved in the store (what runs now and what it waits for are not shown)"
                );
                if json {
                    errln!("note: {note}");
                } else {
                    outln!("({note})");
                }
            }
            let store = located.open_store()?;
            match located.loaded() {
                Some((loaded, registry)) => {
                    let config = controller_config(loaded, registry)
                        .map_err(|d| Failure::Config(loaded.error(d)))?;
                    let mut status = status_from_store(store.as_ref(), &config)
                        .context("cannot read the controller's state")?;
                    // What the service would say at its start: the MAs
                    // whose rules changed since their last full sync.
                    let needed =
                        autosync_engine::applied::full_syncs_needed(&loaded.system, store.as_ref())
                            .context("cannot tell which MAs need a full sync")?;
                    for n in needed {
                        if let Some(m) = status.mas.get_mut(&n.ma) {
                            m.full_sync_needed = Some(n.because);
                        }
                    }
                    status
                }
                None => status_from_store_alone(store.as_ref())
                    .context("cannot read the controller's state")?,
            }
        }
    };
    if json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&status).context("cannot encode the status")?
        );
    } else {
        if !status.service && located.loaded().is_none() {
            outln!(
                "(the configuration does not load: the MAs are those the store knows, their settings unknown)"
            );
        }
        // The profiles the hints name, as the controller resolves them
        // from this configuration (none when it does not load).
        let profiles = located
            .loaded()
            .and_then(|(loaded, registry)| controller_config(loaded, registry).ok())
            .map(|config| crate::status_text::hint_profiles(&config));
        let text = crate::status_text::render(
            &status,
            crate::status_text::terminal_width(),
            profiles.as_ref(),
        );
        // Not "no service running": one runs, and saved this.
        let text = if saved_by_service {
            text.replacen(
                crate::status_text::FROM_STORE,
                "from the store (as the running service last saved it)",
                1,
            )
        } else {
            text
        };
        out!("{text}");
        // Last runs left in progress by a process that ended (killed, its
        // host down): not running, whatever their record says.
        if let Ok(store) = located.open_store() {
            for (ma, m) in &status.mas {
                let Some(run) = &m.last_run else { continue };
                if autosync_engine::lease::left_by_an_ended_process(store.clone(), run)
                    .unwrap_or(false)
                {
                    outln!(
                        "({ma}: its last run, {} {}, was left in progress by a process that ended (killed, or the host went down): the next `autosync run` or `run-profile` closes it as stopped-server)",
                        run.profile,
                        run.id
                    );
                }
            }
        }
        // Connector spaces of MAs the configuration no longer names (read
        // from the store, which a running service shares).
        if let Some((loaded, _)) = located.loaded()
            && let Ok(store) = located.open_store()
        {
            match crate::commands::left_behind(store.as_ref(), &loaded.system) {
                Ok(left) => {
                    for (ma, n) in left {
                        out!("{}", crate::commands::left_behind_warning(&ma, n));
                    }
                }
                Err(_) => tracing::warn!("cannot list the store's connector spaces"),
            }
        }
    }
    Ok(Code::Ok)
}
