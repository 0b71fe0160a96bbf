//! `autosync history`, `cs` and `mv`: pages of the run history, of a
//! connector space and of the metaverse, and lookups of one object (by
//! anchor, DN or id).
//!
//! A lookup that finds nothing is an empty answer, not an error: exit 0,
//! `[]` with `--json`, and a line saying what was not found. Names that do
//! not exist (an MA, a metaverse type, an attribute) are usage errors
//! (exit 2) with the closest name.
//!
//! They only read: a store that does not exist is not created (see
//! `locate`): a note on stderr says so, and the answer is empty.

use crate::args::{CsAction, CsArgs, HistoryArgs, MvArgs};
use crate::commands::check_ma;
use crate::exit::{Code, Failure};
use crate::locate::{Located, read_store, store_path_of};
use crate::page::{self, Page};
use crate::render;
use crate::waits::{LISTED, Unresolved, UnresolvedOf, found};
use anyhow::Context as _;
use autosync_model::suggest;
use autosync_model::{Connection, CsId, CsObject, MvObject, SystemDef};
use autosync_store::{CsFilter, MvQuery, Store, StoreRead, StoreResult};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// How many objects one read of a DN lookup's scan takes.
const DN_SCAN: usize = 1000;

/// `autosync history`: it reads the store only, so it goes on (with a
/// warning) while the configuration does not load; `--ma` is then not
/// checked against it.
pub fn history(cli: &crate::args::Cli, a: &HistoryArgs) -> Result<Code, Failure> {
    let located = Located::find(&cli.config)?;
    located.warn();
    if let (Some(ma), Some((loaded, _))) = (&a.ma, located.loaded()) {
        check_ma(&loaded.system, ma)?;
    }
    let store = located.open_store()?;
    if let Some(id) = a.run {
        return history_run(&store, a, id);
    }
    let mut read = store.read()?;
    let mut runs = read.runs_page(a.ma.as_deref(), a.offset, a.limit.saturating_add(1))?;
    let total = read.run_count(a.ma.as_deref())?;
    let page = Page::cut(&mut runs, a.offset, a.limit, Some(total));
    let mut ended = Vec::new();
    for r in &runs {
        if autosync_engine::lease::left_by_an_ended_process(store.clone(), r)? {
            ended.push(r.id);
        }
    }
    if a.json {
        let v: Vec<_> = runs
            .iter()
            .map(|r| {
                let mut v = render::run_json(r);
                if ended.contains(&r.id) {
                    v["process_ended"] = serde_json::Value::Bool(true);
                }
                v
            })
            .collect();
        outln!(
            "{}",
            serde_json::to_string_pretty(&v).context("cannot encode the history")?
        );
    } else {
        if !runs.is_empty() || a.offset == 0 {
            out!("{}", render::history(&runs, &ended));
        }
        out!("{}", page.footer("runs"));
    }
    Ok(Code::Ok)
}

/// `autosync history RUN_ID`: one run, a page of its per-object changes
/// (`--offset`, `--limit`) and its first errors (`--limit`).
fn history_run(store: &Arc<dyn Store>, a: &HistoryArgs, id: i64) -> Result<Code, Failure> {
    let mut read = store.read()?;
    let Some(run) = read.run_get(id)? else {
        return Err(Failure::Usage(format!(
            "there is no run {id} in the history (`autosync history` lists the runs)"
        )));
    };
    if let Some(ma) = a.ma.as_deref().filter(|ma| *ma != run.ma) {
        return Err(Failure::Usage(format!(
            "run {id} is a run of `{}`, not of `{ma}`",
            run.ma
        )));
    }
    let (show_changes, show_errors) = (!a.errors, !a.changes);
    let errors = if show_errors {
        read.run_errors(id, a.limit)?
    } else {
        Vec::new()
    };
    let (changes, page) = if show_changes {
        let mut changes = read.run_changes(id, a.offset, a.limit.saturating_add(1))?;
        let recorded = read.run_change_count(id)?;
        let page = Page::cut(&mut changes, a.offset, a.limit, Some(recorded));
        (changes, Some(page))
    } else {
        (Vec::new(), None)
    };
    let ended = autosync_engine::lease::left_by_an_ended_process(store.clone(), &run)?;
    if a.json {
        let mut v = render::run_json(&run);
        if ended {
            v["process_ended"] = serde_json::Value::Bool(true);
        }
        if show_changes {
            v["changes"] = serde_json::to_value(&changes).context("cannot encode the changes")?;
        }
        if show_errors {
            v["errors"] = serde_json::to_value(&errors).context("cannot encode the errors")?;
        }
        outln!(
            "{}",
            serde_json::to_string_pretty(&v).context("cannot encode the run")?
        );
    } else {
        let mut text = render::run(&run, &[]);
        if ended {
            text = text.replace("(running)", "(process ended)");
            text.push_str(&format!(
                "(run {} was left in progress by a process that ended (killed, or the host went down): the next `autosync run` or `run-profile` closes it as stopped-server, with the counters of what it committed)\n",
                run.id
            ));
        }
        if let Some(page) = page {
            text.push_str(&render::run_changes(&run, &changes, &page));
        }
        if show_errors {
            text.push_str(&render::run_errors(&run, &errors));
        }
        out!("{text}");
    }
    Ok(Code::Ok)
}

