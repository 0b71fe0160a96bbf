//! Definitions: what a validated configuration describes. The `config` crate
//! reads TOML into these types (their serde form *is* the TOML form) and
//! checks them; the engine and the controller only read them.
//!
//! TOML shape (abridged):
//!
//! ```toml
//! [store]
//! path = "state/autosync.db"
//!
//! [metaverse.person]
//! attributes = ["employeeId", "displayName", "email"]
//! precedence = { email = ["directory", "hr"] }   # ranked; or "equal"
//! ordered = ["postalAddressLines"]               # values compared in order
//!
//! [[ma]]
//! name = "hr"
//! connector = { type = "csv", path = "data/hr.csv" }
//! object_types = [{ name = "person", anchor = "employee_id" }]
//! join = [{ on = [{ cs = "employee_id", mv = "employeeId" }] }]
//! projection = [{ mv_type = "person" }]
//! import_flows = [{ mv = "email", expr = "lower(email)" }]
//! ```

use crate::run::StepType;
use crate::threshold::{DeletionThreshold, StagingThresholds};
use crate::value::Value;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The variables each kind of rules script reads besides `attrs` (the
/// attributes of the object it is about) and `mv`; any other name is a
/// compile error.
pub mod script_variables {
    /// A join rule's `resolve`: the metaverse objects the conditions found,
    /// each `#{ id, object_type, attrs }`.
    pub const JOIN_RESOLVE: &[&str] = &["candidates"];
    /// A provisioning rule's `script`: the metaverse object's id (0 while
    /// it is being projected).
    pub const PROVISIONING: &[&str] = &["id"];
    /// An MA's `deprovisioning_script`: the connector (`#{ ma, anchor, dn,
    /// object_type, provisioned }`) and why (`"mv-deleted"`,
    /// `"out-of-scope"`).
    pub const DEPROVISIONING: &[&str] = &["cs", "reason"];
    /// A metaverse type's deletion script: the object's id, the connector
    /// leaving and the remaining connectors (each `#{ ma, anchor, dn,
    /// object_type }`).
    pub const MV_DELETION: &[&str] = &["id", "leaving", "connectors"];
}

/// The whole system: store, metaverse schema and management agents.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystemDef {
    #[serde(default)]
    pub store: StoreDef,
    #[serde(default)]
    pub metaverse: BTreeMap<String, MvTypeDef>,
    #[serde(default, rename = "ma")]
    pub mas: Vec<MaDef>,
    /// Controller settings (the `autosync run` service). Kept as raw TOML-ish
    /// data here; the controller crate owns its typed form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller: Option<serde_json::Value>,
    /// Folder of the configuration file; relative paths resolve against it.
    #[serde(skip)]
    pub base_dir: PathBuf,
}

impl SystemDef {
    pub fn ma(&self, name: &str) -> Option<&MaDef> {
        self.mas.iter().find(|m| m.name == name)
    }
}

/// Where the engine keeps its state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreDef {
    /// `sqlite` (the embedded default).
    #[serde(default = "default_store_kind")]
    pub kind: String,
    /// For sqlite: the database file (relative to the config file's folder).
    #[serde(default = "default_store_path")]
    pub path: PathBuf,
}

fn default_store_kind() -> String {
    "sqlite".into()
}
fn default_store_path() -> PathBuf {
    PathBuf::from("autosync.db")
}

impl Default for StoreDef {
    fn default() -> Self {
        StoreDef {
            kind: default_store_kind(),
            path: default_store_path(),
        }
    }
}

/// One metaverse object type.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MvTypeDef {
    /// The attributes of this type. Flows may only target these.
    pub attributes: Vec<String>,
    /// Per attribute: `"equal"` or a ranked list of MA names (highest first).
    /// Attributes not listed are ranked in the order MAs appear in the file.
    #[serde(default)]
    pub precedence: BTreeMap<String, PrecedenceDef>,
    /// When an MV object of this type is deleted.
    #[serde(default)]
    pub deletion: DeletionRule,
    /// Multi-valued attributes whose order counts (e.g. address lines):
    /// their values compare as sequences. Every other multi-valued
    /// attribute is a set, as in MIM: order and repeated values do not
    /// count when an export is confirmed or a change is detected.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ordered: Vec<String>,
    /// Attributes that hold references to other metaverse objects (a
    /// manager, a group's members), each with the metaverse type it refers
    /// to, or `"any"`. Single- or multi-valued, like any attribute.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub references: BTreeMap<String, String>,
}

/// What a metaverse reference attribute may refer to when its declared
/// type is this.
pub const ANY_TYPE: &str = "any";

