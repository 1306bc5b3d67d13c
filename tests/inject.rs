//! No string in a project file can add an instruction to a Containerfile
//! or a command to a shell: what cannot be escaped for its context is
//! rejected at validation, exit 2, naming file:line:col and the field.

use crate::build::{built_ok, ov_for};
use crate::util::{local_fixture, Ov, Project, Run};

/// The case: a newline in an `env:` key made a RUN of its own.
const INJECTED_ENV: &str = "  env:\n    \"X=1\\nRUN echo INJECTED > /pwned\\nENV Y\": \"2\"\n";

fn rejected(p: &Project, field: &str) -> Run {
    let ov = Ov::new(p.path());
    let before = p.snapshot();
    let run = ov.bad(&["image", "validate"]);
    assert!(
        run.stderr.contains(field),
        "the error does not name `{field}`:\n{}",
        run.stderr
    );
    assert_eq!(p.snapshot(), before, "ov wrote into the project");
    ov.assert_only_caches();
    // Every command that would render the file refuses the same way.
    ov.bad(&["build", "--dry-run"]);
    ov.bad(&["image", "generate", "app"]);
    run
}

#[test]
fn newline_in_an_env_key_is_rejected_with_its_position() {
    let p = Project::mini();
    p.append("layers/greeting/layer.yml", INJECTED_ENV);
    let run = rejected(&p, "env");
    // The file has six lines; `env:` is line 7 and the key line 8, column 5.
    run.stderr_has(&["layers/greeting/layer.yml:8:5: error:"]);
    // The key is shown escaped, on the error's own line.
    assert!(
        !run.stderr.lines().any(|l| l.starts_with("RUN ")),
        "{}",
        run.stderr
    );
}

/// One bad string per field that reaches a Containerfile or a shell.
#[test]
fn every_field_that_reaches_a_build_file_rejects_what_it_cannot_hold() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "layers/greeting/layer.yml",
            "  var:\n    \"A B\": x\n",
            "var",
        ),
        (
            "layers/greeting/layer.yml",
            "  env:\n    A: \"1\\nRUN touch /pwned\"\n",
            "env",
        ),
        (
            "layers/greeting/layer.yml",
            "  path_append: [\"/x\\nRUN touch /pwned\"]\n",
            "path_append",
        ),
        (
            "layers/greeting/layer.yml",
            "    - mkdir: \"/opt/x\\nRUN touch /pwned\"\n",
            "mkdir",
        ),
        (
            "layers/greeting/layer.yml",
            "    - mkdir: /opt/y\n      user: \"root\\nRUN touch /pwned\"\n",
            "user",
        ),
        (
            "layers/greeting/layer.yml",
            "    - build: \"x\\nRUN touch /pwned\"\n",
            "build",
        ),
        (
            "layers/greeting/layer.yml",
            "    - cmd: \"true\"\n      env:\n        \"A;touch /pwned\": x\n",
            "env",
        ),
        (
            "layers/greeting/layer.yml",
            "    - write: /etc/x\n      content: x\n      mode: \"0644\\nRUN touch /pwned\"\n",
            "mode",
        ),
        (
            "layers/web/layer.yml",
            "  port: [\"80\\nRUN touch /pwned\"]\n",
            "port",
        ),
        (
            "layers/web/layer.yml",
            "    - {id: x, command: \"true\\0\"}\n",
            "eval",
        ),
        (
            "layers/greeting/layer.yml",
            "  service:\n    - {name: s, use_packaged: \"x;touch /pwned\"}\n",
            "use_packaged",
        ),
    ];
    let web = "layers/web/layer.yml";
    let packages: &[(&str, &str)] = &[
        ("  package: [\"curl;touch /pwned\"]\n", "package"),
        (
            "  distro:\n    fedora:\n      package: [\"a\\nRUN touch /pwned\"]\n",
            "package",
        ),
        ("  package: [\"nul\\0byte\"]\n", "package"),
        (
            "  distro:\n    fedora:\n      package: [a]\n      repo: [{name: r, url: \"https://x/\\\" && touch /pwned\"}]\n",
            "distro.fedora.repo",
        ),
    ];
    for (more, field) in packages {
        let p = Project::mini();
        p.edit(web, "  package: [nginx]\n", more);
        let run = rejected(&p, field);
        run.stderr_has(&[&format!("{web}:")]);
    }
    for (file, more, field) in cases {
        let p = Project::mini();
        p.append(file, more);
        let run = rejected(&p, field);
        assert!(
            run.stderr.contains(&format!("{file}:")),
            "{more:?}: the error does not point into {file}:\n{}",
            run.stderr
        );
    }
}