/// The objects of `ma` whose DN is `dn` as a directory compares DNs,
/// ignoring case ([`autosync_model::dn::folded`]: attribute types' and
/// values' case, the spaces around separators and the spelling of an
/// escape do not count; a key that is not a DN compares ignoring case).
/// DNs are not indexed: the connector space is read in pages.
fn cs_by_dn(read: &mut dyn StoreRead, ma: &str, dn: &str) -> StoreResult<Vec<CsObject>> {
    use autosync_model::dn::folded;
    let wanted = folded(dn);
    let (mut after, mut found) = (0, Vec::new());
    loop {
        let page = read.cs_page(ma, CsFilter::All, after, DN_SCAN)?;
        let Some(last) = page.last() else {
            return Ok(found);
        };
        after = last.id;
        found.extend(page.into_iter().filter(|o| folded(&o.dn) == wanted));
    }
}

/// What a lookup named, for the line that says it found nothing.
fn cs_key(anchor: Option<&str>, dn: Option<&str>) -> String {
    match (anchor, dn) {
        (Some(a), _) => format!("anchor `{a}`"),
        (None, Some(dn)) => format!("DN `{dn}`"),
        (None, None) => String::new(),
    }
}

pub fn cs(cli: &crate::args::Cli, a: &CsArgs) -> Result<Code, Failure> {
    let ma = match (&a.action, &a.ma) {
        (Some(CsAction::Delete(d)), _) => return crate::cs_delete::run(cli, d),
        (Some(CsAction::Release(r)), _) => return crate::cs_delete::release(cli, r),
        (None, Some(ma)) => ma,
        (None, None) => return Err(Failure::Usage("name a management agent".to_owned())),
    };
    let (loaded, _) = crate::commands::load_to_read(cli)?;
    check_ma(&loaded.system, ma)?;
    let store = read_store(&store_path_of(&loaded.system), &cli.config)?;
    let filter = if a.filter.pending_import {
        CsFilter::PendingImport
    } else if a.filter.pending_export {
        CsFilter::PendingExport
    } else if a.filter.unconfirmed_export {
        CsFilter::UnconfirmedExport
    } else if a.filter.errors {
        CsFilter::Errors
    } else {
        CsFilter::All
    };
    let mut read = store.read()?;
    let counts = read.cs_counts(ma)?;
    let unresolved = read.ref_waiting_count(ma)?;
    // The values an export holds back are counted with the outbound waits
    // (references held from export), each connector once: for the text's
    // first line, or to list them.
    let held = if a.filter.unresolved || !a.json {
        autosync_engine::held_at_export(read.as_mut(), &loaded.system, ma, counts.errors, LISTED)?
            .into_iter()
            .map(|(id, (listed, more))| (id, UnresolvedOf { listed, more }))
            .collect()
    } else {
        BTreeMap::new()
    };
    let unresolved_out = if held.is_empty() {
        read.ref_out_waiting_count(ma)?
    } else {
        let mut ids: BTreeSet<CsId> = held.keys().copied().collect();
        let mut after = 0;
        loop {
            let page = read.ref_out_waiting_page(ma, after, 10_000)?;
            let Some(&last) = page.last() else { break };
            after = last;
            ids.extend(page);
        }
        ids.len() as u64
    };
    let lookup = a.anchor.is_some() || a.dn.is_some();
    let (mut objects, page) = if a.filter.unresolved {
        // Few objects wait: every id is read, then the page's objects.
        let mut ids = crate::waits::waiting_ids(read.as_mut(), ma)?;
        if !held.is_empty() {
            ids.extend(held.keys().copied());
            ids.sort_unstable();
            ids.dedup();
        }
        let total = ids.len() as u64;
        let mut found = Vec::new();
        for id in ids
            .into_iter()
            .skip(a.offset)
            .take(a.limit.saturating_add(1))
        {
            found.extend(read.cs_get(id)?);
        }
        let page = Page::cut(&mut found, a.offset, a.limit, Some(total));
        (found, page)
    } else if let Some(anchor) = &a.anchor {
        let mut found: Vec<CsObject> = read.cs_by_anchor(ma, anchor)?.into_iter().collect();
        let page = Page::cut(&mut found, 0, usize::MAX, None);
        (found, page)
    } else if let Some(dn) = &a.dn {
        let mut found = cs_by_dn(read.as_mut(), ma, dn)?;
        let page = Page::cut(&mut found, 0, a.limit, None);
        (found, page)
    } else {
        let after = page::cs_after(read.as_mut(), ma, filter, a.offset)?;
        let mut objects = read.cs_page(ma, filter, after, a.limit.saturating_add(1))?;
        let total = read.cs_count(ma, filter)?;
        let page = Page::cut(&mut objects, a.offset, a.limit, Some(total));
        (objects, page)
    };
    // Whether the MA's filters hold each unjoined object out now (the
    // sync works it out each time: it is not stored), on the values as
    // the sync sees them, so before any is hidden.
    let filters = autosync_engine::ConnectorFilters::of(&loaded.system, ma);
    let mut states = Vec::new();
    if filters.any() {
        for o in &objects {
            states.push(filters.state(read.as_mut(), o)?);
        }
    }
    // Write-only and sealed values are never shown, not even sealed.
    objects.iter_mut().for_each(autosync_model::secret::hide_in);
    let mut records = if filter == CsFilter::Errors && a.offset == 0 {
        autosync_engine::record_errors(read.as_mut(), ma)?
    } else {
        Vec::new()
    };
    records.truncate(a.limit);
    // What each listed object's references wait for (`--unresolved`).
    let mut waits = Vec::new();
    if a.filter.unresolved {
        for o in &objects {
            let w = crate::waits::waits_of(read.as_mut(), &loaded.system, ma, o)?;
            let mut rows = UnresolvedOf {
                listed: found(read.as_mut(), &loaded.system, o, w.listed)?,
                more: w.more,
            };
            if let Some(h) = held.get(&o.id) {
                let room = LISTED.saturating_sub(rows.listed.len()).min(h.listed.len());
                rows.listed
                    .extend(h.listed.iter().take(room).cloned().map(Unresolved::Held));
                rows.more += h.listed.len() - room + h.more;
            }
            waits.push(rows);
        }
    }
    if a.json {
        // The objects (each `connection` as its filters make it now), then
        // the record errors (`anchor`, `location`, `error`: the keys they
        // share with objects, plus `location`).
        // With `--unresolved`, each object has its `unresolved` references.
        #[derive(serde::Serialize)]
        #[serde(untagged)]
        enum Listed<'a> {
            Object(render::Stated<'a>),
            Waiting {
                #[serde(flatten)]
                object: render::Stated<'a>,
                unresolved: &'a [Unresolved],
                /// Waits past the first `waits::LISTED`, counted.
                #[serde(skip_serializing_if = "is_zero")]
                unresolved_more: usize,
            },
            Record(&'a autosync_engine::RecordError),
        }
        let all: Vec<Listed<'_>> = if a.filter.unresolved {
            objects
                .iter()
                .zip(&waits)
                .enumerate()
                .map(|(i, (object, w))| Listed::Waiting {
                    object: render::Stated {
                        object,
                        state: states.get(i),
                    },
                    unresolved: &w.listed,
                    unresolved_more: w.more,
                })
                .collect()
        } else {
            objects
                .iter()
                .enumerate()
                .map(|(i, object)| {
                    Listed::Object(render::Stated {
                        object,
                        state: states.get(i),
                    })
                })
                .chain(records.iter().map(Listed::Record))
                .collect()
        };
        outln!(
            "{}",
            serde_json::to_string_pretty(&all).context("cannot encode connector space objects")?
        );
        return Ok(Code::Ok);
    }
    if lookup && objects.is_empty() {
        outln!(
            "no object with {} in the connector space of {ma} ({} objects)",
            cs_key(a.anchor.as_deref(), a.dn.as_deref()),
            page::thousands(counts.total)
        );
        return Ok(Code::Ok);
    }
    let text = render::cs(ma, &objects, &states, &counts, unresolved, unresolved_out);
    let no_records = filter != CsFilter::Errors || records.is_empty();
    if objects.is_empty() && a.offset > 0 {
        // Past the end: the counts, not an empty table.
        outln!("{}", text.lines().next().unwrap_or_default());
    } else if objects.is_empty() && no_records {
        // Nothing matches: the counts and a line saying so, not an empty table.
        outln!("{}", text.lines().next().unwrap_or_default());
        outln!("no objects match");
    } else {
        out!("{text}");
    }
    out!("{}", page.footer("objects"));
    if filter == CsFilter::Errors {
        out!("{}", render::record_errors(&records));
    }
    if a.filter.unresolved {
        out!("{}", render::unresolved(&objects, &waits));
    }
    Ok(Code::Ok)
}

