//! The shared functions as Rhai functions, registered once on each script
//! engine under the names the expression language uses, so that
//! `regex_match(attr("mail"), "@contoso\\.com$")` means the same in a script
//! as in an expression. Arguments and results convert as attributes do
//! (`()` is absent); an error stops the script with the function's message.

use super::{Call, MAX_ARGS, Shared};
use crate::functions::shared_functions;
use crate::script::{from_dynamic, to_dynamic};
use autosync_model::Value;
use rhai::{Dynamic, Engine, EvalAltResult};

/// Register every shared function, once for each number of arguments it
/// takes.
pub(crate) fn register(engine: &mut Engine) {
    for (shared, name, min, max) in shared_functions() {
        for arity in min..=max.min(MAX_ARGS) {
            match arity {
                1 => {
                    engine.register_fn(name, move |a: Dynamic| run(shared, name, [a]));
                }
                2 => {
                    engine.register_fn(name, move |a: Dynamic, b: Dynamic| {
                        run(shared, name, [a, b])
                    });
                }
                3 => {
                    engine.register_fn(name, move |a: Dynamic, b: Dynamic, c: Dynamic| {
                        run(shared, name, [a, b, c])
                    });
                }
                _ => {}
            }
        }
    }
}

fn run<const N: usize>(
    shared: Shared,
    name: &'static str,
    args: [Dynamic; N],
) -> Result<Dynamic, Box<EvalAltResult>> {
    let mut values: [Option<Value>; N] = [const { None }; N];
    for (slot, arg) in values.iter_mut().zip(args) {
        *slot = from_dynamic(arg, "an argument").map_err(|e| format!("{name}: {}", e.message))?;
    }
    let refs = values.each_ref().map(Option::as_ref);
    let call = Call {
        name,
        args: &refs,
        prepared: None,
    };
    match shared.call(&call) {
        Ok(Some(v)) => Ok(to_dynamic(&v)),
        Ok(None) => Ok(Dynamic::UNIT),
        Err(e) => Err(e.message.into()),
    }
}
