//! `bootstrap`: run a build.yml bootstrap builder (debootstrap, pacstrap)
//! in a privileged container of its builder image, keep the rootfs tarball
//! it writes in the CAS, and import it as a base image.
//!
//! The tarball, not the imported image, is the node's output: a cache hit
//! whose image has left the engine is re-imported from the CAS instead of
//! bootstrapped again.

use super::{ExecCtx, ExecError, NodeOutput, ResourceClass, Restore, Rule};
use crate::engine::RunSpec;
use crate::NodeKind;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value as Json};
use std::io::Read;
use std::time::Duration;

/// The name of the rootfs tarball among a bootstrap result's blobs.
pub const ROOTFS_BLOB: &str = "rootfs";

/// A bootstrap node's spec: a build.yml builder run in its builder image.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BootstrapSpec {
    /// The build.yml builder's name (`debootstrap`).
    pub builder: String,
    /// The node whose image the builder runs in (`image:<name>` or
    /// `base:<ref>`); one of the node's dependencies.
    pub builder_node: String,
    /// build.yml `builder.<builder>` (its script template, output artifact,
    /// privilege), as written.
    pub builder_def: Option<Json>,
    /// The build.yml distro whose settings the script sees.
    pub distro: Option<String>,
    /// build.yml `distro.<distro>`, as written.
    pub distro_def: Option<Json>,
    /// A VM's `source` entry, for a VM's bootstrap (absent for an image's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Json>,
}

impl Rule for BootstrapSpec {
    const KIND: NodeKind = NodeKind::Bootstrap;

    fn resources(&self) -> ResourceClass {
        ResourceClass::Privileged
    }

    fn restore(&self) -> Restore {
        // The tarball, not the image, is the output: an image that left
        // the engine is imported again rather than bootstrapped again.
        Restore::Import { blob: ROOTFS_BLOB }
    }

    fn tags_node_image(&self) -> bool {
        true
    }

    async fn execute(&self, ctx: &mut ExecCtx<'_>) -> Result<NodeOutput, ExecError> {
        run(self, ctx).await
    }
}

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

/// What a VM's bootstrap script sees (ov's `BuildBootstrapVM`): the
/// distro's base packages for its bootstrapper and the VM's own
/// `source.package` as `.Packages` (the second-stage install), and
/// `source.bootstrap_arch`/`bootstrap_variant` as `.Arch`/`.Variant`.
pub fn vm_template_data(distro_def: &Json, source: &Json) -> Json {
    let mut data = template_data(distro_def);
    let mut packages: Vec<Json> = Vec::new();
    for section in ["pacstrap", "debootstrap"] {
        if let Some(Json::Array(a)) = distro_def.get(section).and_then(|s| s.get("base_package")) {
            packages.extend(a.iter().cloned());
            break;
        }
    }
    if let Some(Json::Array(a)) = source.get("package") {
        packages.extend(a.iter().cloned());
    }
    data["Packages"] = Json::Array(packages);
    for (key, field) in [("Arch", "bootstrap_arch"), ("Variant", "bootstrap_variant")] {
        data[key] = source.get(field).cloned().unwrap_or(json!(""));
    }
    data
}

async fn run(spec: &BootstrapSpec, ctx: &mut ExecCtx<'_>) -> Result<NodeOutput, ExecError> {
    let builder = &spec.builder;
    let image = ctx.dep_image(&spec.builder_node)?.clone();
    let def = spec.builder_def.clone().unwrap_or(Json::Null);
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
    let distro_def = spec.distro_def.as_ref().unwrap_or(&Json::Null);
    let data = match &spec.source {
        Some(source) => vm_template_data(distro_def, source),
        None => template_data(distro_def),
    };
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
        files: vec![(ROOTFS_BLOB.into(), tarball)],
        meta: json!({ "tag": tag, "builder": builder }),
        log: run.output,
        ..Default::default()
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

    #[test]
    fn a_vms_packages_are_the_base_packages_and_its_own() {
        let distro = json!({
            "bootstrap": {"package": ["curl"]},
            "debootstrap": {"suite": "bookworm", "base_package": ["systemd-sysv", "linux-image-amd64"]},
        });
        let d = vm_template_data(
            &distro,
            &json!({"package": ["openssh-server"], "bootstrap_variant": "minbase"}),
        );
        assert_eq!(
            d["Packages"],
            json!(["systemd-sysv", "linux-image-amd64", "openssh-server"])
        );
        assert_eq!(d["Variant"], json!("minbase"));
        assert_eq!(d["Arch"], json!(""));
    }
}
