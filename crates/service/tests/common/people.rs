//! The quickstart without its groups, for the tests of the service and
//! the CLI that need its people alone (included by path in each test
//! binary that uses it).

/// The quickstart's configuration without its groups: the `groups` source
/// and the `app-groups` target (cut at their section comments), the
/// `group` metaverse type, and the directory's group lines (each one line
/// naming `"group"`).
pub fn without_groups(config: &str) -> String {
    let cut = |text: &str, from: &str, to: &str| -> String {
        let a = text
            .find(from)
            .unwrap_or_else(|| panic!("the quickstart has no `{from}`"));
        let b = text
            .find(to)
            .unwrap_or_else(|| panic!("the quickstart has no `{to}`"));
        assert!(a < b, "`{from}` comes after `{to}` in the quickstart");
        format!("{}{}", &text[..a], &text[b..])
    };
    let text = cut(
        config,
        "# --- Source: groups",
        "# --- Target: the application's user table",
    );
    let text = cut(
        &text,
        "# --- Target: the application's group table",
        "# --- Target: the directory",
    );
    let text = cut(&text, "[metaverse.group]", "# --- Source: the HR export");
    let kept: Vec<&str> = text.lines().filter(|l| !l.contains("\"group\"")).collect();
    kept.join("\n") + "\n"
}
