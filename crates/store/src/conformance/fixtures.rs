//! Small object builders for the suite's checks (and the store's own
//! tests).

use autosync_model::{
    Attributes, Connection, CsObject, ErrorStage, ExportKind, ImportKind, MvObject, MvValue,
    ObjectError, PendingExport, PendingImport, Value,
};

pub fn attrs(pairs: &[(&str, &str)]) -> Attributes {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Value::from(*v)))
        .collect()
}

pub fn cs(ma: &str, anchor: &str) -> CsObject {
    let mut o = CsObject::new(ma, anchor, &format!("cn={anchor}"), "person");
    o.present = true;
    o.hologram = attrs(&[("name", anchor)]);
    o
}

pub fn with_pending_import(mut o: CsObject) -> CsObject {
    o.pending_import = Some(PendingImport {
        values: Default::default(),
        kind: ImportKind::Update,
        attributes: attrs(&[("name", "new")]),
        dn: None,
        object_type: None,
    });
    o
}

pub fn with_pending_export(mut o: CsObject) -> CsObject {
    o.pending_export = Some(PendingExport {
        values: Default::default(),
        kind: ExportKind::Update,
        changes: [("name".to_owned(), Some(Value::from("x")))]
            .into_iter()
            .collect(),
        new_dn: None,
    });
    o
}

pub fn with_unconfirmed_export(mut o: CsObject) -> CsObject {
    o.unconfirmed_export = Some(PendingExport {
        values: Default::default(),
        kind: ExportKind::Add,
        changes: Default::default(),
        new_dn: None,
    });
    o
}

pub fn with_error(mut o: CsObject) -> CsObject {
    o.error = Some(ObjectError {
        stage: ErrorStage::Sync,
        error_type: "ambiguous-join".into(),
        detail: "two matches".into(),
        run_id: None,
    });
    o
}

pub fn joined(mut o: CsObject, mv_id: i64) -> CsObject {
    o.connection = Connection::Connector { mv_id };
    o
}

pub fn mv(object_type: &str, pairs: &[(&str, Value)]) -> MvObject {
    let mut m = MvObject::new(object_type);
    for (k, v) in pairs {
        m.attributes.insert(
            (*k).to_owned(),
            MvValue {
                value: v.clone(),
                contributor: "hr".into(),
            },
        );
    }
    m
}
