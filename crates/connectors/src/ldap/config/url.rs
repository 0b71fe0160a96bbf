//! The `url` setting: which transport it names, and what is wrong with it
//! (shown without its userinfo or query, which may hold a secret).

use super::Transport;
use crate::ldap::discovery::shown_url;

/// The transport `url` names, and the problem with it (the transport is
/// then `Plain`, a placeholder: the settings are refused).
pub(super) fn transport_of(url: &str) -> (Transport, Option<String>) {
    let Some((scheme, rest)) = url.split_once("://") else {
        return (
            Transport::Plain,
            Some(format!(
                "`{}` is not a URL: write e.g. ldaps://{}",
                shown_url(url),
                shown_url(url)
            )),
        );
    };
    match scheme.to_ascii_lowercase().as_str() {
        "ldap" | "ldaps" if rest.trim_end_matches('/').is_empty() => (
            Transport::Plain,
            Some(format!("`{}` names no host", shown_url(url))),
        ),
        "ldap" | "ldaps" => match port_problem(rest) {
            Some(why) => (
                Transport::Plain,
                Some(format!("`{}`: {why}", shown_url(url))),
            ),
            None if scheme.eq_ignore_ascii_case("ldaps") => (Transport::Tls, None),
            None => (Transport::Plain, None),
        },
        "ldapi" => (Transport::Socket, None),
        other => (
            Transport::Plain,
            Some(format!(
                "`{other}://` is not an LDAP URL: use ldap://, ldaps:// or ldapi://"
            )),
        ),
    }
}

/// What is wrong with the port of an `ldap://` or `ldaps://` URL's
/// `host[:port][/...]` (`None`: no port, or a good one): a port that is
/// none would pass for a server that is down at every run.
fn port_problem(rest: &str) -> Option<String> {
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    // After a userinfo part (`user:password@host`).
    let authority = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let port = match authority.rsplit_once(']') {
        // `[::1]:389`
        Some((_, after)) => after.strip_prefix(':')?,
        None => authority.rsplit_once(':')?.1,
    };
    match port.parse::<u16>() {
        Ok(p) if p > 0 => None,
        _ => Some(format!("`{port}` is not a port (a number from 1 to 65535)")),
    }
}
