//! The `org.overthinkos.*` labels of an image node, as ov's generator
//! writes them (`Generator.writeLabels` in ov's `generate.go`): the same
//! names, the same order, and values encoded as ov encodes them, so a tool
//! that reads ov's labels (`ExtractMetadata` in ov's `labels.go`) reads
//! ours.
//!
//! Two encodings. Scalar labels (`version`, `image`, `uid`, …) are plain
//! text. JSON labels are what Go's `json.Marshal` makes of ov's types:
//! struct fields in declaration order, `omitempty` fields left out when
//! empty, map keys sorted, compact, with `<`, `>`, `&`, U+2028 and U+2029
//! written as `\u…` escapes; a label whose JSON is `null`, `[]` or `{}` is
//! not written at all (`writeJSONLabel`). The typed structs below mirror
//! ov's (field order included) for exactly that reason.
//!
//! What ov derives from the image's "layer order" (services, env
//! contracts, port protocols, env_layers, layer versions…) comes from the
//! layers the image installs itself, not those its base image already has:
//! ov computes that order with the parent's layers removed, and the
//! parent's own labels reach the child through `FROM`.

use super::shell::ShellConfig;
use super::{RenderError, SpecView, User};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};
use std::collections::BTreeMap;

/// The label namespace.
pub(super) const NS: &str = "org.overthinkos";

/// ov's `LabelSchemaVersion`.
const SCHEMA_VERSION: &str = "1";

/// A layer as the labels see it: the layer.yml fields ov's labels are made
/// of, under their layer.yml names. One per layer of the image's closure,
/// in install order (spec `label_layers`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct LayerFacts {
    pub name: String,
    /// True for layers this image installs itself (not its base chain).
    pub own: bool,
    #[serde(deserialize_with = "de_opt_text")]
    pub version: Option<String>,
    pub port: Vec<Json>,
    pub volume: Vec<VolumeDecl>,
    pub security: Option<Security>,
    pub port_relay: Vec<i64>,
    pub secret: Vec<SecretDecl>,
    pub env_provide: BTreeMap<String, String>,
    pub env_require: Vec<EnvDependency>,
    pub env_accept: Vec<EnvDependency>,
    pub secret_require: Vec<EnvDependency>,
    pub secret_accept: Vec<EnvDependency>,
    pub mcp_provide: Vec<McpServer>,
    pub mcp_require: Vec<EnvDependency>,
    pub mcp_accept: Vec<EnvDependency>,
    pub route: Option<RouteDecl>,
    pub env: BTreeMap<String, String>,
    pub path_append: Vec<String>,
    pub shell: Option<ShellConfig>,
    pub data: Vec<DataDecl>,
    pub service: Vec<Map<String, Json>>,
    pub eval: Vec<Json>,
    pub description: Option<Json>,
}

/// The layer.yml fields the labels read (besides `port`, `env`,
/// `path_append`, `service`, `eval` and `shell`, checked elsewhere).
pub const LABEL_FIELDS: &[&str] = &[
    "version",
    "volume",
    "security",
    "port_relay",
    "secret",
    "env_provide",
    "env_require",
    "env_accept",
    "secret_require",
    "secret_accept",
    "mcp_provide",
    "mcp_require",
    "mcp_accept",
    "route",
    "data",
    "description",
];

/// Whether a layer.yml label field has the shape its label needs, so a
/// wrong one is refused where it is written, not when the image builds.
pub fn check_label_field(key: &str, value: &Json) -> Result<(), String> {
    let mut fields = Map::new();
    fields.insert(key.to_string(), value.clone());
    serde_json::from_value::<LayerFacts>(Json::Object(fields))
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// layer.yml `volume:` entry.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct VolumeDecl {
    #[serde(deserialize_with = "de_text")]
    pub name: String,
    #[serde(deserialize_with = "de_text")]
    pub path: String,
}

/// layer.yml `data:` entry.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct DataDecl {
    #[serde(deserialize_with = "de_text")]
    pub volume: String,
    #[serde(deserialize_with = "de_text")]
    pub dest: String,
}

/// layer.yml `route:`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct RouteDecl {
    #[serde(deserialize_with = "de_text")]
    pub host: String,
    pub port: Json,
}