/// Precedence of one metaverse attribute.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PrecedenceDef {
    /// Highest-ranked MA first; the highest-ranked MA that has a value wins.
    Ranked(Vec<String>),
    /// `"equal"`: the last writer wins.
    Equal(EqualPrecedence),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EqualPrecedence {
    Equal,
}

/// The metaverse object deletion rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "kebab-case", deny_unknown_fields)]
pub enum DeletionRule {
    /// Delete the MV object when its last connector from an authoritative MA
    /// is removed (with several, it waits for the last of them). `mas`
    /// defaults to the MAs that project this type.
    LastAuthoritativeConnector {
        #[serde(default)]
        mas: Vec<String>,
    },
    /// Delete the MV object when a connector from any of `mas` is removed
    /// (deleted in its system, filtered, or its connector space deleted),
    /// whatever other connectors remain: MIM's "when connector from any of
    /// the following management agents is disconnected". `mas` is required
    /// and not empty.
    AnyConnectorFrom {
        #[serde(default)]
        mas: Vec<String>,
    },
    /// Delete the MV object when its last connector (from any MA) is removed.
    LastConnector,
    /// Never delete MV objects of this type automatically.
    Never,
    /// A script decides (MIM's `ShouldDeleteFromMV`): it reads the MV
    /// object's attributes (`attrs`), the connector leaving (`leaving`) and
    /// the remaining connectors (`connectors`), and returns `true` to delete.
    Script { script: String },
}

impl Default for DeletionRule {
    fn default() -> Self {
        DeletionRule::LastAuthoritativeConnector { mas: Vec::new() }
    }
}

/// One management agent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaDef {
    pub name: String,
    /// Connector type (`type`) and its settings (every other key).
    pub connector: ConnectorDef,
    pub object_types: Vec<ObjectTypeDef>,
    /// Connector filter: CS objects matching a condition stay (filtered)
    /// disconnectors.
    #[serde(default)]
    pub filters: Vec<FilterDef>,
    #[serde(default)]
    pub join: Vec<JoinRuleDef>,
    #[serde(default)]
    pub projection: Vec<ProjectionDef>,
    #[serde(default)]
    pub import_flows: Vec<ImportFlowDef>,
    #[serde(default)]
    pub export_flows: Vec<ExportFlowDef>,
    #[serde(default)]
    pub provisioning: Vec<ProvisioningDef>,
    /// What happens to this MA's connector when its MV object is deleted or
    /// no longer meets the provisioning condition.
    #[serde(default)]
    pub deprovisioning: DeprovisionAction,
    /// A script that decides the deprovisioning action per connector (MIM's
    /// `Deprovision`): it returns `"delete"`, `"disconnect"`,
    /// `"explicit-disconnector"`, or nothing for `deprovisioning`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deprovisioning_script: Option<String>,
    /// Run profiles by name. When absent, `full-import`, `delta-import`,
    /// `full-sync`, `delta-sync` and `export` exist by convention.
    #[serde(default)]
    pub run_profiles: BTreeMap<String, Vec<StepType>>,
    /// Also deprovision connectors that were joined (not created by
    /// provisioning) when their metaverse object no longer meets this MA's
    /// provisioning condition. Off by default: an account that existed
    /// before autosync is never deleted because a rule stopped matching.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deprovision_joined: bool,
    /// An export that would delete more objects than this stops with
    /// `stopped-deletion-threshold-exceeded` until approved or rejected.
    #[serde(default)]
    pub export_deletion_threshold: DeletionThreshold,
    /// What `autosync reject` does to the pending deletes of an export
    /// stopped at the deletion threshold.
    #[serde(default)]
    pub reject_deletions: RejectDeletions,
    /// An import that stages more than these stops before the sync until an
    /// operator approves or rejects (default: deletes over 10% of the
    /// connector space).
    #[serde(default)]
    pub staging_thresholds: StagingThresholds,
    /// An imported value (a string or binary value, one value of a
    /// multi-valued attribute, the DN) larger than this many bytes makes its
    /// object a `value-too-large` import error.
    #[serde(default = "default_max_value_size")]
    pub max_value_size: u64,
    /// Write-only attributes of this MA's objects (passwords), by name
    /// (compared ignoring ASCII case): set on provisioning from an export
    /// flow or generated by a policy, never read back by an import, never
    /// kept in clear text (see `value::secret`). A connector type adds its
    /// own (LDAP: `userPassword`, `unicodePwd`) with default settings.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub write_only: BTreeMap<String, WriteOnlyDef>,
    /// Attributes whose imported values are sealed (encrypted with the
    /// store's key) before they are staged: a source's passwords, which
    /// may only be copied to a target's write-only attribute.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sealed: Vec<String>,
    /// Per-MA controller settings (triggers, follow-ups, thresholds). Raw here;
    /// the controller crate owns the typed form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller: Option<serde_json::Value>,
}

