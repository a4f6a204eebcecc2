//! The layers of ARCHITECTURE.md, checked: each module imports only the layers below it.

use std::path::Path;

/// Every `crate::<module>` a file under `src/<dir>` names, with the file.
fn imports(dir: &str) -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = Vec::new();
    let mut stack = vec![root.join(dir)];
    if !stack[0].is_dir() {
        stack = vec![root.join(format!("{dir}.rs"))];
    }
    while let Some(p) = stack.pop() {
        if p.is_dir() {
            stack.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        if p.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        // Tests may use anything: a module's own test files too.
        let stem = p.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        if stem == "tests" || stem.ends_with("_tests") {
            continue;
        }
        let text = std::fs::read_to_string(&p).unwrap();
        // Tests may use anything: stop at the file's test module.
        let code = text.split("\n#[cfg(test)]\nmod tests").next().unwrap_or("");
        for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
            let mut rest = line;
            while let Some(i) = rest.find("crate::") {
                rest = &rest[i + "crate::".len()..];
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                out.push((p.display().to_string(), name));
            }
        }
    }
    out
}

fn check(dir: &str, allowed: &[&str]) {
    let bad: Vec<_> = imports(dir)
        .into_iter()
        .filter(|(_, m)| m != dir && !allowed.contains(&m.as_str()))
        .collect();
    assert!(bad.is_empty(), "{dir} may import only {allowed:?}: {bad:?}");
}

#[test]
fn each_layer_imports_only_the_layers_below_it() {
    check("model", &[]);
    check("preference", &[]);
    check("hub", &["model"]);
    check("scoring", &["model"]);
    check("engine", &["model", "hub", "scoring"]);
}

#[test]
fn the_check_sees_imports() {
    let found = imports("scoring");
    assert!(found.iter().any(|(_, m)| m == "model"), "{found:?}");
}