/// layer.yml `secret:` entry.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct SecretDecl {
    #[serde(deserialize_with = "de_text")]
    pub name: String,
    #[serde(deserialize_with = "de_text")]
    pub target: String,
    #[serde(deserialize_with = "de_text")]
    pub env: String,
}

/// ov's `EnvDependency` (layers.go): `description` has no `omitempty`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub(super) struct EnvDependency {
    #[serde(deserialize_with = "de_text")]
    pub name: String,
    #[serde(deserialize_with = "de_text")]
    pub description: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    #[serde(deserialize_with = "de_text")]
    pub default: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    #[serde(deserialize_with = "de_text")]
    pub key: String,
}

/// ov's `MCPServerYAML` (layers.go).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub(super) struct McpServer {
    #[serde(deserialize_with = "de_text")]
    pub name: String,
    #[serde(deserialize_with = "de_text")]
    pub url: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    #[serde(deserialize_with = "de_text")]
    pub transport: String,
}

/// ov's `SecurityConfig` (config.go), in its field order. Read with its
/// YAML names (`mount`), written with its JSON names (`mounts`).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub(super) struct Security {
    #[serde(skip_serializing_if = "is_false")]
    pub privileged: bool,
    #[serde(rename = "cgroupns", skip_serializing_if = "String::is_empty")]
    #[serde(deserialize_with = "de_text")]
    pub cgroup_ns: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cap_add: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub security_opt: Vec<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    #[serde(deserialize_with = "de_text")]
    pub ipc_mode: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    #[serde(deserialize_with = "de_text")]
    pub shm_size: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub group_add: Vec<String>,
    #[serde(
        alias = "mount",
        rename(serialize = "mounts"),
        skip_serializing_if = "Vec::is_empty"
    )]
    pub mounts: Vec<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    #[serde(deserialize_with = "de_text")]
    pub memory_max: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    #[serde(deserialize_with = "de_text")]
    pub memory_high: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    #[serde(deserialize_with = "de_text")]
    pub memory_swap_max: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    #[serde(deserialize_with = "de_text")]
    pub cpus: String,
}

/// A YAML scalar as text (`default: 8080` is the string `8080`, as Go's
/// YAML decoder gives it to a string field).
fn de_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    use serde::de::Error;
    match Json::deserialize(d)? {
        Json::Null => Ok(String::new()),
        v => super::scalar_text(&v).ok_or_else(|| D::Error::custom("expected a string")),
    }
}

fn de_opt_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    de_text(d).map(|s| Some(s).filter(|s| !s.is_empty()))
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// ov's `LabelVolume`.
#[derive(Serialize)]
struct LabelVolume<'a> {
    name: &'a str,
    path: String,
}

/// ov's `LabelRoute`.
#[derive(Serialize)]
struct LabelRoute<'a> {
    host: &'a str,
    port: i64,
}

/// ov's `LabelSecret`: name, target, env.
#[derive(Serialize)]
struct LabelSecret<'a> {
    name: &'a str,
    target: String,
    #[serde(skip_serializing_if = "str::is_empty")]
    env: &'a str,
}

/// ov's `LabelDataEntry`.
#[derive(Serialize)]
struct LabelDataEntry<'a> {
    volume: &'a str,
    staging: String,
    layer: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    dest: &'a str,
}

/// ov's `CapabilityService` (labels.go), in its field order.
#[derive(Serialize)]
struct CapabilityService {
    name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    scope: String,
    #[serde(skip_serializing_if = "is_false")]
    enable: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    use_packaged: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    exec: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    env: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    restart: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    working_directory: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    user: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    after: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    before: Vec<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    stdout: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    stop_timeout: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    kind: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    events: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    auto_start: Option<bool>,
    #[serde(skip_serializing_if = "is_zero")]
    start_retries: i64,
    #[serde(skip_serializing_if = "is_zero")]
    start_sec: i64,
    #[serde(skip_serializing_if = "String::is_empty")]
    stop_signal: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    exit_code: String,
    #[serde(skip_serializing_if = "is_zero")]
    priority: i64,
    #[serde(skip_serializing_if = "String::is_empty")]
    init: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    layer: String,
}

/// ov's `ShellEntry` (labels.go).
#[derive(Serialize)]
struct ShellEntry<'a> {
    origin: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    generic: Option<super::shell::ShellSpec>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    by_shell: BTreeMap<String, super::shell::ShellSpec>,
    #[serde(skip_serializing_if = "is_zero")]
    priority: i64,
}