/// The metaverse types' attributes `name` must be one of (of `object_type`,
/// or of any type): a usage error naming the closest one otherwise.
fn check_attribute(
    system: &SystemDef,
    object_type: Option<&str>,
    name: &str,
) -> Result<(), Failure> {
    let mut names: Vec<&str> = match object_type.and_then(|t| system.metaverse.get(t)) {
        Some(t) => t.attributes.iter().map(String::as_str).collect(),
        None => system
            .metaverse
            .values()
            .flat_map(|t| t.attributes.iter().map(String::as_str))
            .collect(),
    };
    if names.contains(&name) {
        return Ok(());
    }
    names.sort_unstable();
    names.dedup();
    let whose = match object_type {
        Some(t) => format!("metaverse type `{t}` has no attribute `{name}`"),
        None => format!("no metaverse type has an attribute `{name}`"),
    };
    let hint = match suggest::did_you_mean(name, names.iter().copied()) {
        Some(h) => h,
        None => format!("its attributes: {}", names.join(", ")),
    };
    Err(Failure::Usage(format!("--filter: {whose} ({hint})")))
}

/// `--filter attr=value`, its attribute checked against the metaverse.
fn parse_filter(
    system: &SystemDef,
    object_type: Option<&str>,
    filter: &str,
) -> Result<(String, String), Failure> {
    match filter.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => {
            let k = k.trim();
            check_attribute(system, object_type, k)?;
            Ok((k.to_owned(), v.to_owned()))
        }
        _ => Err(Failure::Usage(format!(
            "--filter `{filter}` is not of the form attr=value (e.g. --filter department=Sales)"
        ))),
    }
}

