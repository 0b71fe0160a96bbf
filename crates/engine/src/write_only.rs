//! Write-only attributes (passwords) and sealed ones, per MA: what each
//! step does with them. Never in clear text in the store:
//!
//! * import: a write-only attribute is never read (whatever the system
//!   returns, a hashed `userPassword` included, is dropped, and the
//!   connector space's "set" marker stands for it, so a confirming import
//!   compares nothing); a sealed attribute's values are sealed before
//!   they are staged (a source's passwords).
//! * sync: an export flow to a write-only attribute flows only when the
//!   object is provisioned (unless `on_change`), its value sealed; without
//!   a value and with a policy, a placeholder asks the export to generate.
//! * export: the sealed value is opened (or the password generated) in
//!   memory as the change is sent; what the store keeps of it once sent
//!   is a marker (when, and a tag to notice a changed flowed value).

use crate::secrets::{Secrets, generate};
use autosync_connector::{ExportChange, ImportedObject};
use autosync_model::secret::{self, Secret};
use autosync_model::{
    AttrChanges, CsObject, ExportKind, MaDef, PendingExport, Value, WriteOnlyDef,
};

/// One MA's write-only and sealed attributes.
#[derive(Default)]
pub(crate) struct WriteOnly {
    attrs: Vec<(String, WriteOnlyDef)>,
    sealed: Vec<String>,
}

