//! Decoding build.yml's `distro:`, `builder:` and `init:` maps (§1.6).

use super::decode::{check_keys, Cx, Keys};
use crate::diag::Diagnostics;
use crate::load::model::{BuildConfig, DefOrigin};
use crate::load::yaml::Node;
use serde_json::Value as Json;

const DISTRO_KNOWN: &[&str] = &[
    "inherits",
    "bootstrap",
    "workaround",
    "format",
    "base_user",
    "pacstrap",
    "debootstrap",
    "bootloader",
];
const BUILDER_KNOWN: &[&str] = &[
    "kind",
    "privileged",
    "output_artifact",
    "phase",
    "cache_mount",
    "detect_file",
    "detect_config",
    "stage_template",
    "copy_artifact",
    "copy_binary",
    "env",
    "install_command",
    "manylinux_fix",
    "build_script",
    "path_contribution",
    "runtime_env",
    "inline",
    "install_template",
    "requires_src_dir",
];
const INIT_KNOWN: &[&str] = &[
    "layer_field",
    "layer_file",
    "depends_layer",
    "requires_capability",
    "model",
    "header_file",
    "fragment_dir",
    "stage_header",
    "stage_fragment",
    "stage_unit",
    "assembly_template",
    "entrypoint",
    "management_tool",
    "management_socket",
    "management_cmd",
    "label_key",
    "service_schema",
    "post_assembly_template",
    "enable_template",
    "unit_dir",
    "install_template",
    "service_template",
    "stage_copy",
    "detect_file",
];
const LEGACY_FIELDS: &[(&str, &str)] = &[
    ("base_packages", "`base_package`"),
    ("detect_files", "`detect_file`"),
    ("copy_artifacts", "`copy_artifact`"),
    ("cache_mounts", "`cache_mount`"),
    ("formats", "`format`"),
];

/// Which of the three build.yml maps a root key names.
#[derive(Clone, Copy)]
pub enum Section {
    Distro,
    Builder,
    Init,
}

/// Adds the entries of one `distro:`/`builder:`/`init:` map; first definition wins.
/// `origin` is the remote include the file came from (`None`: the project's own).
pub fn decode(
    cx: &mut Cx,
    out: &mut BuildConfig,
    section: Section,
    node: &Node,
    origin: Option<&DefOrigin>,
) {
    let Some(entries) = node.as_map() else {
        if !node.is_null() {
            cx.error(
                node,
                format!(
                    "must be a map of name to definition, found {}",
                    node.shape()
                ),
            );
        }
        return;
    };
    let (map, known, word) = match section {
        Section::Distro => (&mut out.distros, DISTRO_KNOWN, "distro"),
        Section::Builder => (&mut out.builders, BUILDER_KNOWN, "builder"),
        Section::Init => (&mut out.inits, INIT_KNOWN, "init"),
    };
    for (k, v) in entries {
        let Some(name) = k.as_str() else { continue };
        let what = format!("{word} `{name}`");
        // Unknown keys inside build.yml definitions are only hints: build.yml
        // grows fields faster than any reader, and a template may use them.
        let keys = Keys {
            what: &what,
            known,
            legacy: LEGACY_FIELDS,
            drift: &[],
        };
        // init definitions are template data that grows with every init
        // system; only distro and builder fields are checked.
        if !matches!(section, Section::Init) {
            check_keys(cx, v, &keys);
        }
        if matches!(section, Section::Distro) {
            distro_words(cx, name, v);
        }
        if !map.contains_key(name) {
            map.insert(name.to_string(), v.to_json());
            out.locs.insert(format!("{word}.{name}"), cx.loc(k));
            if let Some(o) = origin {
                out.origins.insert(format!("{word}.{name}"), o.clone());
            }
        }
    }
}

/// Resolves `inherits` (up to 10 deep): a child's keys override its parent's,
/// merged one level down (so `format.deb` can be inherited while
/// `bootstrap` is replaced).
/// Bootstrap package lists reach the builder's bash script and cache
/// mount targets a RUN's flags, unquoted: plain words only.
fn distro_words(cx: &mut Cx, name: &str, v: &Node) {
    for (section, field) in [
        ("debootstrap", "base_package"),
        ("debootstrap", "include_package"),
        ("pacstrap", "base_package"),
        ("pacstrap", "include_package"),
        ("bootstrap", "package"),
    ] {
        if let Some(list) = v.get(section).and_then(|s| s.get(field)) {
            let what = format!("distro.{name}.{section}.{field}");
            super::literal::packages(cx, &what, list);
        }
    }
    for (fmt, def) in v.get("format").and_then(Node::as_map).unwrap_or_default() {
        if let Some(mounts) = def.get("cache_mount") {
            let what = format!(
                "distro.{name}.format.{}.cache_mount",
                fmt.as_str().unwrap_or("?")
            );
            super::literal::one_line(cx, &what, mounts);
        }
    }
}

pub fn resolve_inherits(diags: &mut Diagnostics, out: &mut BuildConfig) {
    let names: Vec<String> = out.distros.keys().cloned().collect();
    for name in names {
        let mut chain = vec![name.clone()];
        let mut merged = out.distros[&name].clone();
        let mut cur = merged
            .get("inherits")
            .and_then(Json::as_str)
            .map(str::to_string);
        while let Some(parent) = cur {
            let at = out.locs.get(&format!("distro.{name}")).cloned();
            if chain.contains(&parent) || chain.len() > 10 {
                chain.push(parent);
                diags.error(
                    at,
                    format!(
                        "distro inheritance cycle or too deep: {}",
                        chain.join(" → ")
                    ),
                );
                break;
            }
            let Some(p) = out.distros.get(&parent) else {
                diags.error(
                    at,
                    format!(
                        "distro `{}` inherits unknown distro `{parent}`{}",
                        chain.last().map(String::as_str).unwrap_or(""),
                        crate::diag::did_you_mean(&parent, out.distros.keys().map(String::as_str))
                    ),
                );
                break;
            };
            chain.push(parent.clone());
            merge_under(&mut merged, p);
            cur = p.get("inherits").and_then(Json::as_str).map(str::to_string);
        }
        if let Json::Object(o) = &mut merged {
            o.remove("inherits");
        }
        out.distros.insert(name, merged);
    }
}

/// Fills `child` with what it lacks from `parent`, two levels deep.
fn merge_under(child: &mut Json, parent: &Json) {
    let (Json::Object(c), Json::Object(p)) = (child, parent) else {
        return;
    };
    for (k, pv) in p {
        match c.get_mut(k) {
            None => {
                c.insert(k.clone(), pv.clone());
            }
            Some(Json::Object(cv)) => {
                if let Json::Object(pvo) = pv {
                    for (k2, v2) in pvo {
                        cv.entry(k2.clone()).or_insert_with(|| v2.clone());
                    }
                }
            }
            Some(_) => {}
        }
    }
}
