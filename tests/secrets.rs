//! Secrets never reach the screen: a password in the engine URL
//! (`DOCKER_HOST` or the `engine.socket` setting) or a `?token=` in it is
//! masked in errors, in every `--progress` mode, in `ov doctor` and in
//! `ov settings`; so is one a failing build step prints.

use crate::build::{build, ov_for};
use crate::util::{local_fixture, Ov, Project, Run};

const SECRET: &str = "s3cret";
/// Nothing listens on port 1, so every command fails to connect and says
/// where it tried.
const ENDPOINT: &str = "tcp://user:s3cret@127.0.0.1:1/?token=s3cret";

fn assert_hidden(run: &Run) {
    for (name, text) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
        assert!(
            !text.contains(SECRET),
            "`{}` printed the secret on {name}:\n{text}",
            run.cmd
        );
    }
}

/// The run failed because of the engine and said which one it tried, so
/// the check above looked at the message that holds the URL.
fn names_the_masked_endpoint(run: &Run) {
    let all = format!("{}{}", run.stdout, run.stderr);
    assert!(
        all.contains("user:***@127.0.0.1:1"),
        "`{}` does not show the masked endpoint:\n{all}",
        run.cmd
    );
}

fn with_docker_host(p: &Project) -> Ov {
    Ov::new(p.path()).env("DOCKER_HOST", ENDPOINT)
}

#[test]
fn docker_host_password_is_masked_by_build_plain() {
    let p = Project::copy_of(&local_fixture("deb-tasks"));
    let run = with_docker_host(&p).run(&["build", "--progress", "plain"]);
    assert_ne!(run.code, Some(0));
    assert_hidden(&run);
    names_the_masked_endpoint(&run);
}

#[test]
fn docker_host_password_is_masked_by_build_json() {
    let p = Project::copy_of(&local_fixture("deb-tasks"));
    let run = with_docker_host(&p).run(&["build", "--progress", "json"]);
    assert_ne!(run.code, Some(0));
    assert_hidden(&run);
    names_the_masked_endpoint(&run);
}

#[test]
fn docker_host_password_is_masked_by_doctor() {
    let p = Project::mini();
    let run = with_docker_host(&p).run(&["doctor"]);
    assert_eq!(run.code, Some(1));
    assert_hidden(&run);
    names_the_masked_endpoint(&run);
}

#[test]
fn engine_socket_setting_is_masked_everywhere() {
    let p = Project::copy_of(&local_fixture("deb-tasks"));
    // An empty DOCKER_HOST does not count, so the setting is used.
    let ov = Ov::new(p.path()).env("DOCKER_HOST", "");
    assert_hidden(&ov.ok(&["settings", "set", "engine.socket", ENDPOINT]));
    let list = ov.ok(&["settings", "list"]);
    assert_hidden(&list);
    assert!(list.stdout.contains("engine.socket = tcp://user:***@"));
    let get = ov.ok(&["settings", "get", "engine.socket"]);
    assert_hidden(&get);
    assert_eq!(get.stdout.trim(), "tcp://user:***@127.0.0.1:1/?token=***");
    for args in [
        &["doctor"][..],
        &["build", "--progress", "plain"],
        &["build", "--progress", "json"],
    ] {
        let run = ov.run(args);
        assert_ne!(run.code, Some(0));
        assert_hidden(&run);
        names_the_masked_endpoint(&run);
    }
}

/// A step that fails after printing a URL with a password: its output goes
/// into the fail event (json) and the failure's last lines (plain).
#[test]
fn secrets_in_a_failing_steps_output_are_masked() {
    let p = Project::copy_of(&local_fixture("deb-tasks"));
    p.append(
        "layers/a/layer.yml",
        "    - cmd: echo fetching https://bot:s3cret@example.invalid/x?token=s3cret && false\n",
    );
    let ov = ov_for(p.path());
    let b = build(&ov, &[]);
    assert_eq!(b.code, Some(1), "{}", b.report());
    let fail = b
        .events
        .iter()
        .find(|e| e["event"] == "fail")
        .unwrap_or_else(|| panic!("no fail event: {:#?}", b.events));
    let text = fail.to_string();
    assert!(
        text.contains("https://bot:***@example.invalid/x?token=***"),
        "{text}"
    );
    for e in &b.events {
        assert!(!e.to_string().contains(SECRET), "{e}");
    }
    assert!(!b.stderr.contains(SECRET), "{}", b.stderr);
    let plain = ov.run(&["build", "--progress", "plain"]);
    assert_eq!(plain.code, Some(1));
    assert_hidden(&plain);
    assert!(
        plain.stderr.contains("bot:***@example.invalid"),
        "{}",
        plain.stderr
    );
}

/// Diagnostics quote what the project says, URLs with passwords included.
#[test]
fn a_url_with_a_password_in_a_diagnostic_is_masked() {
    let p = Project::mini();
    p.edit(
        "overthink.yml",
        "  - build.yml\n",
        "  - build.yml\n  - https://u:s3cret@github.com/o/r/x.yml?token=s3cret\n",
    );
    let run = Ov::new(p.path()).bad(&["image", "validate"]);
    assert_hidden(&run);
    run.stderr_has(&["https://u:***@github.com/o/r/x.yml?token=***"]);
}
