//! `autosync queue` (and `autosync status`, in `status`): through the
//! running service's HTTP API when `api.json` next to the store names one
//! that answers, else straight from the store (the queue then waits for the
//! next start).
//!
//! The operators' controls (`start`, `stop`, `cancel`, `clear-queue`,
//! `pause`, `resume`, `reject`, `maintenance`) need the running service:
//! without one they fail with [`Code::NoService`]. `approve` goes through
//! the service when one runs, else records a deletion-threshold approval in
//! the store.
//!
//! Every command finds the service the same way ([`service_without_api`]):
//! its API when `api.json` names one that answers; else a live `autosync
//! run` holding the store's service lease is a service without its API
//! (`--no-api`), which `status` says (showing what it last saved in the
//! store) and the other commands refuse, saying so (its state is its own:
//! a change written to the store behind it would be overwritten); else no
//! service runs.

#![allow(clippy::print_stdout)] // printing is what these commands are for

use crate::args::{ApproveArgs, Cli, MaControlArgs, OnOff, QueueArgs};
use crate::exit::{Code, Failure};
use crate::locate::Located;
use anyhow::Context as _;
use autosync_api::{ApiFile, ControlAnswer, ControlBody, ErrorCode, QueueAnswer, QueueBody};
use autosync_controller::machine::Refusal;
use autosync_controller::{PushOutcome, Request};
use autosync_model::RunReason;
use autosync_service::{Control, controller_config, persist};

/// An agent that hands back error statuses as answers.
pub(crate) fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

/// Calls the API; `None` when nothing answers (no service runs).
pub(crate) fn call(
    api: &ApiFile,
    path: &str,
    body: Option<String>,
) -> Option<Result<(u16, String), Failure>> {
    let url = format!("{}{path}", api.url);
    let auth = format!("Bearer {}", api.token);
    let agent = agent();
    let answer = match body {
        None => agent.get(&url).header("Authorization", &auth).call(),
        Some(b) => agent
            .post(&url)
            .header("Authorization", &auth)
            .header("Content-Type", "application/json")
            .send(b),
    };
    match answer {
        Ok(mut response) => {
            let code = response.status().as_u16();
            Some(
                response
                    .body_mut()
                    .read_to_string()
                    .map(|text| (code, text))
                    .map_err(|e| {
                        Failure::Other(anyhow::anyhow!("cannot read the API's answer: {e}"))
                    }),
            )
        }
        Err(e) => {
            tracing::info!("the service's API does not answer ({e}); using the store");
            None
        }
    }
}

/// When no API answers: the sentence saying that a service runs on the
/// store all the same, without its API (`--no-api`, or an API that does
/// not answer), when a live `autosync run` holds the store's service
/// lease; `None` when no service runs (or there is no store yet).
pub(crate) fn service_without_api(located: &Located) -> Result<Option<String>, Failure> {
    if !located.store_path.is_file() {
        return Ok(None);
    }
    let store = located.open_store()?;
    let leases = autosync_store::lease::Leases::new(
        store,
        autosync_store::lease::Instance::current(),
        autosync_store::lease::LeaseTiming::default(),
    );
    let holder = autosync_service::running_service(&leases)
        .context("cannot read the store's service lease")?;
    Ok(holder.map(|holder| {
        format!(
            "an autosync service runs on the store {} ({holder}) but its API is off (`--no-api`, `--once`) or does not answer",
            located.store_path.display()
        )
    }))
}

/// A command's refusal when the service runs without its API: `instead`
/// says why it cannot go on and what to do.
fn refuse_without_api(located: &Located, instead: &str) -> Result<(), Failure> {
    match service_without_api(located)? {
        Some(why) => {
            located.warn();
            Err(Failure::Usage(format!("{why}: {instead}")))
        }
        None => Ok(()),
    }
}

/// The failure an API error answer stands for: a refusal (a 4xx with the
/// service's reason) is a usage failure, exit 2; a wrong token, a service
/// that is stopping or anything else is a failure, exit 4. The `code`
/// decides; an older service's answer without one, its status.
pub(crate) fn api_error(status: u16, text: &str) -> Failure {
    let body = serde_json::from_str::<serde_json::Value>(text).ok();
    let message = body
        .as_ref()
        .and_then(|v| v["error"].as_str().map(str::to_owned))
        .unwrap_or_else(|| text.to_owned());
    let code = body
        .as_ref()
        .and_then(|v| v["code"].as_str())
        .and_then(ErrorCode::from_name);
    let refused = match code {
        Some(ErrorCode::Unauthorized | ErrorCode::ServiceStopping) => false,
        Some(_) => (400..500).contains(&status),
        None => status == 400,
    };
    if refused {
        Failure::Usage(message)
    } else {
        let code = code.map(|c| format!(" {c}")).unwrap_or_default();
        Failure::Other(anyhow::anyhow!(
            "the API answered {status}{code}: {message}"
        ))
    }
}

