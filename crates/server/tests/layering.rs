//! The crate graph is the architecture (README, "Architecture"): core ←
//! app ← server. These tests ask cargo for each crate's real dependency tree
//! (with the features each build uses) and fail when a lower crate gains a
//! dependency on a higher one or on the server stack.

use std::collections::BTreeSet;
use std::process::Command;

/// What neither `pulse-core` nor `pulse-app` may depend on, directly or not.
const SERVER_STACK: &[&str] = &[
    "pulse-server",
    "tokio",
    "axum",
    "hyper",
    "leptos_axum",
    "rusqlite",
    "tower",
];

/// Every package in `cargo tree` of one build, by name.
fn packages(args: &[&str]) -> BTreeSet<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args([
            "tree", "--edges", "normal", "--prefix", "none", "--format", "{p}",
        ])
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(
        output.status.success(),
        "cargo tree {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    names(&String::from_utf8_lossy(&output.stdout))
}

/// Package names of `cargo tree --prefix none` lines (`name v1.2.3 (…)`).
fn names(tree: &str) -> BTreeSet<String> {
    tree.lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

fn forbidden_in(packages: &BTreeSet<String>, forbidden: &[&str]) -> Vec<String> {
    forbidden
        .iter()
        .filter(|name| packages.contains(**name))
        .map(|name| name.to_string())
        .collect()
}

#[test]
fn core_depends_on_no_ui_and_no_server_crate() {
    let core = packages(&["-p", "pulse-core", "--all-features"]);
    assert!(core.contains("pulse-core"), "{core:?}");
    let mut forbidden = SERVER_STACK.to_vec();
    forbidden.extend(["pulse-app", "leptos", "wasm-bindgen"]);
    assert_eq!(forbidden_in(&core, &forbidden), Vec::<String>::new());
}

#[test]
fn the_app_depends_on_core_and_never_on_the_server() {
    // Each feature on the target it is built for: the server's, the browser's.
    for (features, target) in [
        ("ssr", None),
        ("hydrate", Some("wasm32-unknown-unknown")),
        ("csr", Some("wasm32-unknown-unknown")),
    ] {
        let mut args = vec!["-p", "pulse-app", "--features", features];
        args.extend(target.iter().flat_map(|target| ["--target", *target]));
        let app = packages(&args);
        assert!(
            app.contains("pulse-core") && app.contains("leptos"),
            "{app:?}"
        );
        assert_eq!(
            forbidden_in(&app, SERVER_STACK),
            Vec::<String>::new(),
            "pulse-app with {features}"
        );
    }
}

#[test]
fn the_server_is_the_top_of_the_graph() {
    let server = packages(&["-p", "pulse-server"]);
    assert!(server.contains("pulse-app") && server.contains("pulse-core"));
    for entry in ["pulse-frontend", "pulse-static"] {
        assert!(
            !server.contains(entry),
            "the WASM entry {entry} is not a server dependency"
        );
    }
}

#[test]
fn the_static_bundle_is_the_app_without_the_server() {
    let bundle = packages(&["-p", "pulse-static", "--target", "wasm32-unknown-unknown"]);
    assert!(bundle.contains("pulse-app"), "{bundle:?}");
    assert_eq!(forbidden_in(&bundle, SERVER_STACK), Vec::<String>::new());
}

#[test]
fn the_check_sees_a_forbidden_crate_deep_in_a_tree() {
    let tree = "pulse-app v0.1.0 (/x)\nleptos v0.8.0\nhyper v1.0.0\n";
    assert_eq!(forbidden_in(&names(tree), SERVER_STACK), vec!["hyper"]);
}
