//! Golden keys: for every node kind, the canonical bytes of a spec and one
//! full key, pinned. A key changes only on purpose: when one of these
//! fails, either the change was a mistake, or the kind's output really
//! changes for the same inputs, and then its rule version in `kind.rs`
//! is bumped (which changes the key here too) and the values are updated.

use ov_cache::{Digest, TreeDigest};
use ov_rules::rule::cloud_image::Checksum;
use ov_rules::rule::{
    bootstrap::BootstrapSpec, eval::EvalSpec, image, layer, preamble, BaseSpec, BootSpec,
    Bootloader, CloudImageSpec, DiskFormat, DiskFrom, DiskSpec, RootFs, SeedSpec, SourceSpec,
    Transport,
};
use ov_rules::vm::cloud_init::CloudInit;
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
            "ov/bootstrap/v2",
            "ov/preamble/v2",
            "ov/stage/v3",
            "ov/layer/v3",
            "ov/image/v5",
            "ov/eval/v1",
            "ov/cloud-image/v2",
            "ov/disk/v2",
            "ov/seed/v2",
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
        "ff20e99eb3f66e4955e7aea984e898ba3f206ae58e8127aa1121093c17cfb56a",
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
        "dab36e617d51112a20d890a6c52ceda91acdecffa5655e6f94c10640aed21a76",
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
            .unwrap()
            .into(),
        formats: json!({"rpm": {"install_template": "RUN dnf install -y{{range .Packages}} {{.}}{{end}}"}})
            .as_object()
            .cloned()
            .unwrap()
            .into(),
        tasks: vec![ov_rules::CanonicalJson::new(&json!({"verb": "mkdir", "arg": "/srv", "spec": {"mkdir": "/srv"}}))].into(),
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
        "d975fd06d8d1fb2f7767e5fbaa3f930add8fb9675f01c053db316df345470fcf",
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
        "3567935593088ab1d6093db49ae86cffb66d499ed41b92db520a3ebef580eb7f",
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
        "d8b554428ec05da9d8b45f512c53d2bacffebf7f98fa1af0e3bdb5293e9e7251",
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
            skills: None,
            produce: vec!["web".into()],
            image_eval: vec![],
            label_layers: vec![image::LabelLayer {
                name: "web".into(),
                own: true,
                fields: json!({"port": ["8080"]})
                    .as_object()
                    .cloned()
                    .unwrap()
                    .into(),
            }],
            env: vec![[("A".to_string(), "1".to_string())].into_iter().collect()],
            port: vec!["8080".into()],
        },
        NodeKind::Image,
        r#"{"capabilities":{"oci_label":{},"preserve_user":false},"env":[{"A":"1"}],"eval":[],"image_eval":[],"init":null,"init_def":null,"init_header":null,"label_layers":[{"name":"web","own":true,"port":["8080"]}],"meta":{},"name":"web","parent":"layer:web@web","port":["8080"],"produce":["web"],"resolved":{"build":["rpm"],"distro":["fedora:43"],"gid":1000,"home":"/home/user","name":"web","registry":"ghcr.io/acme","tag":"latest","uid":1000,"user":"user","user_adopted":false},"services":[],"tag":"ghcr.io/acme/web:latest"}"#,
        "d315c964c606540792bc354084c15cb2df6dd57bffa7a45ebb7232699110d2d6",
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
    // v2: the image is fetched, verified and stored (v1 only failed).
    golden(
        CloudImageSpec {
            url: "https://example.org/f.qcow2".into(),
            checksum: Checksum::Sha256("00ff".into()),
        },
        NodeKind::CloudImage,
        r#"{"checksum":{"sha256":"00ff"},"url":"https://example.org/f.qcow2"}"#,
        "be3c19b6a05d2bb282d9d6eae71c26dfa0bd2d93bad546e7ff0e63b71284e3e6",
    );
    golden(
        CloudImageSpec {
            url: "https://example.org/f.qcow2".into(),
            checksum: Checksum::Sidecar,
        },
        NodeKind::CloudImage,
        r#"{"checksum":"sidecar","url":"https://example.org/f.qcow2"}"#,
        "10039996eaab54772c25f960604da05ec2758a4d45af4c400ff81e2e619770ca",
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
    // v2: the seed ISO is rendered and written (v1 only failed).
    golden(
        SeedSpec {
            vm: "vm".into(),
            cloud_init: CloudInit {
                package: vec!["git".into()],
                ..Default::default()
            },
            ssh_user: Some("fedora".into()),
            base_user: Some("fedora".into()),
            distro: None,
            authorized_key: Some("ssh-ed25519 AAAA".into()),
        },
        NodeKind::Seed,
        r#"{"authorized_key":"ssh-ed25519 AAAA","base_user":"fedora","cloud_init":{"package":["git"]},"distro":null,"ssh_user":"fedora","vm":"vm"}"#,
        "7e502091bb7c03eb08f5ff030dbbeb36147cf43fe3d9f7acf251242f4dd307ef",
    );
}

#[test]
fn boot() {
    golden(
        BootSpec {
            vm: "vm".into(),
            ram_mib: 2048,
            cpus: 2,
            firmware: ov_rules::rule::boot::spec::Firmware::UefiInsecure,
            machine: None,
            disk_size: Some(10 << 30),
            nic_model: None,
            port_forwards: vec![],
            ssh: ov_rules::rule::boot::spec::SshAccess {
                user: "ov".into(),
                port: 2222,
                key: ov_rules::rule::boot::spec::KeySource::Generate,
            },
            graphics: vec![],
            video: vec![],
            ready: ov_rules::rule::boot::spec::Ready {
                console: None,
                timeout_s: 600,
            },
            checks: vec![json!({"command": "true"})],
            seed: true,
        },
        NodeKind::Boot,
        r#"{"checks":[{"command":"true"}],"cpus":2,"disk_size":10737418240,"firmware":"uefi-insecure","graphics":[],"machine":null,"nic_model":null,"port_forwards":[],"ram_mib":2048,"ready":{"console":null,"timeout_s":600},"seed":true,"ssh":{"key":"generate","port":2222,"user":"ov"},"video":[],"vm":"vm"}"#,
        "3b3eac6dc29b150f860214e272aa39272d6c7c729d592c3cc1be75d23ea4ca0f",
    );
}

#[test]
fn engine_platform() {
    // Every kind that makes an engine image hashes the engine's platform;
    // pinned like the specs, since it is part of those keys.
    let key = |major: &str| {
        let mut ing = Ingredients::for_spec(&layer_spec().into());
        ing.engine(&ov_rules::engine::EnginePlatform {
            kind: "podman".into(),
            major: major.into(),
            os: "linux".into(),
            arch: "amd64".into(),
        });
        let (k, m) = ing.finish();
        assert_eq!(m.entries.last().unwrap().name, "engine");
        k.to_string()
    };
    assert_eq!(
        key("4"),
        "d0f165dd2d29a81ce0047ccd4fa7d26d8bec09dc38298d18f0d0134ff10e6fdf"
    );
    assert_ne!(key("4"), key("5"));
}
