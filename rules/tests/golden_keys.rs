//! Golden keys: for every node kind, the canonical bytes of a spec and one
//! full key, pinned. A key changes only on purpose: when one of these
//! fails, either the change was a mistake, or the kind's output really
//! changes for the same inputs, and then its rule version in `kind.rs`
//! is bumped (which changes the key here too) and the values are updated.

use ov_cache::{Digest, TreeDigest};
use ov_rules::rule::{
    bootstrap::BootstrapSpec, eval::EvalSpec, image, layer, preamble, BaseSpec, BootSpec,
    Bootloader, CloudImageSpec, DiskFormat, DiskFrom, DiskSpec, RootFs, SeedSpec, SourceSpec,
    Transport,
};
use ov_rules::{Ingredients, NodeKind, NodeSpec};
use serde_json::json;

/// Checks `spec`'s kind, canonical bytes and key (with one dependency).
fn golden(spec: impl Into<NodeSpec>, kind: NodeKind, bytes: &str, key: &str) {
    let spec = spec.into();
    assert_eq!(spec.kind(), kind);
    let got = String::from_utf8(spec.canonical()).unwrap();
    assert_eq!(got, bytes, "{kind}: canonical spec bytes");
    let mut ing = Ingredients::for_spec(&spec);
    ing.dep("dep:x", &[7; 32]);
    let (k, manifest) = ing.finish();
    let names: Vec<&str> = manifest.entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["rule", "spec", "dep dep:x"]);
    assert_eq!(k.to_string(), key, "{kind}: key");
}

#[test]
fn rule_versions() {
    let tags: Vec<String> = NodeKind::ALL.iter().map(|k| k.domain_tag()).collect();
    assert_eq!(
        tags,
        [
            "ov/source/v1",
            "ov/base/v1",
            "ov/bootstrap/v1",
            "ov/preamble/v1",
            "ov/stage/v2",
            "ov/layer/v2",
            "ov/image/v3",
            "ov/eval/v1",
            "ov/cloud-image/v1",
            "ov/disk/v2",
            "ov/seed/v1",
            "ov/boot/v1",
        ]
    );
}

#[test]
fn source() {
    let mut ing = Ingredients::for_spec(
        &SourceSpec {
            path: "layers/web".into(),
        }
        .into(),
    );
    ing.source("layers/web", TreeDigest::of_bytes(b"tree"));
    // A source key is its tree's digest too.
    assert_eq!(
        ing.finish().0.to_string(),
        "5b594cf3413250c80b1d12749dfb76a6f146c153a623c441e9fdc65d6a8cfcbb"
    );
    golden(
        SourceSpec {
            path: "layers/web".into(),
        },
        NodeKind::Source,
        r#"{"path":"layers/web"}"#,
        "58b403cf6c29f907ec376a2b4386ec92aaab8d764335ee6e911c94ca53bd93fe",
    );
}

#[test]
fn base() {
    golden(
        BaseSpec {
            reference: "quay.io/fedora/fedora:43".into(),
            pinned: Some("sha256:ab12".into()),
        },
        NodeKind::Base,
        r#"{"pinned":"sha256:ab12","ref":"quay.io/fedora/fedora:43"}"#,
        "c9c43fe42207baab140333b2d88b79472960a818d0323d7653298b17728e2a23",
    );
}

#[test]
fn bootstrap() {
    golden(
        BootstrapSpec {
            builder: "debootstrap".into(),
            builder_node: "image:builder".into(),
            builder_def: Some(
                json!({"phase": {"install": {"container": "debootstrap {{.Distro.Debootstrap.Suite}} /r"}}}),
            ),
            distro: Some("debian".into()),
            distro_def: Some(json!({"debootstrap": {"suite": "bookworm"}})),
            source: None,
        },
        NodeKind::Bootstrap,
        r#"{"builder":"debootstrap","builder_def":{"phase":{"install":{"container":"debootstrap {{.Distro.Debootstrap.Suite}} /r"}}},"builder_node":"image:builder","distro":"debian","distro_def":{"debootstrap":{"suite":"bookworm"}}}"#,
        "ce8c78d1152452beb3f58b8fd5b18138472a7c9d29309b1c1cc520b375a098ee",
    );
}