impl WriteOnly {
    /// The MA's declarations, with its connector type's write-only
    /// attributes (declared or not).
    pub fn of(def: &MaDef, connector_defaults: &[&str]) -> WriteOnly {
        let mut attrs: Vec<(String, WriteOnlyDef)> = def
            .write_only
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for d in connector_defaults {
            if !attrs.iter().any(|(a, _)| a.eq_ignore_ascii_case(d)) {
                attrs.push(((*d).to_owned(), WriteOnlyDef::default()));
            }
        }
        WriteOnly {
            attrs,
            sealed: def.sealed.clone(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.attrs.is_empty() && self.sealed.is_empty()
    }

    /// The declaration of `attr`, when it is write-only.
    pub fn get(&self, attr: &str) -> Option<&WriteOnlyDef> {
        self.attrs
            .iter()
            .find(|(a, _)| a.eq_ignore_ascii_case(attr))
            .map(|(_, d)| d)
    }

    fn is_sealed(&self, attr: &str) -> bool {
        self.sealed.iter().any(|a| a.eq_ignore_ascii_case(attr))
    }

    /// An imported object as it is staged: write-only attributes dropped,
    /// sealed ones sealed.
    pub fn on_import(&self, secrets: &Secrets, obj: &mut ImportedObject) -> Result<(), String> {
        if self.is_empty() {
            return Ok(());
        }
        obj.attributes.retain(|a, _| self.get(a).is_none());
        obj.values.retain(|a, _| self.get(a).is_none());
        for (name, v) in obj.attributes.iter_mut() {
            if self.is_sealed(name) {
                seal_all(secrets, v)?;
            }
        }
        for (name, d) in obj.values.iter_mut() {
            if self.is_sealed(name) {
                for v in d.add.iter_mut().chain(d.remove.iter_mut()) {
                    seal_all(secrets, v)?;
                }
            }
        }
        Ok(())
    }

    /// `attrs` (what an import read of `cs`) with the markers of what was
    /// set: the unconfirmed export's, else the hologram's.
    pub fn with_markers(&self, cs: &CsObject, attrs: &mut autosync_model::Attributes) {
        for (name, _) in &self.attrs {
            let unconfirmed = cs
                .unconfirmed_export
                .as_ref()
                .and_then(|u| find(&u.changes, name))
                .and_then(|(k, v)| Some((k, v.as_ref()?)));
            let held = unconfirmed.or_else(|| {
                cs.hologram
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
            });
            if let Some((k, v)) = held {
                attrs.insert(k.clone(), v.clone());
            }
        }
    }

    /// A flowed value of write-only attribute `attr` as it is staged:
    /// sealed (a value already sealed, a source's, stays as it is).
    pub fn sealed_value(&self, secrets: &Secrets, v: Value) -> Result<Value, String> {
        match secret::classify(&v) {
            Some(Secret::Sealed { .. }) => Ok(v),
            Some(_) => Err("the value is a write-only marker, not a value".into()),
            None => secrets.seal(&v.to_text()),
        }
    }

    /// A new object's write-only values (`changes`, the flows' values of
    /// an add of `object_type`): sealed, or the placeholder of a generated
    /// one where no flow gave a value.
    pub fn initial(
        &self,
        secrets: &Secrets,
        object_type: &str,
        changes: &mut AttrChanges,
    ) -> Result<(), String> {
        for (name, def) in &self.attrs {
            let key = changes
                .keys()
                .find(|k| k.eq_ignore_ascii_case(name))
                .cloned();
            match key {
                Some(k) => {
                    if let Some(Some(v)) = changes.remove(&k) {
                        changes.insert(k, Some(self.sealed_value(secrets, v)?));
                    }
                }
                None => {
                    let for_type = def.object_types.is_empty()
                        || def.object_types.iter().any(|t| t == object_type);
                    if def.generate.is_some() && for_type {
                        changes.insert(name.clone(), Some(secret::generate()));
                    }
                }
            }
        }
        Ok(())
    }

    /// `change` as it is sent: each write-only value opened or generated
    /// (a marker, which is nothing to send, dropped). The error names the
    /// attribute, never the value.
    pub fn reveal(&self, secrets: &Secrets, change: &mut ExportChange) -> Result<(), String> {
        if self.attrs.is_empty() || change.kind == ExportKind::Delete {
            return Ok(());
        }
        let names: Vec<String> = change
            .changes
            .keys()
            .filter(|k| self.get(k).is_some())
            .cloned()
            .collect();
        for k in names {
            let Some(Some(v)) = change.changes.get(&k) else {
                continue;
            };
            let clear = match secret::classify(v) {
                Some(Secret::Sealed { .. }) => {
                    Some(secrets.open(v).map_err(|e| format!("`{k}`: {e}"))?)
                }
                Some(Secret::Generate) => {
                    let policy = self
                        .get(&k)
                        .and_then(|d| d.generate.clone())
                        .unwrap_or_default();
                    Some(generate(&policy).map_err(|e| format!("`{k}`: {e}"))?)
                }
                Some(Secret::Set { .. }) => None,
                None => continue,
            };
            match clear {
                Some(c) => change.changes.insert(k, Some(Value::String(c))),
                None => change.changes.remove(&k),
            };
        }
        Ok(())
    }

    /// A pending export once sent: each write-only value replaced by the
    /// marker of its setting at `now`.
    pub fn sent(&self, p: &mut PendingExport, now: &str) {
        if self.attrs.is_empty() {
            return;
        }
        for (k, v) in p.changes.iter_mut() {
            if self.get(k).is_none() {
                continue;
            }
            if let Some(v) = v {
                let tag = match secret::classify(v) {
                    Some(Secret::Sealed { tag, .. }) => tag.to_owned(),
                    Some(Secret::Set { .. }) => continue,
                    Some(Secret::Generate) => secret::GENERATED_TAG.to_owned(),
                    // Clear text (never staged by sync): no tag to keep.
                    None => "-".to_owned(),
                };
                *v = secret::set_marker(now, &tag);
            }
        }
    }
}

fn find<'a, V>(
    map: &'a std::collections::BTreeMap<String, V>,
    name: &str,
) -> Option<(&'a String, &'a V)> {
    map.iter().find(|(k, _)| k.eq_ignore_ascii_case(name))
}

/// `v` sealed, each value of a list on its own.
fn seal_all(secrets: &Secrets, v: &mut Value) -> Result<(), String> {
    match v {
        Value::Multi(vs) => {
            for x in vs {
                seal_all(secrets, x)?;
            }
            Ok(())
        }
        x if secret::classify(x).is_some() || x.is_empty() => Ok(()),
        x => {
            *x = secrets.seal(&x.to_text())?;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use autosync_connector::ImportChange;
    use autosync_model::PasswordPolicy;

    fn ma() -> MaDef {
        let mut def = MaDef::retired("dir");
        def.write_only.insert(
            "userPassword".into(),
            WriteOnlyDef {
                generate: Some(PasswordPolicy::default()),
                object_types: vec!["person".into()],
                on_change: false,
            },
        );
        def
    }

    #[test]
    fn an_import_should_drop_write_only_values_and_seal_sealed_ones() {
        let mut def = ma();
        def.sealed.push("password".into());
        let w = WriteOnly::of(&def, &["unicodePwd"]);
        let s = Secrets::in_memory();
        let mut obj = ImportedObject {
            anchor: "a".into(),
            dn: "a".into(),
            object_type: "person".into(),
            attributes: [
                ("userpassword".to_owned(), Value::from("{SSHA}x")),
                ("unicodePwd".to_owned(), Value::from("y")),
                ("password".to_owned(), Value::from("hunter2")),
                ("cn".to_owned(), Value::from("A")),
            ]
            .into(),
            values: Default::default(),
            change: ImportChange::Full,
        };
        w.on_import(&s, &mut obj).unwrap();
        assert_eq!(obj.attributes.len(), 2);
        let sealed = &obj.attributes["password"];
        assert_eq!(s.open(sealed).unwrap(), "hunter2");
        assert_eq!(obj.attributes["cn"], Value::from("A"));
    }

    #[test]
    fn a_new_object_should_get_a_sealed_value_or_a_placeholder_and_send_it_clear() {
        let w = WriteOnly::of(&ma(), &[]);
        let s = Secrets::in_memory();
        let mut flowed: AttrChanges =
            [("userPassword".to_owned(), Some(Value::from("pw1")))].into();
        w.initial(&s, "person", &mut flowed).unwrap();
        let v = flowed["userPassword"].clone().unwrap();
        assert!(!v.to_text().contains("pw1"));
        let mut none = AttrChanges::new();
        w.initial(&s, "group", &mut none).unwrap();
        assert!(none.is_empty(), "the policy is for people only");
        w.initial(&s, "person", &mut none).unwrap();
        assert_eq!(none["userPassword"], Some(secret::generate()));

        let mut change = ExportChange {
            kind: ExportKind::Add,
            object_type: "person".into(),
            anchor: "a".into(),
            dn: "a".into(),
            new_dn: None,
            changes: flowed.clone(),
            values: Default::default(),
        };
        w.reveal(&s, &mut change).unwrap();
        assert_eq!(change.changes["userPassword"], Some(Value::from("pw1")));
        change.changes = none;
        w.reveal(&s, &mut change).unwrap();
        let generated = change.changes["userPassword"].clone().unwrap().to_text();
        assert_eq!(generated.len(), 20);

        let mut p = PendingExport {
            kind: ExportKind::Add,
            changes: flowed,
            new_dn: None,
            values: Default::default(),
        };
        w.sent(&mut p, "2024-05-01T10:00:00Z");
        let marker = p.changes["userPassword"].clone().unwrap();
        assert_eq!(secret::shown(&marker), Some("(write-only, set)"));
        assert_eq!(secret::tag(&marker), secret::tag(&v));
    }
}
