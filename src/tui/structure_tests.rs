//! Keeps the explorer's layering: widgets draw the view-model (`state`) and never reach the
//! state's owner, the reducer or the effects; no module of `tui` imports the CLI; and the
//! modules of `tui` import each other without a cycle. Reads the sources, so it fails the
//! moment an import breaks the rule.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The modules of `src/tui` and the sibling modules each one names.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/tui");
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("src/tui").flatten() {
        let p = entry.path();
        let name = p.file_stem().unwrap().to_string_lossy().into_owned();
        if p.extension().is_some_and(|e| e == "rs") && name != "mod" && !name.ends_with("_tests") {
            files.push((name, p));
        } else if p.is_dir() && name == "widgets" {
            for w in std::fs::read_dir(&p).expect("widgets").flatten() {
                let wp = w.path();
                if wp.extension().is_some_and(|e| e == "rs") {
                    files.push(("widgets".into(), wp));
                }
            }
        }
    }
    let modules: BTreeSet<String> = files.iter().map(|(n, _)| n.clone()).collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (name, path) in &files {
        let text = std::fs::read_to_string(path).expect("read source");
        let in_widgets = path.parent().is_some_and(|d| d.ends_with("widgets"));
        let edges = graph.entry(name.clone()).or_default();
        for target in named_modules(&text, in_widgets) {
            if (modules.contains(&target) && target != *name) || target == "cli" {
                edges.insert(target);
            }
        }
    }
    graph
}

/// The `tui` modules (and `cli`) a source file names in its code, not counting comments and
/// its own test module.
fn named_modules(text: &str, in_widgets: bool) -> Vec<String> {
    let code = text.split("#[cfg(test)]").next().unwrap_or(text);
    let mut out = Vec::new();
    for line in code.lines() {
        let line = line.split("//").next().unwrap_or("");
        let prefixes: &[&str] = if in_widgets {
            &["crate::tui::", "super::super::", "crate::"]
        } else {
            &["crate::tui::", "super::", "crate::"]
        };
        for prefix in prefixes {
            let mut rest = line;
            while let Some(at) = rest.find(prefix) {
                rest = &rest[at + prefix.len()..];
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if *prefix == "crate::" {
                    if name == "cli" {
                        out.push(name);
                    }
                } else if !name.is_empty() {
                    out.push(name);
                }
            }
        }
        // `use super::{a, b}` / `use crate::tui::{a, b}`.
        let braces: &[&str] = if in_widgets {
            &["super::super::{", "crate::tui::{"]
        } else {
            &["super::{", "crate::tui::{"]
        };
        for prefix in braces {
            if let Some(at) = line.find(prefix) {
                let inner = &line[at + prefix.len()..];
                for part in inner.split([',', '}']) {
                    let name: String = part
                        .trim()
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    if !name.is_empty() {
                        out.push(name);
                    }
                }
            }
        }
    }
    out
}

#[test]
fn widgets_depend_on_the_view_model_not_on_the_app() {
    let g = graph();
    let allowed: BTreeSet<&str> = ["state", "layout", "keymap"].into();
    let bad: Vec<&String> = g["widgets"]
        .iter()
        .filter(|m| !allowed.contains(m.as_str()))
        .collect();
    assert!(
        bad.is_empty(),
        "widgets import {bad:?}; they may use only {allowed:?}"
    );
    // The view-model itself depends on nothing else in the explorer.
    let state: Vec<&String> = g["state"].iter().collect();
    assert!(state.is_empty(), "state imports {state:?}");
}

#[test]
fn the_explorer_does_not_import_the_command_line() {
    let g = graph();
    let bad: Vec<&String> = g
        .iter()
        .filter(|(_, deps)| deps.contains("cli"))
        .map(|(m, _)| m)
        .collect();
    assert!(bad.is_empty(), "{bad:?} import crate::cli");
}

#[test]
fn tui_modules_import_each_other_without_a_cycle() {
    let g = graph();
    // Depth-first search with colours: reaching a grey node again is a cycle.
    fn visit(
        n: &str,
        g: &BTreeMap<String, BTreeSet<String>>,
        colour: &mut BTreeMap<String, u8>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        colour.insert(n.to_string(), 1);
        path.push(n.to_string());
        for m in g
            .get(n)
            .into_iter()
            .flatten()
            .filter(|m| g.contains_key(*m))
        {
            match colour.get(m.as_str()).copied().unwrap_or(0) {
                1 => {
                    let at = path.iter().position(|p| p == m).unwrap_or(0);
                    let mut cycle = path[at..].to_vec();
                    cycle.push(m.clone());
                    return Some(cycle);
                }
                0 => {
                    if let Some(c) = visit(m, g, colour, path) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        path.pop();
        colour.insert(n.to_string(), 2);
        None
    }
    let mut colour = BTreeMap::new();
    for n in g.keys() {
        if colour.get(n.as_str()).copied().unwrap_or(0) == 0 {
            if let Some(cycle) = visit(n, &g, &mut colour, &mut Vec::new()) {
                panic!("import cycle in src/tui: {}", cycle.join(" → "));
            }
        }
    }
}

#[test]
fn the_checks_see_imports() {
    // The parser itself: a widget importing the reducer is seen, as are braces and paths.
    let seen = named_modules(
        "use crate::tui::explorer::Explorer;\nuse super::{keys, state::X};\n// use super::view;\nlet x = crate::cli::Cli;",
        false,
    );
    assert!(seen.contains(&"explorer".to_string()), "{seen:?}");
    assert!(seen.contains(&"keys".to_string()), "{seen:?}");
    assert!(seen.contains(&"state".to_string()), "{seen:?}");
    assert!(seen.contains(&"cli".to_string()), "{seen:?}");
    assert!(!seen.contains(&"view".to_string()), "{seen:?}");
    let widget = named_modules("use super::{clip, fmt2};\nuse crate::tui::app::App;", true);
    assert_eq!(widget, vec!["app".to_string()]);
}