pub fn queue(cli: &Cli, a: &QueueArgs) -> Result<Code, Failure> {
    let body = QueueBody {
        ma: a.ma.clone(),
        profile: a.profile.clone(),
        exclusive: a.exclusive,
        run_immediate: a.run_immediate,
        // The run's reason says `manual (cli)`, as `run-profile` and the
        // controls do.
        by: Some("cli".into()),
    };
    let located = Located::find(&cli.config)?;
    let from_api = match located.api_file() {
        Some(api) => {
            let text = serde_json::to_string(&body).context("cannot encode the request")?;
            call(&api, "/api/v1/queue", Some(text))
        }
        None => None,
    };
    let (answer, service) = match from_api {
        Some(answer) => {
            located.warn();
            let (code, text) = answer?;
            if code != 200 {
                return Err(api_error(code, &text));
            }
            let answer: QueueAnswer =
                serde_json::from_str(&text).context("the API's answer cannot be decoded")?;
            (answer, true)
        }
        None => {
            refuse_without_api(
                &located,
                "it keeps its queue in memory and would overwrite a request written to the store; queue through a service with its API, or stop it and queue again",
            )?;
            (queue_in_store(located, body)?, false)
        }
    };
    if a.json {
        outln!(
            "{}",
            serde_json::to_string(&answer).context("cannot encode the answer")?
        );
    } else {
        let how = if answer.merged {
            "already queued as"
        } else {
            "queued as"
        };
        let when = if service {
            ""
        } else {
            " (no service running: it runs at the next start)"
        };
        outln!("{} {}: {how} #{}{when}", a.ma, a.profile, answer.request);
    }
    Ok(Code::Ok)
}

/// The store, held against a service starting meanwhile, for a command
/// that changes the controller's saved state without one. A service that
/// runs without a reachable API would overwrite that state with its own:
/// refused (`instead`: what to do then) rather than lose the change.
fn store_without_service(
    loaded: &autosync_config::Loaded,
    command: &str,
    instead: &str,
) -> Result<
    (
        std::sync::Arc<dyn autosync_store::Store>,
        autosync_service::ServiceLease,
    ),
    Failure,
> {
    let store_path = loaded.system.base_dir.join(&loaded.system.store.path);
    let store = crate::commands::open_store(&loaded.system)?;
    let lease = match crate::service::take_service_lease(
        &store,
        &store_path,
        command,
        std::time::Duration::ZERO,
    ) {
        Err(Failure::Usage(_)) => {
            return Err(Failure::Usage(format!(
                "an autosync service runs on the store {} but its API is off (`--no-api`, `--once`) or does not answer: {instead}",
                store_path.display()
            )));
        }
        other => other?,
    };
    Ok((store, lease))
}

/// Adds the request to the persisted queue, for the next service start
/// (it needs the configuration, to check the MA and the profile).
fn queue_in_store(located: Located, body: QueueBody) -> Result<QueueAnswer, Failure> {
    let (loaded, registry) = located.into_loaded()?;
    let config =
        controller_config(&loaded, &registry).map_err(|d| Failure::Config(loaded.error(d)))?;
    // The service's own refusals, word for word.
    let Some(ma) = config.mas.get(&body.ma) else {
        let names = config.mas.keys().map(String::as_str);
        return Err(Failure::Usage(Refusal::unknown_ma(&body.ma, names).message));
    };
    if ma.info.steps(&body.profile).is_none() {
        let refusal = Refusal::unknown_profile(&body.ma, &body.profile, &ma.info);
        return Err(Failure::Usage(refusal.message));
    }
    // As the service refuses it: queued, it would never run.
    if !ma.enabled {
        return Err(Failure::Usage(format!(
            "`{}` is disabled in the configuration (`enabled = false` under its `[ma.controller]`): no run of it starts; enable it first",
            body.ma
        )));
    }
    let held_sync = ma.info.has_sync(&body.profile);
    let (store, _lease) = store_without_service(
        &loaded,
        "queue",
        "queue through a service with its API, or stop it and queue again",
    )?;
    // A sync that a staging threshold holds: refused, as the service does.
    if held_sync
        && autosync_engine::thresholds::staging_hold(store.as_ref(), &body.ma)
            .context("cannot read the staging thresholds")?
            .is_some()
    {
        let ma = &body.ma;
        return Err(Failure::Usage(format!(
            "`{ma}` waits for an operator: an import went over a staging threshold, so its syncs are held; `autosync approve {ma}` lets the staged changes flow, `autosync reject {ma}` discards them"
        )));
    }
    let mut state = persist::load(store.as_ref()).context("cannot read the controller's state")?;
    let request = Request {
        ma: body.ma,
        profile: body.profile,
        exclusive: body.exclusive,
        run_immediate: body.run_immediate,
        reason: RunReason::Manual { by: "cli".into() },
        chain: Vec::new(),
    };
    let outcome = state.queues.push(request, chrono::Utc::now());
    persist::save(store.as_ref(), &state).context("cannot write the controller's state")?;
    Ok(QueueAnswer {
        request: outcome.id().0,
        merged: matches!(outcome, PushOutcome::Merged { .. }),
    })
}