/// A `--filter` on a reference attribute (`manager=14`, `manager=#14`,
/// `manager=person #14`): the metaverse types that declare it (of
/// `object_type`, or all) and the id of the object it names. `None`: not a
/// reference attribute (the filter compares values as text).
fn by_reference(
    system: &SystemDef,
    object_type: Option<&str>,
    attr: &str,
    value: &str,
) -> Option<Result<(Vec<String>, i64), Failure>> {
    let types: Vec<String> = system
        .metaverse
        .iter()
        .filter(|(t, def)| {
            object_type.is_none_or(|o| o == t.as_str()) && def.references.contains_key(attr)
        })
        .map(|(t, _)| t.clone())
        .collect();
    if types.is_empty() {
        return None;
    }
    let text = value.trim();
    let number = text.rsplit('#').next().unwrap_or(text).trim();
    Some(number.parse::<i64>().map(|id| (types, id)).map_err(|_| {
        Failure::Usage(format!(
            "--filter `{attr}={value}`: `{attr}` holds references; name the metaverse object by its id, as `mv` shows it (e.g. --filter {attr}=14 or --filter '{attr}=person #14')"
        ))
    }))
}

pub fn mv(cli: &crate::args::Cli, a: &MvArgs) -> Result<Code, Failure> {
    let (loaded, _) = crate::commands::load_to_read(cli)?;
    let system = &loaded.system;
    if let Some(t) = &a.object_type
        && !system.metaverse.contains_key(t)
    {
        let types: Vec<&str> = system.metaverse.keys().map(String::as_str).collect();
        return Err(Failure::Usage(format!(
            "no metaverse type `{t}` ({})",
            suggest::hint(t, &types)
        )));
    }
    let attribute = match &a.filter {
        None => None,
        Some(f) => Some(parse_filter(system, a.object_type.as_deref(), f)?),
    };
    if let Some(ma) = &a.connector {
        check_ma(system, ma)?;
    }
    let store = read_store(&store_path_of(system), &cli.config)?;
    let mut read = store.read()?;
    let (mut objects, page, missing) = if let Some(id) = a.id {
        let found: Vec<MvObject> = read.mv_get(id)?.into_iter().collect();
        let missing = format!("no metaverse object {id}");
        (found, None, missing)
    } else if let Some(ma) = &a.connector {
        let connectors = match (&a.anchor, &a.dn) {
            (Some(anchor), _) => read.cs_by_anchor(ma, anchor)?.into_iter().collect(),
            (None, Some(dn)) => cs_by_dn(read.as_mut(), ma, dn)?,
            (None, None) => Vec::new(),
        };
        let key = cs_key(a.anchor.as_deref(), a.dn.as_deref());
        let mut ids: Vec<i64> = connectors
            .iter()
            .filter_map(|o| match o.connection {
                Connection::Connector { mv_id } => Some(mv_id),
                _ => None,
            })
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let missing = match connectors.first() {
            None => format!("no object with {key} in the connector space of {ma}"),
            // The same state as `cs` shows (MIM's connector states): an
            // admin asking why it is not joined learns the filter or the
            // explicit disconnection (a black-box review).
            Some(cs) => {
                let state = match &cs.connection {
                    Connection::ExplicitDisconnector => {
                        "an explicit disconnector (`autosync cs release` makes it a normal one)"
                            .to_owned()
                    }
                    _ => match autosync_engine::ConnectorFilters::of(system, ma)
                        .state(read.as_mut(), cs)?
                    {
                        autosync_engine::FilterState::Filtered { filter } => format!(
                            "a filtered disconnector (filter #{filter} of {ma} holds it out)"
                        ),
                        autosync_engine::FilterState::Failed { error, .. } => format!(
                            "a disconnector (a filter of {ma} cannot be evaluated on it: {error})"
                        ),
                        autosync_engine::FilterState::NotFiltered => "a disconnector".to_owned(),
                    },
                };
                format!(
                    "the object with {key} in the connector space of {ma} is {state}: joined to no metaverse object"
                )
            }
        };
        (read.mv_get_many(&ids)?, None, missing)
    } else if let Some((types, id)) = attribute
        .as_ref()
        .and_then(|(k, v)| by_reference(system, a.object_type.as_deref(), k, v))
        .transpose()?
    {
        // A reference attribute: the objects that name metaverse object
        // `id` in it (a manager's reports, a person's groups).
        let (attr, _) = attribute
            .as_ref()
            .map_or(("", ""), |(k, v)| (k.as_str(), v.as_str()));
        let mut ids: Vec<i64> = Vec::new();
        for t in types {
            ids.extend(read.mv_find(&t, attr, &autosync_model::Value::Reference(id))?);
        }
        ids.sort_unstable();
        ids.dedup();
        let total = ids.len() as u64;
        let ids: Vec<i64> = ids
            .into_iter()
            .skip(a.offset)
            .take(a.limit.saturating_add(1))
            .collect();
        let mut objects = read.mv_get_many(&ids)?;
        objects.sort_unstable_by_key(|o| o.id);
        let page = Page::cut(&mut objects, a.offset, a.limit, Some(total));
        (objects, Some(page), String::new())
    } else {
        let query = MvQuery {
            object_type: a.object_type.clone(),
            attribute,
            case_sensitive: a.case_sensitive,
        };
        let after = page::mv_after(read.as_mut(), &query, a.offset)?;
        let mut objects = read.mv_page(&query, after, a.limit.saturating_add(1))?;
        // Counted only when the store counts them cheaply (no filter).
        let total = match query.attribute {
            None => Some(read.mv_count(query.object_type.as_deref())?),
            Some(_) => None,
        };
        let page = Page::cut(&mut objects, a.offset, a.limit, total);
        (objects, Some(page), String::new())
    };
    for o in &mut objects {
        o.attributes
            .values_mut()
            .for_each(|v| autosync_model::secret::hide(&mut v.value));
    }
    let ids: Vec<i64> = objects.iter().map(|o| o.id).collect();
    let connectors = read.cs_by_mvs(&ids)?;
    if a.json {
        let v = render::mv_json(system, &objects, &connectors);
        outln!(
            "{}",
            serde_json::to_string_pretty(&v).context("cannot encode metaverse objects")?
        );
        return Ok(Code::Ok);
    }
    match page {
        Some(page) => {
            if !objects.is_empty() || a.offset == 0 {
                out!("{}", render::mv(system, &objects, &connectors));
            }
            out!("{}", page.footer("objects"));
        }
        None if objects.is_empty() => outln!("{missing}"),
        None => out!("{}", render::mv(system, &objects, &connectors)),
    }
    Ok(Code::Ok)
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}