#[test]
fn preamble() {
    golden(
        preamble::PreambleSpec {
            parent: "base:debian:13".into(),
            bootstrap: Some(preamble::Bootstrap {
                distro: "debian".into(),
                install_cmd: "apt-get update && apt-get install -y".into(),
                package: vec!["curl".into(), "ca-certificates".into()],
                cache_mount: vec![preamble::CacheMount {
                    dst: "/var/cache/apt".into(),
                    sharing: Some("locked".into()),
                }],
                workaround: vec![],
            }),
            user: preamble::PreambleUser {
                name: "user".into(),
                uid: 1000,
                gid: 1000,
                home: "/home/user".into(),
                adopted: false,
            },
        },
        NodeKind::Preamble,
        r#"{"bootstrap":{"cache_mount":[{"dst":"/var/cache/apt","sharing":"locked"}],"distro":"debian","install_cmd":"apt-get update && apt-get install -y","package":["curl","ca-certificates"],"workaround":[]},"parent":"base:debian:13","user":{"adopted":false,"gid":1000,"home":"/home/user","name":"user","uid":1000}}"#,
        "b21e2f78505b1bf5b84002155581dcad2cf8ac9d8412325f7fe08bde68a33d1c",
    );
}

fn layer_spec() -> layer::LayerSpec {
    layer::LayerSpec {
        layer: "web".into(),
        parent: "base:quay.io/fedora/fedora:43".into(),
        context: layer::LayerContext {
            distro: vec!["fedora:43".into(), "fedora".into()],
            build: vec!["rpm".into()],
            user: "user".into(),
            uid: 1000,
            gid: 1000,
            home: "/home/user".into(),
            user_policy: "auto".into(),
            build_distro: Some("fedora".into()),
        },
        packages: json!({"rpm": {"package": ["nginx"]}})
            .as_object()
            .cloned()
            .unwrap(),
        formats: json!({"rpm": {"install_template": "RUN dnf install -y{{range .Packages}} {{.}}{{end}}"}})
            .as_object()
            .cloned()
            .unwrap(),
        tasks: vec![json!({"verb": "mkdir", "arg": "/srv", "spec": {"mkdir": "/srv"}})],
        var: [("V".to_string(), "1".to_string())].into_iter().collect(),
        env: [("HOME_DIR".to_string(), "~/x".to_string())].into_iter().collect(),
        path_append: vec!["~/.local/bin".into()],
        stages: Default::default(),
        inline: vec![],
        shell: None,
    }
}

#[test]
fn layer() {
    golden(
        layer_spec(),
        NodeKind::Layer,
        r#"{"context":{"build":["rpm"],"build_distro":"fedora","distro":["fedora:43","fedora"],"gid":1000,"home":"/home/user","uid":1000,"user":"user","user_policy":"auto"},"env":{"HOME_DIR":"~/x"},"formats":{"rpm":{"install_template":"RUN dnf install -y{{range .Packages}} {{.}}{{end}}"}},"inline":[],"layer":"web","packages":{"rpm":{"package":["nginx"]}},"parent":"base:quay.io/fedora/fedora:43","path_append":["~/.local/bin"],"stages":{},"tasks":[{"arg":"/srv","spec":{"mkdir":"/srv"},"verb":"mkdir"}],"var":{"V":"1"}}"#,
        "cb65b9d360f1f93942100c2000b66a6744dad38e41227d37d1280556d4f7dc6c",
    );
}