/// What became of a control sent to the service.
enum Sent {
    /// The service carried it out.
    Done(ControlAnswer),
    /// No service runs or answers; the sentence says why.
    NoService(String),
}

/// What `maintenance off` answers while maintenance mode is not on: nothing
/// changed, a success (as a second `maintenance on` is); the same sentence
/// with and without a service.
const MAINTENANCE_NOT_ON: &str = "maintenance mode is not on: nothing changed";

/// The stable code of the API's error answer `text`, when it has one.
fn error_code(text: &str) -> Option<ErrorCode> {
    let body = serde_json::from_str::<serde_json::Value>(text).ok()?;
    body["code"].as_str().and_then(ErrorCode::from_name)
}

/// Sends `action` (on `ma`, or on every MA / the service) to the running
/// service. A refusal is a usage failure carrying the service's reason.
/// Warns that the configuration does not load once the service answered.
fn send_control(located: &Located, action: Control, ma: Option<&str>) -> Result<Sent, Failure> {
    let path = located.api_path();
    let Some(api) = located.api_file() else {
        return Ok(Sent::NoService(format!(
            "no autosync service is running for this configuration (no {}); start it with `autosync run`",
            path.display()
        )));
    };
    let body = serde_json::to_string(&ControlBody {
        by: Some("cli".into()),
    })
    .context("cannot encode the request")?;
    let Some(answer) = call(&api, &autosync_api::control_path(action, ma), Some(body)) else {
        return Ok(Sent::NoService(format!(
            "no autosync service answers at {} (named by {}, which a service that did not stop cleanly left behind); start it with `autosync run`",
            api.url,
            path.display()
        )));
    };
    located.warn();
    let (code, text) = answer?;
    if code != 200 {
        // `maintenance off` while it is not on changes nothing, as a
        // second `maintenance on` does: a success saying so (the API
        // itself answers `not-in-maintenance`).
        if action == Control::EndMaintenance
            && error_code(&text) == Some(ErrorCode::NotInMaintenance)
        {
            return Ok(Sent::Done(ControlAnswer {
                ok: true,
                message: MAINTENANCE_NOT_ON.to_owned(),
            }));
        }
        return Err(api_error(code, &text));
    }
    let answer: ControlAnswer =
        serde_json::from_str(&text).context("the API's answer cannot be decoded")?;
    Ok(Sent::Done(answer))
}

fn print_answer(answer: &ControlAnswer, json: bool) -> Result<Code, Failure> {
    if json {
        outln!(
            "{}",
            serde_json::to_string(answer).context("cannot encode the answer")?
        );
    } else {
        outln!("{}", answer.message);
    }
    Ok(Code::Ok)
}

/// `autosync start|stop|cancel|clear-queue|pause|resume|reject`: the
/// control through the running service, which must run.
pub fn control(cli: &Cli, action: Control, ma: Option<&str>, json: bool) -> Result<Code, Failure> {
    let located = Located::find(&cli.config)?;
    match send_control(&located, action, ma)? {
        Sent::Done(answer) => print_answer(&answer, json),
        Sent::NoService(why) => {
            refuse_without_api(
                &located,
                &format!(
                    "`autosync {}` needs its API; run the service with its API (`autosync run` without `--no-api` or `--once`; `run --once` ends by itself), or stop it first{}",
                    match action {
                        Control::Maintenance => "maintenance on",
                        Control::EndMaintenance => "maintenance off",
                        other => other.name(),
                    },
                    if matches!(
                        action,
                        Control::Start
                            | Control::Stop
                            | Control::Maintenance
                            | Control::EndMaintenance
                    ) {
                        " (without a service the command acts on the store)"
                    } else {
                        ""
                    }
                ),
            )?;
            control_without_service(located, action, ma, json, why)
        }
    }
}

/// A control when no service runs: in the store, or [`Code::NoService`].
fn control_without_service(
    located: Located,
    action: Control,
    ma: Option<&str>,
    json: bool,
    why: String,
) -> Result<Code, Failure> {
    match action {
        // What the service's next start reads: set in the store, so
        // that a cron-driven `run --once` is not left with no way out
        // of a maintenance or a stop (it needs the configuration).
        Control::Start | Control::Stop | Control::Maintenance | Control::EndMaintenance => {
            let answer = control_in_store(located, action, ma)?;
            print_answer(&answer, json)
        }
        _ => {
            located.warn();
            Err(Failure::NoService(why))
        }
    }
}

