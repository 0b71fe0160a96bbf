//! The expression layer of autosync: the small expression language used by
//! attribute flows, join conditions, filters and provisioning rules, and
//! sandboxed Rhai scripts for anything more. Both compile once to a
//! [`Program`] and evaluate per object against a [`Lookup`] of attributes.
//!
//! The language is described in the book: docs/src/reference/expressions.md.
//!
//! ```
//! use autosync_expr::compile_expr;
//! use autosync_model::{Attributes, Value};
//!
//! let program = compile_expr(r#"lower(first_name + "." + last_name)"#).unwrap();
//! let mut person = Attributes::new();
//! person.insert("first_name".into(), Value::from("Ada"));
//! person.insert("last_name".into(), Value::from("Lovelace"));
//! assert_eq!(program.eval(&person).unwrap(), Some(Value::from("ada.lovelace")));
//! ```

mod ast;
mod builtins;
mod error;
mod eval;
mod functions;
mod hook;
mod lexer;
mod lookups;
mod parser;
mod program;
mod rule_script;
mod script;
mod script_scan;
mod shared;

pub use error::{CompileError, EvalError};
pub use functions::function_names;
pub use hook::{HookScript, compile_hook};
pub use lookups::{Context, FoundMv, MAX_LOOKUPS, Metaverse, MvConnector};
pub use program::{Lookup, Program, compile_expr, compile_script, compile_source};
pub use rule_script::{Arg, RuleScript, compile_rule_script};
pub use script::ScriptLimits;
