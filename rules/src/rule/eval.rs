//! `eval`: an image's build-scope checks, run in one throwaway container.
//!
//! Every check becomes a shell fragment whose exit code and output are
//! printed between markers; the verdicts are decided here, in Rust, from
//! that output, so a check's failure can name the check and show exactly
//! what the image printed. The report is the node's output: like a test
//! result, it is cached by the image digest and the checks.

use super::{ExecCtx, ExecError, NodeOutput, ResourceClass, Rule};
use crate::containerfile::quote::sh_sq;
use crate::engine::RunSpec;
use crate::NodeKind;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value as Json};

/// An eval node's spec: an image's build-scope checks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalSpec {
    /// The `eval:` checks as written (the image's own, then its layers').
    pub checks: Vec<Json>,
    /// The image's distro tags, for `package_map`.
    pub distro: Vec<String>,
    /// The image's package formats; the first picks the package query.
    pub build: Vec<String>,
    /// The image node the checks run in.
    pub image_node: String,
}

impl Rule for EvalSpec {
    const KIND: NodeKind = NodeKind::Eval;

    fn resources(&self) -> ResourceClass {
        ResourceClass::Engine
    }

    async fn execute(&self, ctx: &mut ExecCtx<'_>) -> Result<NodeOutput, ExecError> {
        run(self, ctx).await
    }
}
use std::fmt::Write as _;
use std::time::Duration;

/// One check, as written in `eval:`.
#[derive(Clone, Debug, PartialEq)]
pub enum Check {
    /// `file: PATH` with `exists` and/or `contains`.
    File {
        /// The path.
        path: String,
        /// Whether it must exist (default true).
        exists: bool,
        /// Strings its content must contain.
        contains: Vec<String>,
    },
    /// `command: CMD` with `exit_status`, `stdout`/`stderr` `contains`.
    Command {
        /// The command line.
        command: String,
        /// Expected exit code (default 0).
        exit_status: i64,
        /// Strings stdout must contain.
        stdout: Vec<String>,
        /// Strings stderr must contain.
        stderr: Vec<String>,
    },
    /// `package: NAME` (with `package_map` per distro) and `installed`.
    Package {
        /// The package name for this image's distro.
        name: String,
        /// Whether it must be installed (default true).
        installed: bool,
        /// The package format's query command.
        format: String,
    },
}

/// A check with its id.
#[derive(Clone, Debug)]
pub struct NamedCheck {
    /// `id:` or `check-<n>`.
    pub id: String,
    /// What to check.
    pub check: Check,
}

fn strings(v: Option<&Json>) -> Vec<String> {
    match v {
        Some(Json::String(s)) => vec![s.clone()],
        Some(Json::Array(a)) => a
            .iter()
            .filter_map(|x| match x {
                Json::String(s) => Some(s.clone()),
                // `stdout: [{contains: "x"}]`
                Json::Object(o) => o.get("contains").and_then(Json::as_str).map(str::to_string),
                _ => None,
            })
            .collect(),
        Some(Json::Object(o)) => strings(o.get("contains")),
        _ => Vec::new(),
    }
}

/// Reads the checks of an eval spec.
pub fn parse_checks(spec: &EvalSpec) -> Result<Vec<NamedCheck>, ExecError> {
    let distros: Vec<&str> = spec.distro.iter().map(String::as_str).collect();
    let format = spec.build.first().map_or("deb", String::as_str).to_string();
    let mut out = Vec::new();
    for (i, c) in spec.checks.iter().enumerate() {
        let id = c
            .get("id")
            .and_then(Json::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| format!("check-{}", i + 1));
        let b = |k: &str, d: bool| c.get(k).and_then(Json::as_bool).unwrap_or(d);
        let check = if let Some(path) = c.get("file").and_then(Json::as_str) {
            Check::File {
                path: path.to_string(),
                exists: b("exists", true),
                contains: strings(c.get("contains")),
            }
        } else if let Some(cmd) = c.get("command").and_then(Json::as_str) {
            Check::Command {
                command: cmd.to_string(),
                exit_status: c.get("exit_status").and_then(Json::as_i64).unwrap_or(0),
                stdout: strings(c.get("stdout")),
                stderr: strings(c.get("stderr")),
            }
        } else if let Some(pkg) = c.get("package").and_then(Json::as_str) {
            // package_map is keyed by distro name (`fedora`, `arch`,
            // `debian`); a tag like `debian:12` matches by its name part.
            let mapped = c
                .get("package_map")
                .and_then(Json::as_object)
                .and_then(|m| {
                    distros.iter().find_map(|d| {
                        let name = d.split(':').next().unwrap_or(d);
                        m.get(*d).or_else(|| m.get(name)).and_then(Json::as_str)
                    })
                });
            Check::Package {
                name: mapped.unwrap_or(pkg).to_string(),
                installed: b("installed", true),
                format: format.clone(),
            }
        } else {
            let keys: Vec<&str> = c
                .as_object()
                .map(|o| o.keys().map(String::as_str).collect())
                .unwrap_or_default();
            return Err(ExecError::Spec(format!(
                "eval check `{id}` has none of file/command/package (it has: {})",
                keys.join(", ")
            )));
        };
        out.push(NamedCheck { id, check });
    }
    Ok(out)
}