/// How one write-only attribute is set.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriteOnlyDef {
    /// Generate the initial value when no export flow gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generate: Option<PasswordPolicy>,
    /// The object types `generate` is for (every type when empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub object_types: Vec<String>,
    /// Set it again when the value its export flow gives changes (by
    /// default it is set only when the object is provisioned).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub on_change: bool,
}

/// What a generated password is made of: `length` characters drawn from
/// the chosen classes, at least one of each.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordPolicy {
    #[serde(default = "default_password_length")]
    pub length: u32,
    #[serde(default = "yes")]
    pub lower: bool,
    #[serde(default = "yes")]
    pub upper: bool,
    #[serde(default = "yes")]
    pub digits: bool,
    #[serde(default)]
    pub symbols: bool,
}

fn default_password_length() -> u32 {
    20
}
fn yes() -> bool {
    true
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        PasswordPolicy {
            length: default_password_length(),
            lower: true,
            upper: true,
            digits: true,
            symbols: false,
        }
    }
}

impl PasswordPolicy {
    /// The characters of each chosen class (symbols: printable ASCII
    /// punctuation that needs no quoting in LDIF or a shell's quotes).
    pub fn classes(&self) -> Vec<&'static str> {
        let all = [
            (self.lower, "abcdefghijklmnopqrstuvwxyz"),
            (self.upper, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
            (self.digits, "0123456789"),
            (self.symbols, "!#%+,-./:=?@^_~"),
        ];
        all.into_iter()
            .filter(|(on, _)| *on)
            .map(|(_, c)| c)
            .collect()
    }

    /// Why this policy cannot make a password, if it cannot.
    pub fn problem(&self) -> Option<String> {
        let classes = self.classes().len();
        if classes == 0 {
            return Some("the policy chooses no character class".into());
        }
        if self.length < 8 || self.length > 256 {
            return Some(format!("a length of {} is outside 8..=256", self.length));
        }
        if (self.length as usize) < classes {
            return Some(format!(
                "a length of {} cannot hold one character of each of its {classes} classes",
                self.length
            ));
        }
        None
    }
}

/// 1 MiB.
fn default_max_value_size() -> u64 {
    1 << 20
}

impl MaDef {
    /// The definition of an MA that is no longer in the configuration but
    /// still has a connector space: a name and nothing else.
    pub fn retired(name: &str) -> MaDef {
        MaDef {
            name: name.to_owned(),
            connector: ConnectorDef {
                kind: String::new(),
                settings: serde_json::Map::new(),
            },
            object_types: Vec::new(),
            filters: Vec::new(),
            join: Vec::new(),
            projection: Vec::new(),
            import_flows: Vec::new(),
            export_flows: Vec::new(),
            provisioning: Vec::new(),
            deprovisioning: DeprovisionAction::default(),
            deprovisioning_script: None,
            deprovision_joined: false,
            run_profiles: BTreeMap::new(),
            export_deletion_threshold: DeletionThreshold::default(),
            reject_deletions: RejectDeletions::default(),
            staging_thresholds: StagingThresholds::default(),
            max_value_size: default_max_value_size(),
            write_only: BTreeMap::new(),
            sealed: Vec::new(),
            controller: None,
        }
    }

    /// The run profile's steps, including the conventional defaults.
    pub fn profile(&self, name: &str) -> Option<Vec<StepType>> {
        if let Some(steps) = self.run_profiles.get(name) {
            return Some(steps.clone());
        }
        if self.run_profiles.is_empty() {
            return StepType::parse(name).map(|s| vec![s]);
        }
        None
    }

    /// Every run profile name, including the conventional defaults.
    pub fn profile_names(&self) -> Vec<String> {
        if self.run_profiles.is_empty() {
            StepType::ALL
                .iter()
                .map(|s| s.as_str().to_owned())
                .collect()
        } else {
            self.run_profiles.keys().cloned().collect()
        }
    }

    pub fn object_type(&self, name: &str) -> Option<&ObjectTypeDef> {
        self.object_types.iter().find(|t| t.name == name)
    }
}

/// Connector type and settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConnectorDef {
    #[serde(rename = "type")]
    pub kind: String,
    /// Every other key of the `connector` table, for the connector to read.
    #[serde(flatten)]
    pub settings: serde_json::Map<String, serde_json::Value>,
}