/// Start or stop MAs, or maintenance on or off, in the controller's saved
/// state, without a service (its next start, `run` or `run --once`, takes
/// it from there).
fn control_in_store(
    located: Located,
    action: Control,
    ma: Option<&str>,
) -> Result<ControlAnswer, Failure> {
    let (loaded, registry) = located.into_loaded()?;
    let config =
        controller_config(&loaded, &registry).map_err(|d| Failure::Config(loaded.error(d)))?;
    let mas: Vec<String> = match ma {
        Some(m) if !config.mas.contains_key(m) => {
            let names = config.mas.keys().map(String::as_str);
            return Err(Failure::Usage(Refusal::unknown_ma(m, names).message));
        }
        Some(m) => vec![m.to_owned()],
        None => config.mas.keys().cloned().collect(),
    };
    let (store, _lease) = store_without_service(
        &loaded,
        action.name(),
        "use a service with its API, or stop it first",
    )?;
    let mut state = persist::load(store.as_ref()).context("cannot read the controller's state")?;
    let message = match action {
        Control::Start | Control::Stop => {
            let start = action == Control::Start;
            for m in &mas {
                let c = state.mas.entry(m.clone()).or_default();
                c.started = Some(start);
                if start {
                    c.failed = None;
                    c.attempts = 0;
                }
            }
            format!(
                "{} {} (no service running: the next start takes it from there)",
                if start { "started" } else { "stopped" },
                mas.join(", ")
            )
        }
        // Who turned it on, and since when, stay the first's (as the
        // service answers).
        Control::Maintenance => match &state.maintenance {
            Some(since) => {
                let answer = autosync_controller::machine::maintenance_already_on(since);
                return Ok(ControlAnswer {
                    ok: true,
                    message: format!("{answer} (no service running)"),
                });
            }
            None => {
                state.maintenance = Some(autosync_controller::machine::Since {
                    by: "cli".into(),
                    at: chrono::Utc::now(),
                });
                "maintenance mode on: no run starts (no service running: the next start keeps it)"
                    .to_owned()
            }
        },
        _ => {
            if state.maintenance.take().is_none() {
                return Ok(ControlAnswer {
                    ok: true,
                    message: format!("{MAINTENANCE_NOT_ON} (no service running)"),
                });
            }
            "maintenance mode off (no service running: the next start runs what is queued)"
                .to_owned()
        }
    };
    persist::save(store.as_ref(), &state).context("cannot write the controller's state")?;
    Ok(ControlAnswer { ok: true, message })
}

/// `autosync maintenance on|off`.
pub fn maintenance(cli: &Cli, mode: OnOff, json: bool) -> Result<Code, Failure> {
    let action = match mode {
        OnOff::On => Control::Maintenance,
        OnOff::Off => Control::EndMaintenance,
    };
    control(cli, action, None, json)
}

/// `autosync reject MA`: whatever the MA waits for, through the running
/// service; without one, in the store.
pub fn reject(cli: &Cli, a: &MaControlArgs) -> Result<Code, Failure> {
    let located = Located::find(&cli.config)?;
    let answer = match send_control(&located, Control::Reject, Some(&a.ma))? {
        Sent::Done(answer) => answer,
        Sent::NoService(why) => {
            refuse_without_api(
                &located,
                "`autosync reject` needs its API (the service would go on holding what the store no longer does); run the service with its API (`autosync run` without `--no-api` or `--once`; `run --once` ends by itself), or stop it first and reject again",
            )?;
            tracing::info!("{why}: rejecting in the store");
            ControlAnswer {
                ok: true,
                message: crate::commands::reject_in_store(located, &a.ma)?,
            }
        }
    };
    print_answer(&answer, a.json)
}

/// `autosync approve MA`: whatever the MA waits for, through the running
/// service; without one, the deletion threshold of its next export, in the
/// store.
pub fn approve(cli: &Cli, a: &ApproveArgs) -> Result<Code, Failure> {
    let located = Located::find(&cli.config)?;
    let answer = match send_control(&located, Control::Approve, Some(&a.ma))? {
        Sent::Done(answer) => answer,
        Sent::NoService(why) => {
            refuse_without_api(
                &located,
                "`autosync approve` needs its API (the service would go on holding what the store no longer does); run the service with its API (`autosync run` without `--no-api` or `--once`; `run --once` ends by itself), or stop it first and approve again",
            )?;
            tracing::info!("{why}: approving in the store");
            ControlAnswer {
                ok: true,
                message: crate::commands::approve_in_store(located, &a.ma)?,
            }
        }
    };
    print_answer(&answer, a.json)
}