/// ov's `LabelShellSet` / `LabelEvalSet`: three sections by origin.
#[derive(Serialize)]
struct Sections<T: Serialize> {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    layer: Vec<T>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    image: Vec<T>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    deploy: Vec<T>,
}

/// Go's `json.Marshal` text of `v`, or `None` where ov's `writeJSONLabel`
/// writes no label (`null`, `[]`, `{}`).
pub(super) fn go_json<T: Serialize>(v: &T) -> Option<String> {
    let s = serde_json::to_string(v).ok()?;
    if matches!(s.as_str(), "null" | "[]" | "{}") {
        return None;
    }
    // Go's encoder escapes these for HTML safety; they can only occur
    // inside JSON strings, so replacing them keeps the JSON's meaning.
    Some(
        s.replace('<', "\\u003c")
            .replace('>', "\\u003e")
            .replace('&', "\\u0026")
            .replace('\u{2028}', "\\u2028")
            .replace('\u{2029}', "\\u2029"),
    )
}

/// `v` with every map's keys sorted. Spec maps keep the order they were
/// written in, but a node's key hashes them sorted: label text built from
/// raw maps must not depend on an order the key does not see.
fn sorted(v: &Json) -> Json {
    match v {
        Json::Object(m) => {
            let by_key: BTreeMap<&String, Json> = m.iter().map(|(k, v)| (k, sorted(v))).collect();
            Json::Object(by_key.into_iter().map(|(k, v)| (k.clone(), v)).collect())
        }
        Json::Array(a) => Json::Array(a.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

/// Everything the labels are made of, read from an image spec.
pub(super) struct LabelInput<'a> {
    pub name: &'a str,
    pub user: &'a User,
    pub registry: Option<&'a str>,
    pub preserve_user: bool,
    pub oci_label: Option<&'a Map<String, Json>>,
    pub distro: Vec<String>,
    pub formats: Vec<String>,
    pub builder: BTreeMap<String, String>,
    pub produce: Vec<String>,
    /// Image config: `port`, `env`, `network`, `data_image`, `description`.
    pub meta: Option<&'a Map<String, Json>>,
    /// The active init and its build.yml `label_key`.
    pub init: Option<(&'a str, Option<&'a str>)>,
    /// The image's own `eval:` checks.
    pub image_eval: Vec<Json>,
    /// The URL of the image's skill page, if the project has one.
    pub skills: Option<&'a str>,
    pub layers: Vec<LayerFacts>,
}

impl<'a> LabelInput<'a> {
    /// Reads the label inputs of an image spec: `resolved` (`registry`,
    /// `distro`, `build`, `builder`), `produce`, `meta`, `capabilities`,
    /// `init`, `init_def.label_key`, `image_eval` and `label_layers`.
    pub(super) fn read(
        view: &SpecView<'a>,
        name: &'a str,
        user: &'a User,
    ) -> Result<Self, RenderError> {
        let resolved = view.object("resolved")?;
        let r = |k: &str| resolved.and_then(|r| r.get(k)).filter(|v| !v.is_null());
        let strings = |k: &str| -> Result<Vec<String>, RenderError> {
            match r(k) {
                None => Ok(Vec::new()),
                Some(v) => serde_json::from_value(v.clone())
                    .map_err(|e| view.err(format!("`resolved.{k}` must list strings: {e}"))),
            }
        };
        let builder: BTreeMap<String, String> = match r("builder") {
            None => BTreeMap::new(),
            Some(v) => serde_json::from_value(v.clone()).map_err(|e| {
                view.err(format!("`resolved.builder` must map format to image: {e}"))
            })?,
        };
        let caps = view.object("capabilities")?;
        let init = match view.opt_str("init")? {
            None => None,
            Some(i) => Some((
                i,
                view.object("init_def")?
                    .and_then(|d| d.get("label_key"))
                    .and_then(Json::as_str)
                    .filter(|k| !k.is_empty()),
            )),
        };
        let layers = view
            .array("label_layers")?
            .iter()
            .map(|l| {
                serde_json::from_value::<LayerFacts>(l.clone()).map_err(|e| {
                    let n = l.get("name").and_then(Json::as_str).unwrap_or("?");
                    view.err(format!(
                        "layer `{n}`: a label field has the wrong shape: {e}"
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(LabelInput {
            name,
            user,
            registry: r("registry")
                .and_then(Json::as_str)
                .filter(|s| !s.is_empty()),
            preserve_user: caps
                .and_then(|c| c.get("preserve_user"))
                .and_then(Json::as_bool)
                .unwrap_or(false),
            oci_label: caps
                .and_then(|c| c.get("oci_label"))
                .and_then(Json::as_object),
            distro: strings("distro")?,
            formats: strings("build")?,
            builder,
            produce: view
                .array("produce")?
                .iter()
                .map(|v| {
                    super::scalar_text(v).ok_or_else(|| view.err("`produce` must list strings"))
                })
                .collect::<Result<_, _>>()?,
            meta: view.object("meta")?,
            init,
            image_eval: view.array("image_eval")?.to_vec(),
            skills: view.opt_str("skills")?,
            layers,
        })
    }

    fn own(&self) -> impl Iterator<Item = &LayerFacts> {
        self.layers.iter().filter(|l| l.own)
    }

    fn meta(&self, key: &str) -> Option<&Json> {
        self.meta.and_then(|m| m.get(key)).filter(|v| !v.is_null())
    }
}

/// `~/x` and `$HOME` against the image's home (ov's `ExpandPath`).
pub(super) fn expand_path(p: &str, home: &str) -> String {
    let p = match p.strip_prefix("~/") {
        Some(rest) => format!("{home}/{rest}"),
        None if p == "~" => home.to_string(),
        None => p.to_string(),
    };
    p.replace("$HOME", home)
}

/// A scalar as Go's `fmt.Sprint` of a YAML scalar would give it.
fn text(v: &Json) -> String {
    super::scalar_text(v).unwrap_or_default()
}

/// ov's `PortSpec` of a layer `port:` entry: `8080` is http, `tcp:2222` is
/// tcp on 2222.
fn port_spec(v: &Json) -> Option<(i64, String)> {
    let s = text(v);
    match s.split_once(':') {
        Some((proto, port)) => Some((port.trim().parse().ok()?, proto.to_string())),
        None => Some((s.trim().parse().ok()?, "http".to_string())),
    }
}

/// A status word out of a `description:` block's `tag` list (ov's
/// `resolveStatusFromTags`): working, testing or broken, else testing.
fn status_of(description: Option<&Json>) -> &'static str {
    let tags = description
        .and_then(|d| d.get("tag"))
        .and_then(Json::as_array)
        .cloned()
        .unwrap_or_default();
    for t in tags {
        match t.as_str() {
            Some("working") => return "working",
            Some("testing") => return "testing",
            Some("broken") => return "broken",
            _ => {}
        }
    }
    "testing"
}

/// The human-facing line of a `description:` block (ov's
/// `descriptionInfo`): `feature: narrative`, or whichever one is set.
fn info_of(description: Option<&Json>) -> Option<String> {
    let text = |k: &str| {
        description
            .and_then(|d| d.get(k))
            .and_then(Json::as_str)
            .filter(|s| !s.is_empty())
    };
    match (text("feature"), text("narrative")) {
        (Some(f), Some(n)) => Some(format!("{f}: {n}")),
        (Some(t), None) | (None, Some(t)) => Some(t.to_string()),
        (None, None) => None,
    }
}

fn worse(a: &'static str, b: &'static str) -> &'static str {
    let rank = |s: &str| match s {
        "broken" => 2,
        "testing" => 1,
        _ => 0,
    };
    if rank(b) > rank(a) {
        b
    } else {
        a
    }
}

/// ov's `sortedEnvDeps` over a name-keyed merge in which a later layer wins.
fn env_deps<'l>(
    layers: impl Iterator<Item = &'l LayerFacts>,
    pick: fn(&LayerFacts) -> &Vec<EnvDependency>,
) -> Vec<EnvDependency> {
    let mut by_name: BTreeMap<String, EnvDependency> = BTreeMap::new();
    for l in layers {
        for d in pick(l) {
            by_name.insert(d.name.clone(), d.clone());
        }
    }
    by_name.into_values().collect()
}

fn service_text(s: &Map<String, Json>, keys: &[&str]) -> String {
    keys.iter()
        .find_map(|k| s.get(*k).filter(|v| !v.is_null()).map(text))
        .unwrap_or_default()
}

fn service_int(s: &Map<String, Json>, keys: &[&str]) -> i64 {
    keys.iter()
        .find_map(|k| {
            let v = s.get(*k)?;
            v.as_i64().or_else(|| v.as_str()?.parse().ok())
        })
        .unwrap_or(0)
}

fn service_list(s: &Map<String, Json>, key: &str) -> Vec<String> {
    match s.get(key) {
        Some(Json::Array(a)) => a.iter().map(text).collect(),
        Some(Json::Null) | None => Vec::new(),
        Some(v) => vec![text(v)],
    }
}

fn capability_service(s: &Map<String, Json>, init: &str, layer: &str) -> CapabilityService {
    let scope = service_text(s, &["scope"]);
    let env = match s.get("env") {
        Some(Json::Object(m)) => m.iter().map(|(k, v)| (k.clone(), text(v))).collect(),
        _ => BTreeMap::new(),
    };
    let exit_code = match s.get("exit_code").or(s.get("exit_codes")) {
        Some(Json::Array(a)) => a.iter().map(text).collect::<Vec<_>>().join(","),
        Some(v) => text(v),
        None => String::new(),
    };
    CapabilityService {
        name: service_text(s, &["name"]),
        // ov's `EffectiveScope`: system unless the entry says otherwise.
        scope: if scope.is_empty() {
            "system".into()
        } else {
            scope
        },
        enable: s.get("enable").and_then(Json::as_bool).unwrap_or(false),
        use_packaged: service_text(s, &["use_packaged"]),
        exec: service_text(s, &["exec"]),
        env,
        restart: service_text(s, &["restart"]),
        working_directory: service_text(s, &["working_directory"]),
        user: service_text(s, &["user"]),
        after: service_list(s, "after"),
        before: service_list(s, "before"),
        stdout: service_text(s, &["stdout"]),
        stop_timeout: service_text(s, &["stop_timeout"]),
        kind: service_text(s, &["kind"]),
        events: service_text(s, &["events"]),
        auto_start: s
            .get("auto_start")
            .and_then(|v| v.as_bool().or_else(|| v.as_str()?.parse().ok())),
        start_retries: service_int(s, &["start_retries"]),
        start_sec: service_int(s, &["start_sec", "start_secs"]),
        stop_signal: service_text(s, &["stop_signal"]),
        exit_code,
        priority: service_int(s, &["priority"]),
        init: init.to_string(),
        layer: layer.to_string(),
    }
}

/// The labels, in the order `writeLabels` writes them, as (key, value).
pub(super) fn labels(input: &LabelInput) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut put = |k: &str, v: String| out.push((k.to_string(), v));
    let ns = |k: &str| format!("{NS}.{k}");
    let json = |put: &mut dyn FnMut(&str, String), k: &str, v: Option<String>| {
        if let Some(v) = v {
            put(&ns(k), v);
        }
    };
    let user = input.user;
    let home = user.home.as_str();
    put(&ns("version"), SCHEMA_VERSION.into());
    put(&ns("image"), input.name.into());
    put(&ns("uid"), user.uid.to_string());
    put(&ns("gid"), user.gid.to_string());
    put(&ns("user"), user.name.clone());
    put(&ns("home"), user.home.clone());
    if let Some(r) = input.registry {
        put(&ns("registry"), r.into());
    }
    if input.preserve_user {
        put(&ns("bootc"), "true".into());
    }
    if let Some(extra) = input.oci_label {
        // BTreeMap: sorted, as ov sorts the keys.
        let sorted: BTreeMap<&String, String> = extra.iter().map(|(k, v)| (k, text(v))).collect();
        for (k, v) in sorted {
            put(k, v);
        }
    }
    if let Some(n) = input.meta("network").map(text).filter(|n| !n.is_empty()) {
        put(&ns("network"), n);
    }
    json(&mut put, "platform.distro", go_json(&input.distro));
    json(&mut put, "platform.formats", go_json(&input.formats));
    json(&mut put, "builder.uses", go_json(&input.builder));
    json(&mut put, "builder.provides", go_json(&input.produce));
    let ports: Vec<String> = match input.meta("port") {
        Some(Json::Array(a)) => a.iter().map(text).collect(),
        Some(v) => vec![text(v)],
        None => Vec::new(),
    };
    json(&mut put, "ports", go_json(&ports));
    let mut protos: BTreeMap<String, String> = BTreeMap::new();
    for l in input.own() {
        for (port, proto) in l.port.iter().filter_map(port_spec) {
            if !proto.is_empty() && proto != "http" {
                protos.insert(port.to_string(), proto);
            }
        }
    }
    json(&mut put, "port_protos", go_json(&protos));
    // Volumes of the whole chain, first declaration of a name wins.
    let mut volumes: Vec<LabelVolume> = Vec::new();
    for l in &input.layers {
        for v in &l.volume {
            if !volumes.iter().any(|x| x.name == v.name) {
                volumes.push(LabelVolume {
                    name: &v.name,
                    path: expand_path(&v.path, home),
                });
            }
        }
    }
    json(&mut put, "volumes", go_json(&volumes));
    let security = merged_security(input.layers.iter());
    let s = &security;
    if s.privileged
        || !s.cgroup_ns.is_empty()
        || !s.cap_add.is_empty()
        || !s.devices.is_empty()
        || !s.security_opt.is_empty()
        || !s.group_add.is_empty()
        || !s.shm_size.is_empty()
        || !s.mounts.is_empty()
    {
        json(&mut put, "security", go_json(s));
    }
    json(
        &mut put,
        "env",
        input.meta("env").map(sorted).and_then(|v| go_json(&v)),
    );
    let layer_checks: Vec<Json> = input.own().flat_map(|l| &l.eval).map(sorted).collect();
    let checks = Sections {
        layer: layer_checks,
        image: input.image_eval.iter().map(sorted).collect(),
        deploy: Vec::new(),
    };
    json(&mut put, "eval", go_json(&checks));
    let shells: Vec<ShellEntry> = input
        .own()
        .filter_map(|l| {
            let cfg = l.shell.as_ref()?;
            let generic = cfg.generic();
            Some(ShellEntry {
                origin: &l.name,
                id: &l.name,
                generic: (!generic.is_empty()).then_some(generic),
                by_shell: cfg.by_shell.clone(),
                priority: cfg.priority,
            })
        })
        .collect();
    let shell_set = Sections {
        layer: shells,
        image: Vec::new(),
        deploy: Vec::new(),
    };
    json(&mut put, "shell", go_json(&shell_set));
    if let Some((init, label_key)) = input.init {
        put(&ns("init"), init.into());
        let with_services: Vec<&str> = input
            .own()
            .filter(|l| !l.service.is_empty())
            .map(|l| l.name.as_str())
            .collect();
        if let (Some(k), Some(v)) = (label_key, go_json(&with_services)) {
            put(k, v);
        }
        let services: Vec<CapabilityService> = input
            .own()
            .flat_map(|l| {
                l.service
                    .iter()
                    .map(move |s| capability_service(s, init, &l.name))
            })
            .collect();
        json(&mut put, "services", go_json(&services));
    }
    let relay: Vec<i64> = input
        .own()
        .flat_map(|l| l.port_relay.iter().copied())
        .collect();
    json(&mut put, "port_relay", go_json(&relay));
    let mut secrets: Vec<LabelSecret> = Vec::new();
    for l in input.own() {
        for s in &l.secret {
            if secrets.iter().any(|x| x.name == s.name && x.env == s.env) {
                continue;
            }
            secrets.push(LabelSecret {
                name: &s.name,
                target: if s.target.is_empty() {
                    format!("/run/secrets/{}", s.name)
                } else {
                    s.target.clone()
                },
                env: &s.env,
            });
        }
    }
    json(&mut put, "secrets", go_json(&secrets));
    let provides: BTreeMap<&String, &String> =
        input.own().flat_map(|l| l.env_provide.iter()).collect();
    json(&mut put, "env_provides", go_json(&provides));
    json(
        &mut put,
        "env_requires",
        go_json(&env_deps(input.own(), |l| &l.env_require)),
    );
    json(
        &mut put,
        "env_accepts",
        go_json(&env_deps(input.own(), |l| &l.env_accept)),
    );
    json(
        &mut put,
        "secret_requires",
        go_json(&env_deps(input.own(), |l| &l.secret_require)),
    );
    json(
        &mut put,
        "secret_accepts",
        go_json(&env_deps(input.own(), |l| &l.secret_accept)),
    );
    let mut mcp: BTreeMap<&str, &McpServer> = BTreeMap::new();
    for l in input.own() {
        for m in &l.mcp_provide {
            mcp.insert(&m.name, m);
        }
    }
    let mcp: Vec<&McpServer> = mcp.into_values().collect();
    json(&mut put, "mcp_provides", go_json(&mcp));
    json(
        &mut put,
        "mcp_requires",
        go_json(&env_deps(input.own(), |l| &l.mcp_require)),
    );
    json(
        &mut put,
        "mcp_accepts",
        go_json(&env_deps(input.own(), |l| &l.mcp_accept)),
    );
    let routes: Vec<LabelRoute> = input
        .own()
        .filter_map(|l| l.route.as_ref())
        .map(|r| LabelRoute {
            host: &r.host,
            port: text(&r.port).trim().parse().unwrap_or(0),
        })
        .collect();
    json(&mut put, "routes", go_json(&routes));
    let with_env: Vec<&LayerFacts> = input
        .own()
        .filter(|l| !l.env.is_empty() || !l.path_append.is_empty())
        .collect();
    if !with_env.is_empty() {
        let mut vars: BTreeMap<&String, &String> = BTreeMap::new();
        let mut path: Vec<&String> = Vec::new();
        for l in with_env {
            vars.extend(l.env.iter());
            path.extend(l.path_append.iter());
        }
        json(&mut put, "env_layers", go_json(&vars));
        json(&mut put, "path_append", go_json(&path));
    }
    if let Some(url) = input.skills {
        put(&ns("skills"), url.into());
    }
    // Status is the worst of the image's and its own layers'; info joins
    // the image's with that of each own layer not marked working.
    let image_info = info_of(input.meta("description"));
    let mut status = status_of(input.meta("description"));
    let mut info: Vec<String> = image_info.into_iter().collect();
    for l in input.own() {
        let layer_status = status_of(l.description.as_ref());
        status = worse(status, layer_status);
        if let Some(i) = info_of(l.description.as_ref()).filter(|_| layer_status != "working") {
            info.push(format!("{}: {i}", l.name));
        }
    }
    put(&ns("status"), status.into());
    if !info.is_empty() {
        put(&ns("info"), info.join("; "));
    }
    let versions: BTreeMap<&str, &str> = input
        .own()
        .filter_map(|l| {
            Some((
                l.name.as_str(),
                l.version.as_deref().filter(|v| !v.is_empty())?,
            ))
        })
        .collect();
    json(&mut put, "layer_versions", go_json(&versions));
    let mut data: Vec<LabelDataEntry> = Vec::new();
    for l in &input.layers {
        for d in &l.data {
            let mut staging = format!("/data/{}/", d.volume);
            if !d.dest.is_empty() {
                staging.push_str(&d.dest);
                if !staging.ends_with('/') {
                    staging.push('/');
                }
            }
            data.push(LabelDataEntry {
                volume: &d.volume,
                staging,
                layer: &l.name,
                dest: &d.dest,
            });
        }
    }
    json(&mut put, "data", go_json(&data));
    if input.meta("data_image").and_then(Json::as_bool) == Some(true) {
        put(&ns("data_image"), "true".into());
    }
    out
}

/// The layers' `security:` blocks merged: flags OR-ed, lists unioned in
/// order, single values from the last layer that sets one.
fn merged_security<'l>(layers: impl Iterator<Item = &'l LayerFacts>) -> Security {
    let mut m = Security::default();
    let union = |into: &mut Vec<String>, from: &[String]| {
        for x in from {
            if !into.contains(x) {
                into.push(x.clone());
            }
        }
    };
    let last = |into: &mut String, from: &str| {
        if !from.is_empty() {
            *into = from.to_string();
        }
    };
    for s in layers.filter_map(|l| l.security.as_ref()) {
        m.privileged |= s.privileged;
        last(&mut m.cgroup_ns, &s.cgroup_ns);
        union(&mut m.cap_add, &s.cap_add);
        union(&mut m.devices, &s.devices);
        union(&mut m.security_opt, &s.security_opt);
        last(&mut m.ipc_mode, &s.ipc_mode);
        last(&mut m.shm_size, &s.shm_size);
        union(&mut m.group_add, &s.group_add);
        union(&mut m.mounts, &s.mounts);
        last(&mut m.memory_max, &s.memory_max);
        last(&mut m.memory_high, &s.memory_high);
        last(&mut m.memory_swap_max, &s.memory_swap_max);
        last(&mut m.cpus, &s.cpus);
    }
    m
}