#[test]
fn an_image_name_that_would_break_its_comment_is_rejected() {
    let p = Project::mini();
    p.edit("image.yml", "  app:\n", "  \"app\\nRUN touch /pwned\":\n");
    let ov = Ov::new(p.path());
    ov.bad(&["image", "validate"])
        .stderr_has(&["image.yml:", "image name"]);
}

/// YAML is text: a file that is not UTF-8 is refused with its name, not
/// read with replacement characters.
#[test]
fn a_project_file_that_is_not_utf8_is_rejected() {
    let p = Project::mini();
    let mut bytes = p.read("layers/web/layer.yml").into_bytes();
    bytes.extend_from_slice(b"  env:\n    A: \"\xff\xfe\"\n");
    p.write("layers/web/layer.yml", bytes);
    Ov::new(p.path())
        .bad(&["image", "validate"])
        .stderr_has(&["layers/web/layer.yml"]);
}

/// Quotes, `$(…)`, backticks and backslashes in paths, values and task
/// environments arrive in the image as written and run nothing.
#[test]
fn shell_metacharacters_in_project_strings_stay_literal() {
    let p = Project::copy_of(&local_fixture("deb-tasks"));
    p.append(
        "layers/a/layer.yml",
        concat!(
            "    - mkdir: \"/opt/m/$(touch /pwned1)`touch /pwned2`\"\n",
            "    - write: \"/opt/m/q'\\\"x\"\n",
            "      content: hi\n",
            "    - cmd: printf %s \"$V\" > /opt/m/v\n",
            "      env:\n",
            "        V: \"it's $(touch /pwned3) \\\\ \\\"q\\\"\"\n",
            "  env:\n",
            "    WEIRD: \"a \\\"b\\\" \\\\ c `touch /pwned4` 'd'\"\n",
        ),
    );
    p.append(
        "image.yml",
        concat!(
            "            - {id: no-pwned, command: 'ls /pwned1 /pwned2 /pwned3 /pwned4', exit_status: 2}\n",
            "            - {id: dir, command: \"test -d '/opt/m/$(touch /pwned1)`touch /pwned2`'\", exit_status: 0}\n",
            "            - {id: quoted, file: \"/opt/m/q'\\\"x\", contains: [hi]}\n",
            "            - {id: value, file: /opt/m/v, contains: [\"it's $(touch /pwned3) \\\\ \\\"q\\\"\"]}\n",
            "            - {id: env, command: 'printenv WEIRD', stdout: [\"a \\\"b\\\" \\\\ c `touch /pwned4` 'd'\"]}\n",
        ),
    );
    let ov = ov_for(p.path());
    built_ok(&ov);
}

/// build.yml's bootstrap packages land unquoted on the builder's command
/// line.
#[test]
fn a_bootstrap_package_that_is_not_a_word_is_rejected() {
    let p = Project::mini();
    p.edit(
        "build.yml",
        "  fedora:\n",
        "  fedora:\n    bootstrap:\n      package: [\"a;touch /pwned\"]\n",
    );
    rejected(&p, "distro.fedora.bootstrap.package").stderr_has(&["build.yml:4:"]);
}
