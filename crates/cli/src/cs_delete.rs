//! `autosync cs delete MA [--yes]`: delete a management agent's connector
//! space, configured or no longer in the configuration. Without `--yes` it
//! says what would happen and changes nothing (exit 2). And `autosync cs
//! release MA ANCHOR`: make one explicit disconnector a normal one.

use crate::args::{Cli, CsDeleteArgs, CsReleaseArgs};
use crate::commands::{engine, print_run};
use crate::exit::{Code, Failure};
use crate::progress;
use anyhow::Context as _;
use autosync_engine::{CancelFlag, RunOptions};
use autosync_model::RunReason;

pub fn run(cli: &Cli, a: &CsDeleteArgs) -> Result<Code, Failure> {
    let engine = engine(cli)?;
    let counts = engine.store().read()?.cs_counts(&a.ma)?;
    let configured = engine.system().ma(&a.ma).is_some();
    if counts.total == 0 {
        // The names it may have meant: the configured MAs and the
        // connector spaces the store holds (one of an MA removed from the
        // file too), as every other command suggests them.
        let mut names: Vec<String> = engine.system().mas.iter().map(|m| m.name.clone()).collect();
        for ma in engine.store().read()?.cs_mas()? {
            if !names.contains(&ma) {
                names.push(ma);
            }
        }
        let hint = autosync_model::suggest::did_you_mean(&a.ma, names.iter().map(String::as_str))
            .map(|h| format!(" ({h})"))
            .unwrap_or_default();
        return Err(Failure::Usage(format!(
            "`{}` has no connector space in the store: nothing to delete{hint}",
            a.ma
        )));
    }
    if !a.yes {
        let effect = if configured {
            "it is in the configuration: the metaverse deletion rule may delete the metaverse \
             objects it is authoritative for, and deprovisioning applies to their other \
             connectors (an export deletion threshold still stops a mass delete); its next full \
             import and full sync build it again"
        } else {
            "it is no longer in the configuration: what it contributed to the metaverse is \
             recalled (the next source by precedence takes over), and a metaverse object whose \
             deletion rule counts every connector goes with its last one"
        };
        return Err(Failure::Usage(format!(
            "deleting the connector space of `{}` disconnects and removes its {} object(s); {effect}. \
             Run `autosync cs delete {} --yes` to do it",
            a.ma, counts.total, a.ma
        )));
    }
    let sink = progress::sink(a.no_progress || a.json);
    // Ctrl-C stops it at its next safe point, as any run.
    let cancel = CancelFlag::default();
    crate::commands::cancel_on_signal(&cancel);
    let opts = RunOptions {
        reason: RunReason::Manual {
            by: "cs delete".into(),
        },
        progress: Some(sink.clone()),
        cancel,
        sync_batch: None,
    };
    let record = engine
        .delete_connector_space(&a.ma, opts)
        .with_context(|| format!("the connector space of `{}` could not be deleted", a.ma))?;
    sink.finish();
    print_run(&engine, &record, a.json)
}

pub fn release(cli: &Cli, a: &CsReleaseArgs) -> Result<Code, Failure> {
    use autosync_engine::{DiscardError, ReleaseError};
    let engine = engine(cli)?;
    match engine.release_explicit_disconnector(&a.ma, &a.anchor) {
        Ok(()) => {
            println!(
                "released: the object of `{}` with anchor `{}` is a normal disconnector; the \
                 person's provisioning takes it back (or joins it, by `{}`'s join rules) at the next \
                 sync that tries the person again (the service's retry of the sync that reported \
                 object-already-exists, or `autosync run-profile SOURCE delta-sync`)",
                a.ma, a.anchor, a.ma
            );
            Ok(Code::Ok)
        }
        Err(e @ (ReleaseError::NoObject { .. } | ReleaseError::NotExplicit { .. })) => {
            Err(Failure::Usage(e.to_string()))
        }
        Err(ReleaseError::Refused(DiscardError::Running { ma })) => Err(Failure::Usage(format!(
            "management agent `{ma}` is running a profile: release the object when the run ends"
        ))),
        Err(ReleaseError::Refused(DiscardError::Engine(
            e @ autosync_engine::EngineError::UnknownMa { .. },
        ))) => Err(Failure::Usage(e.to_string())),
        Err(ReleaseError::Refused(DiscardError::Engine(e))) => Err(Failure::Other(
            anyhow::Error::new(e).context(format!("`{}` `{}` was not released", a.ma, a.anchor)),
        )),
    }
}