/// `shell:` is in a layer's spec only when the layer has one, so adding
/// the field left every other layer's key as it was.
#[test]
fn layer_with_shell() {
    let mut spec = layer_spec();
    spec.shell = Some(json!({"init": "echo hi"}));
    golden(
        spec,
        NodeKind::Layer,
        r#"{"context":{"build":["rpm"],"build_distro":"fedora","distro":["fedora:43","fedora"],"gid":1000,"home":"/home/user","uid":1000,"user":"user","user_policy":"auto"},"env":{"HOME_DIR":"~/x"},"formats":{"rpm":{"install_template":"RUN dnf install -y{{range .Packages}} {{.}}{{end}}"}},"inline":[],"layer":"web","packages":{"rpm":{"package":["nginx"]}},"parent":"base:quay.io/fedora/fedora:43","path_append":["~/.local/bin"],"shell":{"init":"echo hi"},"stages":{},"tasks":[{"arg":"/srv","spec":{"mkdir":"/srv"},"verb":"mkdir"}],"var":{"V":"1"}}"#,
        "84c4fc3cb1b39ded4ce395afa4a37f9c4fd04b02b36848ecd8542b39ba39ced9",
    );
}

#[test]
fn stage() {
    let layer = layer_spec();
    golden(
        ov_rules::rule::StageSpec {
            builder: "npm".into(),
            layer: "web".into(),
            builder_node: "image:builder".into(),
            def: json!({
                "detect_file": ["package.json"],
                "stage_template": "FROM {{.BuilderRef}} AS {{.StageName}}\nRUN npm install -g\n",
                "copy_artifact": [{"src": "{{.Home}}", "dst": "{{.Home}}", "chown": true}],
            })
            .as_object()
            .cloned()
            .unwrap(),
            context: layer.context,
            layer_files: vec!["package.json".into()],
            section: None,
        },
        NodeKind::Stage,
        r#"{"builder":"npm","builder_node":"image:builder","context":{"build":["rpm"],"build_distro":"fedora","distro":["fedora:43","fedora"],"gid":1000,"home":"/home/user","uid":1000,"user":"user","user_policy":"auto"},"def":{"copy_artifact":[{"chown":true,"dst":"{{.Home}}","src":"{{.Home}}"}],"detect_file":["package.json"],"stage_template":"FROM {{.BuilderRef}} AS {{.StageName}}\nRUN npm install -g\n"},"layer":"web","layer_files":["package.json"],"section":null}"#,
        "1cd8a6a68e1fdc77e2cc26002159c0f0fca8e3739d882a08d43040ee8738b542",
    );
}

#[test]
fn image() {
    golden(
        image::ImageSpec {
            name: "web".into(),
            parent: "layer:web@web".into(),
            tag: "ghcr.io/acme/web:latest".into(),
            resolved: image::Resolved {
                user: "user".into(),
                uid: 1000,
                gid: 1000,
                home: "/home/user".into(),
                user_adopted: false,
                registry: Some("ghcr.io/acme".into()),
                distro: vec!["fedora:43".into()],
                build: vec!["rpm".into()],
                rest: json!({"name": "web", "tag": "latest"})
                    .as_object()
                    .cloned()
                    .unwrap(),
            },
            init: None,
            init_def: None,
            init_header: None,
            capabilities: image::Capabilities::default(),
            eval: vec![],
            services: vec![],
            meta: Default::default(),
            produce: vec!["web".into()],
            image_eval: vec![],
            label_layers: vec![image::LabelLayer {
                name: "web".into(),
                own: true,
                fields: json!({"port": ["8080"]}).as_object().cloned().unwrap(),
            }],
            env: vec![[("A".to_string(), "1".to_string())].into_iter().collect()],
            port: vec!["8080".into()],
        },
        NodeKind::Image,
        r#"{"capabilities":{"oci_label":{},"preserve_user":false},"env":[{"A":"1"}],"eval":[],"image_eval":[],"init":null,"init_def":null,"init_header":null,"label_layers":[{"name":"web","own":true,"port":["8080"]}],"meta":{},"name":"web","parent":"layer:web@web","port":["8080"],"produce":["web"],"resolved":{"build":["rpm"],"distro":["fedora:43"],"gid":1000,"home":"/home/user","name":"web","registry":"ghcr.io/acme","tag":"latest","uid":1000,"user":"user","user_adopted":false},"services":[],"tag":"ghcr.io/acme/web:latest"}"#,
        "ccd47318e070d3386f1ba87f04b0b25fafc1571732f11c2c5a81261d58817440",
    );
}