fn fragment(check: &Check) -> String {
    match check {
        Check::File { path, .. } => format!("test -e {0} && cat {0}", sh_sq(path)),
        Check::Command { command, .. } => command.clone(),
        Check::Package { name, format, .. } => match format.as_str() {
            "rpm" => format!("rpm -q {}", sh_sq(name)),
            "pac" | "aur" => format!("pacman -Q {}", sh_sq(name)),
            _ => format!(
                "dpkg-query -W -f='${{Status}}' {} | grep -q 'install ok installed'",
                sh_sq(name)
            ),
        },
    }
}

/// The script that runs every check and prints markers around its results.
pub fn script(checks: &[NamedCheck]) -> String {
    let mut s = String::from("d=$(mktemp -d)\n");
    for (i, c) in checks.iter().enumerate() {
        let _ = writeln!(
            s,
            "( {} ) >\"$d/o\" 2>\"$d/e\" </dev/null; rc=$?\n\
             echo \"@@ov-check {i} rc $rc\"; cat \"$d/o\"; echo; echo \"@@ov-check {i} stderr\"; \
             cat \"$d/e\"; echo; echo \"@@ov-check {i} end\"",
            fragment(&c.check)
        );
    }
    s
}

/// A check's verdict.
#[derive(Clone, Debug, Serialize)]
pub struct Verdict {
    /// The check's id.
    pub id: String,
    /// Passed?
    pub ok: bool,
    /// Why it failed (empty when it passed).
    pub reason: String,
    /// Exit code of the probe.
    pub rc: i64,
    /// What the probe printed on stdout.
    pub stdout: String,
    /// What the probe printed on stderr.
    pub stderr: String,
}

fn judge(check: &Check, rc: i64, out: &str, err: &str) -> Result<(), String> {
    let missing = |hay: &str, needles: &[String], what: &str| {
        needles
            .iter()
            .find(|n| !hay.contains(n.as_str()))
            .map(|n| format!("{what} does not contain {n:?}"))
    };
    match check {
        Check::File {
            path,
            exists,
            contains,
        } => match (rc == 0, *exists) {
            (true, false) => Err(format!("{path} exists but must not")),
            (false, true) => Err(format!("{path} does not exist")),
            (false, false) => Ok(()),
            (true, true) => missing(out, contains, path).map_or(Ok(()), Err),
        },
        Check::Command {
            command,
            exit_status,
            stdout,
            stderr,
        } => {
            if rc != *exit_status {
                return Err(format!("`{command}` exited {rc}, expected {exit_status}"));
            }
            missing(out, stdout, "stdout")
                .or_else(|| missing(err, stderr, "stderr"))
                .map_or(Ok(()), Err)
        }
        Check::Package {
            name, installed, ..
        } => match (rc == 0, *installed) {
            (true, true) | (false, false) => Ok(()),
            (false, true) => Err(format!("package {name} is not installed")),
            (true, false) => Err(format!("package {name} is installed but must not be")),
        },
    }
}

/// Reads the probe output back into one verdict per check.
pub fn verdicts(checks: &[NamedCheck], output: &str) -> Vec<Verdict> {
    checks
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let start = format!("@@ov-check {i} rc ");
            let mid = format!("\n@@ov-check {i} stderr\n");
            let end = format!("\n@@ov-check {i} end");
            let parsed = output.find(&start).and_then(|a| {
                let rest = &output[a + start.len()..];
                let nl = rest.find('\n')?;
                let rc: i64 = rest[..nl].trim().parse().ok()?;
                let body = &rest[nl + 1..];
                let m = body.find(&mid)?;
                let e = body.find(&end)?;
                let out = body[..m].strip_suffix('\n').unwrap_or(&body[..m]);
                let err = body.get(m + mid.len()..e).unwrap_or_default();
                Some((rc, out.to_string(), err.to_string()))
            });
            let (rc, stdout, stderr) = parsed.unwrap_or((-1, String::new(), String::new()));
            let reason = match parsed_ok(&c.check, rc, &stdout, &stderr, output, &start) {
                Ok(()) => String::new(),
                Err(r) => r,
            };
            Verdict {
                id: c.id.clone(),
                ok: reason.is_empty(),
                reason,
                rc,
                stdout,
                stderr,
            }
        })
        .collect()
}

fn parsed_ok(
    check: &Check,
    rc: i64,
    out: &str,
    err: &str,
    all: &str,
    start: &str,
) -> Result<(), String> {
    if !all.contains(start) {
        return Err("the probe did not report this check (the container stopped early)".into());
    }
    judge(check, rc, out, err)
}

