//! `ov graph --format html` and `ov build --graph-out` in a real browser:
//! Debian's chromium loads the page of `examples/web` with no console
//! errors, every node carries the state the graph document gives it, and a
//! click shows the node's explain text; before a build, after it (what it
//! did), and as the next build would see it (all cached).

use crate::browser::Browser;
use crate::build::{build, ov_for};
use crate::util::{local_fixture, Ov, Project};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn example(name: &str) -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/examples")).join(name)
}

/// Where screenshots are kept for people to look at after a CI run.
fn artifact(name: &str) -> PathBuf {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/target/test-artifacts"
    ))
    .join(name)
}

/// Node id → state, from the JSON `ov graph --format json` prints.
fn json_states(doc: &Value) -> BTreeMap<String, String> {
    doc["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| {
            (
                n["id"].as_str().unwrap_or_default().to_string(),
                n["state"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// Loads `page` and checks it against the document it embeds and against
/// `expected` (the document `ov graph --format json` printed, when given).
fn load_and_check(b: &mut Browser, page: &Path, expected: Option<&Value>) -> Value {
    b.open(page);
    let embedded = b.eval("JSON.parse(document.getElementById('ov-graph').textContent)");
    if let Some(expected) = expected {
        assert_eq!(&embedded, expected, "the page embeds another document");
    }
    // Every node of the document is drawn once, with its state.
    let drawn: BTreeMap<String, String> = serde_json::from_value(b.eval(
        "Object.fromEntries(Array.from(document.querySelectorAll('[data-node-id]'))\
         .map(e => [e.dataset.nodeId, e.dataset.state]))",
    ))
    .expect("id → state");
    assert_eq!(drawn, json_states(&embedded));
    assert_eq!(
        b.eval("document.querySelectorAll('[data-node-id]').length"),
        embedded["nodes"].as_array().map_or(0, Vec::len)
    );
    let errors = b.errors();
    assert!(errors.is_empty(), "console errors: {errors:#?}");
    embedded
}

fn graph_json(ov: &Ov) -> Value {
    serde_json::from_str(&ov.ok(&["graph", "--format", "json"]).stdout).expect("JSON")
}

#[test]
fn the_page_of_examples_web_shows_each_nodes_state_before_and_after_a_build() {
    let p = Project::copy_of(&example("web"));
    p.own_tag("web");
    let ov = ov_for(p.path());
    let dir = tempfile::tempdir().unwrap();
    let mut b = Browser::launch();

    // Before the first build: everything will run, and says why.
    let before = dir.path().join("before.html");
    ov.ok(&["graph", "--format", "html", "-o", before.to_str().unwrap()]);
    let doc = load_and_check(&mut b, &before, Some(&graph_json(&ov)));
    let states = json_states(&doc);
    assert!(states.values().all(|s| s == "run"), "{states:?}");
    b.click("[data-node-id='image:web']");
    assert_eq!(
        b.eval("document.getElementById('d-id').textContent"),
        "image:web"
    );
    let explain = b.eval("document.getElementById('explain').textContent");
    assert!(
        explain
            .as_str()
            .is_some_and(|t| t.contains("image web: will run (never built with this cache)")),
        "{explain}"
    );
    assert_eq!(b.eval("document.getElementById('details').hidden"), false);

    // The build's own page: what it did.
    let after = dir.path().join("after.html");
    let run = build(&ov, &["--graph-out", after.to_str().unwrap()]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let doc = load_and_check(&mut b, &after, None);
    let states = json_states(&doc);
    assert_eq!(states["image:web"], "built");
    assert_eq!(states["eval:web"], "built");
    assert!(
        states
            .values()
            .all(|s| ["built", "cached", "checked"].contains(&s.as_str())),
        "{states:?}"
    );
    assert_eq!(doc["moment"], "after-build");
    let path = doc["run"]["critical_path"]
        .as_array()
        .expect("a critical path");
    assert_eq!(path.last().and_then(Value::as_str), Some("eval:web"));
    assert!(doc["run"]["total_ms"].as_u64().unwrap_or(0) > 0);
    assert_eq!(
        b.eval("document.querySelectorAll('g.node.critical').length"),
        path.len()
    );
    b.screenshot(&artifact("graph-web-after-build.png"));

    // What the next build would do: nothing, with last run's times.
    let next = dir.path().join("next.html");
    ov.ok(&["graph", "--format", "html", "-o", next.to_str().unwrap()]);
    let doc = load_and_check(&mut b, &next, Some(&graph_json(&ov)));
    let states = json_states(&doc);
    assert!(
        states
            .values()
            .all(|s| ["cached", "checked"].contains(&s.as_str())),
        "{states:?}"
    );
    assert!(doc["run"]["critical_path"].is_array(), "{}", doc["run"]);
    b.click("[data-node-id='layer:web@web']");
    let explain = b.eval("document.getElementById('explain').textContent");
    assert!(
        explain.as_str().is_some_and(|t| t.contains("cached")),
        "{explain}"
    );
    // Filters: only what one node needs, then no cached nodes at all.
    let shown = b.eval(
        "(() => { const t = document.getElementById('target'); \
         t.value = Array.from(t.options).find(o => o.text === 'image:web').value; \
         t.dispatchEvent(new Event('change')); \
         return document.querySelectorAll('g.node:not(.hidden)').length; })()",
    );
    assert!(
        shown.as_u64().unwrap_or(0) < doc["nodes"].as_array().map_or(0, Vec::len) as u64,
        "the eval is hidden when only the image's needs are shown"
    );
    // Search: the matching nodes are marked, Enter selects the first.
    let matched = b.eval(
        "(() => { const s = document.getElementById('search'); s.value = 'supervisord'; \
         s.dispatchEvent(new Event('input')); \
         s.dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter'})); \
         return Array.from(document.querySelectorAll('g.node.match')).map(e => e.dataset.nodeId); })()",
    );
    let matched: Vec<String> = serde_json::from_value(matched).expect("ids");
    assert!(!matched.is_empty());
    assert!(
        matched.iter().all(|id| id.contains("supervisord")),
        "{matched:?}"
    );
    assert_eq!(
        b.eval("document.getElementById('d-id').textContent"),
        matched[0].as_str()
    );
    b.screenshot(&artifact("graph-web-next-build.png"));

    // DOT and Mermaid say the same states.
    let dot = ov.ok(&["graph", "--format", "dot"]).stdout;
    assert!(dot.contains("state=\"cached\""), "{dot}");
    let mermaid = ov.ok(&["graph", "--format", "mermaid"]).stdout;
    assert!(mermaid.contains("classDef cached"), "{mermaid}");
}

#[test]
fn a_failed_build_page_says_which_node_failed_and_what_it_skipped() {
    let p = Project::copy_of(&local_fixture("deb-tasks"));
    p.append(
        "layers/a/layer.yml",
        "    - cmd: \"echo broken-on-purpose >&2; exit 3\"\n",
    );
    let ov = ov_for(p.path());
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("failed.html");
    let run = build(
        &ov,
        &["--keep-going", "--graph-out", page.to_str().unwrap()],
    );
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let mut b = Browser::launch();
    let doc = load_and_check(&mut b, &page, None);
    let failed: Vec<&Value> = doc["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .filter(|n| n["state"] == "failed")
        .collect();
    assert_eq!(failed.len(), 1, "{doc}");
    assert!(failed[0]["id"]
        .as_str()
        .is_some_and(|id| id.starts_with("layer:a@")));
    assert!(
        failed[0]["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{}",
        failed[0]
    );
    assert!(
        doc["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .any(|n| n["state"] == "skipped"),
        "the image that needs the failed layer is skipped: {doc}"
    );
    b.click("[data-state='failed']");
    let explain = b.eval("document.getElementById('explain').textContent");
    assert!(
        explain.as_str().is_some_and(|t| t.contains(": failed: ")),
        "{explain}"
    );
}

#[test]
fn a_dead_remote_cache_costs_the_graph_one_warning_without_the_password() {
    let p = Project::copy_of(&local_fixture("deb-tasks"));
    let ov = ov_for(p.path());
    let r = ov.ok(&[
        "graph",
        "--format",
        "json",
        "--remote-cache",
        "http://someone:hunter2@127.0.0.1:9/cache/",
    ]);
    assert!(r.stderr.contains("remote cache failed"), "{}", r.stderr);
    assert_eq!(
        r.stderr.matches("remote cache failed").count(),
        1,
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("hunter2"), "{}", r.stderr);
    let doc: Value = serde_json::from_str(&r.stdout).expect("JSON");
    let states = json_states(&doc);
    assert!(
        states.values().all(|s| s == "run" || s == "checked"),
        "{states:?}"
    );
    assert_eq!(states["eval:app"], "run");
}

#[test]
fn a_graph_out_path_that_cannot_be_written_is_refused_before_the_build() {
    let p = Project::copy_of(&local_fixture("deb-tasks"));
    let ov = Ov::new(p.path());
    let file = p.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    for bad in [p.path().to_path_buf(), file.join("graph.html")] {
        let r = ov.bad(&["build", "--graph-out", bad.to_str().unwrap()]);
        assert!(r.stderr.contains("--graph-out"), "{}", r.stderr);
        // Nothing ran: no store was made.
        assert!(!ov.cache_dir().join("store").exists(), "{}", r.stderr);
    }
}