/// An object type of a connected system.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectTypeDef {
    pub name: String,
    /// The attribute holding the immutable unique id.
    pub anchor: String,
    /// Attribute used as display key (DN); defaults to the anchor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dn: Option<String>,
    /// Attributes of this object type that refer to other objects, and
    /// how the connected system spells a reference.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub references: BTreeMap<String, CsReferenceDef>,
}

/// How a connected system spells a reference: `"anchor"` or `"dn"`, or a
/// table that also names the referred object's type and MA.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CsReferenceDef {
    By(RefBy),
    Full(CsReferenceSpec),
}

/// The table form of [`CsReferenceDef`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsReferenceSpec {
    pub by: RefBy,
    /// The referred object's type in its MA (any type when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_type: Option<String>,
    /// The MA whose connector space holds the referred objects: this MA
    /// when absent (as in MIM). Another MA lets a source of groups name
    /// the people another source brings (`groups.csv` naming the HR file's
    /// employee ids); on export, the MA whose connectors spell the values
    /// (a groups table naming a users table's usernames).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ma: Option<String>,
}

/// What a reference value holds: the referred object's anchor, or its DN
/// (compared ignoring case).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RefBy {
    Anchor,
    Dn,
}

impl CsReferenceDef {
    pub fn by(&self) -> RefBy {
        match self {
            CsReferenceDef::By(b) => *b,
            CsReferenceDef::Full(s) => s.by,
        }
    }
    pub fn object_type(&self) -> Option<&str> {
        match self {
            CsReferenceDef::By(_) => None,
            CsReferenceDef::Full(s) => s.object_type.as_deref(),
        }
    }
    pub fn ma(&self) -> Option<&str> {
        match self {
            CsReferenceDef::By(_) => None,
            CsReferenceDef::Full(s) => s.ma.as_deref(),
        }
    }
}

/// A computed value: exactly one of `from` (copy an attribute), `constant`,
/// `expr` (the small expression language) or `script` (Rhai, sandboxed).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceDef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub constant: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expr: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<String>,
}

/// The one kind of source a flow names.
#[derive(Clone, Debug, PartialEq)]
pub enum FlowSource<'a> {
    Attribute(&'a str),
    Constant(&'a Value),
    Expression(&'a str),
    Script(&'a str),
}

/// The source among the four keys, or `None` when not exactly one is set
/// (configuration validation rejects that).
pub fn pick_source<'a>(
    from: &'a Option<String>,
    constant: &'a Option<Value>,
    expr: &'a Option<String>,
    script: &'a Option<String>,
) -> Option<FlowSource<'a>> {
    let mut found = Vec::with_capacity(1);
    if let Some(a) = from {
        found.push(FlowSource::Attribute(a));
    }
    if let Some(c) = constant {
        found.push(FlowSource::Constant(c));
    }
    if let Some(e) = expr {
        found.push(FlowSource::Expression(e));
    }
    if let Some(s) = script {
        found.push(FlowSource::Script(s));
    }
    if found.len() == 1 { found.pop() } else { None }
}

impl SourceDef {
    pub fn source(&self) -> Option<FlowSource<'_>> {
        pick_source(&self.from, &self.constant, &self.expr, &self.script)
    }
}

/// Keeps matching CS objects as filtered disconnectors. Exactly one of
/// `condition` and `script`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterDef {
    #[serde(default)]
    pub object_type: Option<String>,
    /// An expression over CS attributes; true means "filter out".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    /// A script over CS attributes (MIM's `FilterForDisconnection`); true
    /// means "filter out".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<String>,
}

/// One join rule: all its conditions must match one MV object.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinRuleDef {
    /// Defaults to the MA's only object type.
    #[serde(default)]
    pub object_type: Option<String>,
    /// Defaults to the metaverse's only type.
    #[serde(default)]
    pub mv_type: Option<String>,
    pub on: Vec<JoinCondition>,
    /// Compare strings exactly in every condition. Off by default: joins
    /// ignore case, as MIM's do (`E10001` joins `e10001`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub case_sensitive: bool,
    /// A script that picks one of the metaverse objects the conditions
    /// found, or none (MIM's `ResolveJoinSearch`): it reads the CS object
    /// (`attrs`) and the candidates (`candidates`), and returns the chosen
    /// one's `id`, or nothing to try the next join rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolve: Option<String>,
}