#[test]
fn eval() {
    golden(
        EvalSpec {
            checks: vec![json!({"id": "motd", "file": "/etc/motd", "exists": true})],
            distro: vec!["fedora:43".into()],
            build: vec!["rpm".into()],
            image_node: "image:web".into(),
        },
        NodeKind::Eval,
        r#"{"build":["rpm"],"checks":[{"exists":true,"file":"/etc/motd","id":"motd"}],"distro":["fedora:43"],"image_node":"image:web"}"#,
        "0236b1303218f3f27af51baa806721a6a34a38221566fd67f88456e8f561c103",
    );
}

#[test]
fn cloud_image() {
    golden(
        CloudImageSpec {
            url: Some("https://example.org/f.qcow2".into()),
            checksum: Some(json!("sha256:00ff")),
        },
        NodeKind::CloudImage,
        r#"{"checksum":"sha256:00ff","url":"https://example.org/f.qcow2"}"#,
        "3c078edf474865a86d8ffa3c9b823b49bb538e1ed405287fbbd799a43abc8be5",
    );
}

#[test]
fn disk() {
    golden(
        DiskSpec {
            vm: "vm".into(),
            from: DiskFrom::Bootc {
                image_node: "image:app".into(),
                transport: Transport::Registry,
            },
            size: Some(10 << 30),
            rootfs: RootFs::Xfs,
            root_size: None,
            kernel_args: None,
            format: DiskFormat::Qcow2,
        },
        NodeKind::Disk,
        r#"{"format":"qcow2","from":{"image_node":"image:app","kind":"bootc","transport":"registry"},"kernel_args":null,"root_size":null,"rootfs":"xfs","size":10737418240,"vm":"vm"}"#,
        "15839c1256efd24c4516d70dbcd87cea9d99ad623054878d4cc85ce9a532747f",
    );
}

#[test]
fn bootstrap_disk() {
    golden(
        DiskSpec {
            vm: "vm".into(),
            from: DiskFrom::Bootstrap {
                rootfs_node: "bootstrap:vm/vm".into(),
                builder_node: "image:vm-builder".into(),
                bootloader: Bootloader {
                    fstab: Some("f".into()),
                    install: Some("i".into()),
                    initramfs: None,
                },
                ssh_user: Some("debian".into()),
            },
            size: Some(4 << 30),
            rootfs: RootFs::Ext4,
            root_size: None,
            kernel_args: Some("console=ttyS0".into()),
            format: DiskFormat::Raw,
        },
        NodeKind::Disk,
        r#"{"format":"raw","from":{"bootloader":{"fstab":"f","initramfs":null,"install":"i"},"builder_node":"image:vm-builder","kind":"bootstrap","rootfs_node":"bootstrap:vm/vm","ssh_user":"debian"},"kernel_args":"console=ttyS0","root_size":null,"rootfs":"ext4","size":4294967296,"vm":"vm"}"#,
        "63120e7e7635250c581710a5f82abc2c79aaa31e5f4f09b1aa53a82bd34f51ec",
    );
}

#[test]
fn seed() {
    golden(
        SeedSpec {
            hostname: "vm".into(),
            cloud_init: json!({"packages": ["git"]}),
            ssh: json!(null),
            base_user: Some(json!("fedora")),
        },
        NodeKind::Seed,
        r#"{"base_user":"fedora","cloud_init":{"packages":["git"]},"hostname":"vm","ssh":null}"#,
        "d295bad581245ad2e3d49167458e08b7bce06b26c4e5933deb98c08fdb829eb5",
    );
}

#[test]
fn boot() {
    golden(
        BootSpec {
            ram: json!("2G"),
            cpus: json!(2),
            firmware: json!(null),
            machine: json!(null),
            network: json!(null),
            libvirt: json!(null),
            ssh: json!(null),
            eval: json!(null),
            deploy_eval: json!(null),
        },
        NodeKind::Boot,
        r#"{"cpus":2,"deploy_eval":null,"eval":null,"firmware":null,"libvirt":null,"machine":null,"network":null,"ram":"2G","ssh":null}"#,
        "ab0a91ab5d3a32597dcb17c42eb5806811f86230d372d9e9cc64b6cbf07da49f",
    );
}