async fn run(spec: &EvalSpec, ctx: &mut ExecCtx<'_>) -> Result<NodeOutput, ExecError> {
    let checks = parse_checks(spec)?;
    let image = ctx.dep_image(&spec.image_node)?.clone();
    let out = ctx
        .engine
        .run(
            &RunSpec {
                image: image.hex().to_string(),
                script: script(&checks),
                run_id: ctx.run_id.to_string(),
                timeout: Some(Duration::from_secs(600)),
                ..Default::default()
            },
            ctx.cancel,
        )
        .await?;
    let verdicts = verdicts(&checks, &out.output);
    let failed: Vec<&Verdict> = verdicts.iter().filter(|v| !v.ok).collect();
    if !failed.is_empty() {
        let mut msg = format!("{} of {} eval checks failed:", failed.len(), verdicts.len());
        let mut output = String::new();
        for v in &failed {
            let _ = write!(msg, "\n  {}: {}", v.id, v.reason);
            let _ = writeln!(
                output,
                "--- {} (exit {})\n{}{}",
                v.id,
                v.rc,
                v.stdout,
                if v.stderr.is_empty() {
                    String::new()
                } else {
                    format!("\n[stderr]\n{}", v.stderr)
                }
            );
        }
        return Err(ExecError::Failed {
            message: msg,
            output,
        });
    }
    let report = serde_json::to_vec_pretty(&json!({ "image": image, "checks": verdicts }))
        .map_err(|e| ExecError::Spec(e.to_string()))?;
    let path = ctx.scratch.join("eval-report.json");
    std::fs::write(&path, &report).map_err(super::at(&path))?;
    Ok(NodeOutput {
        digest: format!("blake3:{}", blake3::hash(&report).to_hex()),
        image: None,
        files: vec![("report".into(), path)],
        meta: json!({ "checks": verdicts.len() }),
        log: out.output,
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> EvalSpec {
        EvalSpec {
            distro: vec!["debian:12".into(), "debian".into()],
            build: vec!["deb".into()],
            checks: vec![
                json!({"id": "f", "file": "/etc/motd", "exists": true, "contains": ["ov"]}),
                json!({"id": "c", "command": "nginx -v", "exit_status": 0, "stderr": [{"contains": "nginx"}]}),
                json!({"package": "x", "package_map": {"debian": "nginx", "fedora": "nginx-core"}}),
                json!({"id": "absent", "file": "/nope", "exists": false}),
            ],
            image_node: "image:x".into(),
        }
    }

    #[test]
    fn checks_parse_with_package_maps_and_defaults() {
        let c = parse_checks(&spec()).unwrap();
        assert_eq!(c.len(), 4);
        assert_eq!(c[2].id, "check-3");
        assert_eq!(
            c[2].check,
            Check::Package {
                name: "nginx".into(),
                installed: true,
                format: "deb".into()
            }
        );
        let bad = EvalSpec {
            checks: vec![json!({"id": "z", "service": "x"})],
            ..spec()
        };
        let e = parse_checks(&bad).unwrap_err().to_string();
        assert!(e.contains("`z`") && e.contains("service"), "{e}");
    }

    #[test]
    fn verdicts_come_from_the_markers() {
        let c = parse_checks(&spec()).unwrap();
        let out = "@@ov-check 0 rc 0\nbuilt by ov\n\n@@ov-check 0 stderr\n\n@@ov-check 0 end\n\
                   @@ov-check 1 rc 0\n\n@@ov-check 1 stderr\nnginx version: 1.22\n@@ov-check 1 end\n\
                   @@ov-check 2 rc 1\n\n@@ov-check 2 stderr\n\n@@ov-check 2 end\n\
                   @@ov-check 3 rc 1\n\n@@ov-check 3 stderr\n\n@@ov-check 3 end\n";
        let v = verdicts(&c, out);
        assert!(v[0].ok, "{:?}", v[0]);
        assert!(v[1].ok, "{:?}", v[1]);
        assert!(!v[2].ok);
        assert!(v[2].reason.contains("nginx is not installed"));
        assert!(v[3].ok);
        let v = verdicts(
            &c,
            "@@ov-check 0 rc 0\nsomething else\n\n@@ov-check 0 stderr\n\n@@ov-check 0 end\n",
        );
        assert!(
            v[0].reason.contains("does not contain \"ov\""),
            "{}",
            v[0].reason
        );
        assert!(v[1].reason.contains("did not report"));
    }

    #[test]
    fn the_script_quotes_paths() {
        let c = vec![NamedCheck {
            id: "q".into(),
            check: Check::File {
                path: "/it's".into(),
                exists: true,
                contains: vec![],
            },
        }];
        assert!(script(&c).contains(r"test -e '/it'\''s'"));
    }
}