/// The CS value (attribute `cs`, or expression `expr`) must equal the MV
/// value (attribute `mv`, or expression `mv_expr` over MV attributes).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinCondition {
    /// CS attribute to match (or use `expr`).
    #[serde(default)]
    pub cs: Option<String>,
    /// Expression over CS attributes to match.
    #[serde(default)]
    pub expr: Option<String>,
    /// Script over CS attributes to match (MIM's `MapAttributesForJoin`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<String>,
    /// MV attribute to match (or use `mv_expr`).
    #[serde(default)]
    pub mv: Option<String>,
    /// Expression over MV attributes to match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mv_expr: Option<String>,
}

/// Projection: a disconnector that joins nothing creates an MV object.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectionDef {
    #[serde(default)]
    pub object_type: Option<String>,
    #[serde(default)]
    pub mv_type: Option<String>,
    /// Optional condition over CS attributes.
    #[serde(default)]
    pub condition: Option<String>,
    /// A script over CS attributes (MIM's `ShouldProjectToMV`): `true`
    /// projects as `mv_type`, a string projects as that metaverse type,
    /// `false` or nothing does not project.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<String>,
}

/// Inbound attribute flow: CS → MV attribute `mv`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportFlowDef {
    #[serde(default)]
    pub object_type: Option<String>,
    #[serde(default)]
    pub mv_type: Option<String>,
    pub mv: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub constant: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expr: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<String>,
}

/// Outbound attribute flow: MV → CS attribute `cs`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportFlowDef {
    #[serde(default)]
    pub object_type: Option<String>,
    #[serde(default)]
    pub mv_type: Option<String>,
    pub cs: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub constant: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expr: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<String>,
    /// Flow only when the object is provisioned (MIM's "initial flow only").
    #[serde(default)]
    pub initial_only: bool,
}

impl ImportFlowDef {
    /// The flow's source; `None` when not exactly one is set.
    pub fn source(&self) -> Option<FlowSource<'_>> {
        pick_source(&self.from, &self.constant, &self.expr, &self.script)
    }
}

impl ExportFlowDef {
    /// The flow's source; `None` when not exactly one is set.
    pub fn source(&self) -> Option<FlowSource<'_>> {
        pick_source(&self.from, &self.constant, &self.expr, &self.script)
    }
}

/// Provisioning: creates a CS object on this MA for MV objects of `mv_type`
/// that meet `condition`, and removes it (per `deprovisioning`) when they no
/// longer do.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProvisioningDef {
    #[serde(default)]
    pub mv_type: Option<String>,
    #[serde(default)]
    pub object_type: Option<String>,
    /// Expression over MV attributes; absent means always.
    #[serde(default)]
    pub condition: Option<String>,
    /// The anchor of the new object: an expression over MV attributes.
    /// Required unless `script` gives it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anchor: Option<String>,
    /// The display key (DN) of the new object; a change is a rename.
    /// Defaults to the anchor.
    #[serde(default)]
    pub dn: Option<String>,
    /// When an attribute the condition reads has no value: `keep` (the
    /// default) leaves the object as it is (nothing provisioned, nothing
    /// deprovisioned); `evaluate` lets the condition decide with the value
    /// absent.
    #[serde(default, skip_serializing_if = "WhenAbsent::is_keep")]
    pub when_absent: WhenAbsent,
    /// Join an existing disconnector with the new object's anchor instead
    /// of reporting `object-already-exists` (MIM's behaviour, the default).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub adopt: bool,
    /// A script over MV attributes that decides (MIM's `Provision`), after
    /// `condition` if any: `true` provisions as the other keys say, a map
    /// (`#{ anchor, dn, object_type }`) one object, an array of maps
    /// several objects (each known by its anchor), `false` or an empty
    /// array none (out of scope), and nothing keeps what is there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<String>,
}

/// How a provisioning condition treats an attribute without a value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WhenAbsent {
    /// The condition is undecided: keep what is there.
    #[default]
    Keep,
    /// Evaluate the condition with the attribute absent.
    Evaluate,
}

impl WhenAbsent {
    pub fn is_keep(&self) -> bool {
        *self == WhenAbsent::Keep
    }
}

/// What `autosync reject MA` does to the pending export deletes that
/// stopped an export at the deletion threshold.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RejectDeletions {
    /// Drop each delete; the object stays in the connected system and goes
    /// through its MA's join rules again at that MA's next sync (it joins
    /// its metaverse object again if that still exists).
    #[default]
    ReEvaluate,
    /// Drop each delete and make the object an explicit disconnector: it
    /// stays in the connected system and is never joined again.
    ExplicitDisconnector,
}

/// What deprovisioning does to a connector.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeprovisionAction {
    /// Stage an export delete in the connected system.
    Delete,
    /// Disconnect it (it may join again later).
    #[default]
    Disconnect,
    /// Make it an explicit disconnector (never joined again).
    ExplicitDisconnector,
}
