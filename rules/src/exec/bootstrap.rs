//! `bootstrap`: run a build.yml bootstrap builder (debootstrap, pacstrap)
//! in a privileged container of its builder image, keep the rootfs tarball
//! it writes in the CAS, and import it as a base image.
//!
//! The tarball, not the imported image, is the node's output: a cache hit
//! whose image has left the engine is re-imported from the CAS instead of
//! bootstrapped again.

use super::{ExecCtx, ExecError, NodeOutput};
use crate::engine::RunSpec;
use serde_json::{json, Map, Value as Json};
use std::io::Read;
use std::time::Duration;

/// `snake_case` → `CamelCase`, the way ov's Go structs name build.yml fields
/// (`include_package` → `IncludePackages` is ov's one plural quirk).
fn camel(key: &str) -> String {
    let mut out = String::new();
    for part in key.split('_') {
        let mut c = part.chars();
        if let Some(f) = c.next() {
            out.extend(f.to_uppercase());
            out.push_str(c.as_str());
        }
    }
    match out.as_str() {
        "IncludePackage" => "IncludePackages".into(),
        "BasePackage" => "BasePackages".into(),
        "ExtraRepo" => "ExtraRepos".into(),
        _ => out,
    }
}

fn camel_tree(v: &Json) -> Json {
    match v {
        Json::Object(o) => Json::Object(
            o.iter()
                .map(|(k, v)| (camel(k), camel_tree(v)))
                .collect::<Map<String, Json>>(),
        ),
        Json::Array(a) => Json::Array(a.iter().map(camel_tree).collect()),
        other => other.clone(),
    }
}

/// The data the builder's script template sees: `.Distro.<Section>.<Field>`,
/// `.Packages`, and empty extras.
pub fn template_data(distro_def: &Json) -> Json {
    let distro = camel_tree(distro_def);
    let mut packages: Vec<Json> = Vec::new();
    for section in ["debootstrap", "pacstrap"] {
        for field in ["base_package", "include_package"] {
            if let Some(Json::Array(a)) = distro_def.get(section).and_then(|s| s.get(field)) {
                if field == "base_package" {
                    packages.extend(a.iter().cloned());
                }
            }
        }
    }
    if let Some(Json::Array(a)) = distro_def.get("bootstrap").and_then(|b| b.get("package")) {
        packages.extend(a.iter().cloned());
    }
    json!({
        "Distro": distro,
        "Packages": packages,
        "ExtraAptSources": "",
        "ExtraPacmanConf": "",
    })
}

/// Runs a bootstrap node.
pub async fn run(ctx: &mut ExecCtx<'_>) -> Result<NodeOutput, ExecError> {
    let builder = ctx.spec_str("builder")?.to_string();
    let builder_node = ctx.spec_str("builder_node")?.to_string();
    let image = ctx.dep_image(&builder_node)?.clone();
    let def = ctx.spec.get("builder_def").cloned().unwrap_or(Json::Null);
    let script_tpl = def
        .pointer("/phase/install/container")
        .and_then(Json::as_str)
        .ok_or_else(|| {
            ExecError::Spec(format!(
                "build.yml builder `{builder}` has no phase.install.container script"
            ))
        })?;
    let artifact = def
        .get("output_artifact")
        .and_then(Json::as_str)
        .unwrap_or("/out/rootfs.tar.gz");
    let Some(rel) = artifact.strip_prefix("/out/") else {
        return Err(ExecError::Spec(format!(
            "build.yml builder `{builder}`: output_artifact `{artifact}` must be under /out/"
        )));
    };
    let data = template_data(ctx.spec.get("distro_def").unwrap_or(&Json::Null));
    // The script template puts packages on bash's command line unquoted.
    if let Some(p) = data["Packages"].as_array().into_iter().flatten().find(|p| {
        !p.as_str()
            .is_some_and(crate::containerfile::accept::is_package_name)
    }) {
        return Err(ExecError::Spec(format!(
            "build.yml builder `{builder}`: bootstrap package {p} is not a package name"
        )));
    }
    let script = crate::template::render(
        &format!("builder.{builder}.phase.install.container"),
        script_tpl,
        crate::template::from_json(&data),
        crate::template::Helpers {
            locked_cache_mounts: ctx.quirks.locked_cache_mounts,
        },
    )
    .map_err(|e| ExecError::Spec(e.to_string()))?;
    let out_dir = ctx.scratch.join("out");
    std::fs::create_dir_all(&out_dir).map_err(super::at(&out_dir))?;
    let run = ctx
        .engine
        .run(
            &RunSpec {
                image: image.hex().to_string(),
                script: format!(
                    "/bin/bash -c {}",
                    crate::containerfile::quote::sh_sq(&script)
                ),
                privileged: def
                    .get("privileged")
                    .and_then(Json::as_bool)
                    .unwrap_or(true),
                // Builder images may end as an unprivileged user; the
                // builder needs root to create the rootfs.
                user: Some("0".into()),
                binds: vec![format!("{}:/out", out_dir.display())],
                run_id: ctx.run_id.to_string(),
                timeout: Some(Duration::from_secs(3600)),
            },
            ctx.cancel,
        )
        .await?;
    if run.exit_code != 0 {
        return Err(ExecError::Failed {
            message: format!("bootstrap builder `{builder}` exited {}", run.exit_code),
            output: run.output,
        });
    }
    let tarball = out_dir.join(rel);
    if !tarball.is_file() {
        return Err(ExecError::Failed {
            message: format!("bootstrap builder `{builder}` did not write {artifact}"),
            output: run.output,
        });
    }
    let digest = {
        let mut h = blake3::Hasher::new();
        let mut f = std::fs::File::open(&tarball).map_err(super::at(&tarball))?;
        let mut buf = vec![0; 1 << 20];
        loop {
            let n = f.read(&mut buf).map_err(super::at(&tarball))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        h.finalize().to_hex().to_string()
    };
    let tag = ctx.node_tag();
    let id = ctx.engine.import(&tarball, &tag).await?;
    Ok(NodeOutput {
        digest: format!("blake3:{digest}"),
        image: Some(id),
        files: vec![("rootfs".into(), tarball)],
        meta: json!({ "tag": tag, "builder": builder }),
        log: run.output,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_data_uses_ov_field_names() {
        let d = template_data(&json!({
            "debootstrap": {"suite": "bookworm", "mirror": "http://m", "include_package": ["ca-certificates"]},
        }));
        assert_eq!(
            d.pointer("/Distro/Debootstrap/Suite"),
            Some(&json!("bookworm"))
        );
        assert_eq!(
            d.pointer("/Distro/Debootstrap/IncludePackages"),
            Some(&json!(["ca-certificates"]))
        );
    }
}
