//! The four shared fixtures (`../shared/fixtures`, see its README), with
//! every figure pinned. The numbers were checked by hand against DESIGN.md's
//! node kinds:
//!
//! - one `source` node per layer directory some image installs (metalayers
//!   that are only expanded have none),
//! - one `base` node per distinct external ref,
//! - one `preamble` node per external base, distro bootstrap and user
//!   (every fixture image on `quay.io/fedora/fedora:43` has the default
//!   user, so one each),
//! - one `layer` node per layer application, shared by every image with the
//!   same parent + layer + render context (this is how ov's
//!   auto-intermediate images fall out of the graph),
//! - one `image` node per image,
//! - one `eval` node per image with build-scope checks (its own `eval:` and
//!   those of the layers it installs, minus `scope: deploy`),
//! - `cloud-image`, `disk`, `seed`, `boot` for a cloud_image VM; `disk` and
//!   `boot` for a bootc VM (a `seed` only when it has `cloud_init`).
//!
//! Install orders are ours, not ov's: we order each image's own closure
//! (topological, ties by the order written in the image, then by name),
//! where ov uses one global popularity order and re-bases images onto
//! auto-intermediates. The closures (as sets) must match ov's; where the
//! order or the install list differs, a comment says how.

use crate::util::{shared_fixture, Graph, Ov, Project};
use std::collections::BTreeSet;

struct Golden {
    fixture: &'static str,
    /// `ov image validate`'s summary line.
    validate: &'static str,
    /// Warnings `ov image validate` prints (each a whole stderr line).
    warnings: &'static [&'static str],
    /// `ov image list`, line by line (build order).
    list: &'static [&'static str],
    nodes: usize,
    edges: usize,
    /// Node count per kind, sorted by kind.
    kinds: &'static [(&'static str, usize)],
    /// Per image: our install order, and ov's closure as a set (the README's
    /// "closure" column).
    images: &'static [(
        &'static str,
        &'static [&'static str],
        &'static [&'static str],
    )],
    /// Images that get an `eval` node.
    evals: &'static [&'static str],
}

fn check(g: &Golden) {
    let ov = Ov::new(&shared_fixture(g.fixture));

    let v = ov.ok(&["image", "validate"]);
    assert_eq!(v.stdout.trim_end(), g.validate, "{}: validate", g.fixture);
    let warnings: Vec<&str> = v.stderr.lines().collect();
    assert_eq!(warnings, g.warnings, "{}: validate warnings", g.fixture);

    let list = ov.ok(&["image", "list"]);
    assert_eq!(list.lines(), g.list, "{}: image list", g.fixture);

    let graph = ov.graph(&[]);
    let kinds: Vec<(String, usize)> = g.kinds.iter().map(|(k, n)| (k.to_string(), *n)).collect();
    assert_eq!(graph.kinds(), kinds, "{}: nodes per kind", g.fixture);
    assert_eq!(graph.nodes.len(), g.nodes, "{}: node count", g.fixture);
    assert_eq!(graph.edges.len(), g.edges, "{}: edge count", g.fixture);

    // The same figures, derived from the resolved images rather than pinned.
    let mut used_layers = BTreeSet::new();
    let mut external = BTreeSet::new();
    for (name, install, ov_closure) in g.images {
        let img = ov.inspect(name);
        let strings = |k: &str| -> Vec<String> {
            img[k]
                .as_array()
                .unwrap_or_else(|| panic!("{name}: no `{k}` in {img}"))
                .iter()
                .map(|s| s.as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(
            strings("install"),
            *install,
            "{}: install order of {name}",
            g.fixture
        );
        // No fixture image installs a layer its base chain already has, so
        // closure == install here.
        assert_eq!(
            strings("closure"),
            *install,
            "{}: closure of {name}",
            g.fixture
        );
        let ours: BTreeSet<String> = strings("closure").into_iter().collect();
        let ovs: BTreeSet<String> = ov_closure.iter().map(|s| s.to_string()).collect();
        assert_eq!(
            ours, ovs,
            "{}: closure of {name} must match ov's as a set",
            g.fixture
        );
        used_layers.extend(strings("install"));
        if img["base"]["kind"] == "external" {
            external.insert(img["base"]["ref"].as_str().unwrap().to_string());
        }
        assert_eq!(
            layer_chain(&graph, name),
            *install,
            "{}: the layer nodes under image:{name} apply its install list in order",
            g.fixture
        );
    }
    assert_eq!(
        graph.ids_of("source").len(),
        used_layers.len(),
        "{}: one source per used layer dir",
        g.fixture
    );
    assert_eq!(
        graph.ids_of("base").len(),
        external.len(),
        "{}: one base per external ref",
        g.fixture
    );
    let want: BTreeSet<String> = external.iter().map(|r| format!("base:{r}")).collect();
    assert_eq!(graph.ids_of("base"), want, "{}", g.fixture);
    assert_eq!(
        graph.ids_of("image").len(),
        g.images.len(),
        "{}: one image node per image",
        g.fixture
    );
    let evals: BTreeSet<String> = g.evals.iter().map(|i| format!("eval:{i}")).collect();
    assert_eq!(graph.ids_of("eval"), evals, "{}: eval nodes", g.fixture);
    for e in &evals {
        let img = e.replacen("eval:", "image:", 1);
        assert_eq!(
            graph.deps(e),
            BTreeSet::from([img]),
            "{}: {e} checks its image",
            g.fixture
        );
    }
    // Every layer node hashes exactly one layer directory.
    for l in graph.ids_of("layer") {
        let sources = graph
            .deps(&l)
            .into_iter()
            .filter(|d| d.starts_with("source:"))
            .count();
        assert_eq!(sources, 1, "{}: {l} has one source", g.fixture);
    }
}

/// The layers applied under `image:NAME` back to its direct base, walking
/// the parent edge of each layer node (the dep that is not a source).
fn layer_chain(graph: &Graph, image: &str) -> Vec<String> {
    let kind = |id: &str| id.split(':').next().unwrap().to_string();
    let parent = |id: &str| -> Option<String> {
        let ps: Vec<String> = graph
            .deps(id)
            .into_iter()
            .filter(|d| kind(d) != "source")
            .collect();
        assert!(ps.len() <= 1, "{id} has several parents: {ps:?}");
        ps.into_iter().next()
    };
    let mut out = Vec::new();
    let mut cur = parent(&format!("image:{image}"));
    while let Some(id) = cur.filter(|id| kind(id) == "layer") {
        let name = id["layer:".len()..].rsplit_once('@').unwrap().0.to_string();
        out.push(name);
        cur = parent(&id);
    }
    out.reverse();
    out
}

#[test]
fn eval_beds() {
    check(&Golden {
        fixture: "eval-beds",
        validate: "ok: 4 images, 4 layers, 0 vms",
        // ov-format §1.5 lists service `autostart` as drift to warn about;
        // see regression::drift_service_autostart_warns.
        warnings: &[
            "layers/eval-deploy-layer/layer.yml:28:18: warning: layer `eval-deploy-layer`: service key `autostart` is read as `auto_start`",
            "layers/eval-pod-layer/layer.yml:30:18: warning: layer `eval-pod-layer`: service key `autostart` is read as `auto_start`",
        ],
        list: &["eval-deploy", "eval-image", "eval-layer", "eval-pod"],
        // 4 source + 1 base + 1 preamble + 4 layer (eval-image-layer applied
        // once, shared by all four images) + 4 image + 4 eval.
        nodes: 18,
        // 4 source→layer, base→preamble→eval-image-layer, eval-image-layer→3
        // layers and image:eval-image, 3 layer→image, 4 image→eval.
        edges: 17,
        kinds: &[
            ("base", 1),
            ("eval", 4),
            ("image", 4),
            ("layer", 4),
            ("preamble", 1),
            ("source", 4),
        ],
        // ov re-bases eval-layer/eval-pod/eval-deploy onto eval-image and
        // installs only their second layer; we install both and share the
        // eval-image-layer node instead. Closures and their order agree.
        images: &[
            ("eval-image", &["eval-image-layer"], &["eval-image-layer"]),
            (
                "eval-layer",
                &["eval-image-layer", "eval-layer-layer"],
                &["eval-image-layer", "eval-layer-layer"],
            ),
            (
                "eval-pod",
                &["eval-image-layer", "eval-pod-layer"],
                &["eval-image-layer", "eval-pod-layer"],
            ),
            (
                "eval-deploy",
                &["eval-image-layer", "eval-deploy-layer"],
                &["eval-image-layer", "eval-deploy-layer"],
            ),
        ],
        evals: &["eval-deploy", "eval-image", "eval-layer", "eval-pod"],
    });
}

#[test]
fn pods() {
    check(&Golden {
        fixture: "pods",
        validate: "ok: 5 images, 5 layers, 0 vms",
        warnings: &[],
        list: &["fedora", "os", "redis-client", "redis-server", "web"],
        // 5 source + 1 base + 1 preamble + 5 layer (supervisord once on
        // image:fedora, shared by the four pods: ov's auto-intermediate
        // fedora-supervisord) + 5 image + 4 eval (fedora has no checks).
        nodes: 21,
        // 5 source→layer, base→preamble→fedora, fedora→supervisord,
        // supervisord→4 layers, 4 layer→image, 4 image→eval.
        edges: 20,
        kinds: &[
            ("base", 1),
            ("eval", 4),
            ("image", 5),
            ("layer", 5),
            ("preamble", 1),
            ("source", 5),
        ],
        // ov installs only the second layer of each pod, on its
        // auto-intermediate fedora-supervisord; same closures and order.
        images: &[
            ("fedora", &[], &[]),
            (
                "os",
                &["supervisord", "os-layer"],
                &["supervisord", "os-layer"],
            ),
            (
                "web",
                &["supervisord", "web-layer"],
                &["supervisord", "web-layer"],
            ),
            (
                "redis-server",
                &["supervisord", "redis-server-layer"],
                &["supervisord", "redis-server-layer"],
            ),
            (
                "redis-client",
                &["supervisord", "redis-client-layer"],
                &["supervisord", "redis-client-layer"],
            ),
        ],
        evals: &["os", "redis-client", "redis-server", "web"],
    });
}

#[test]
fn base_stack() {
    check(&Golden {
        fixture: "base-stack",
        validate: "ok: 3 images, 8 layers, 1 vms",
        warnings: &[
            "vm.yml:17:9: warning: vm `vm`: `cpu` is read as `cpus` (ov itself ignores `cpu`)",
            "vm.yml:37:24: warning: vm `vm`: `libvirt.device` is read as `libvirt.devices` (ov itself ignores `device`)",
        ],
        list: &["fedora", "fedora-nonfree", "nvidia"],
        // 7 source (agent-forwarding is only expanded) + 1 base + 1 preamble
        // + 7 layer + 3 image + 1 eval (nvidia) + cloud-image, disk, seed,
        // boot.
        nodes: 24,
        // 7 source→layer, base→preamble→fedora, fedora→rpmfusion→fedora-nonfree,
        // fedora-nonfree→gnupg, 5 between nvidia's 6 layers, cuda→nvidia,
        // nvidia→eval, and cloud-image→disk, disk→boot, seed→boot.
        edges: 22,
        kinds: &[
            ("base", 1),
            ("boot", 1),
            ("cloud-image", 1),
            ("disk", 1),
            ("eval", 1),
            ("image", 3),
            ("layer", 7),
            ("preamble", 1),
            ("seed", 1),
            ("source", 7),
        ],
        images: &[
            ("fedora", &[], &[]),
            ("fedora-nonfree", &["rpmfusion"], &["rpmfusion"]),
            // Ours: agent-forwarding expanded in place (gnupg, direnv,
            // ssh-client, its written order), then nvidia, then cuda's
            // require ffmpeg before cuda. ov's global order is direnv,
            // ffmpeg, gnupg, nvidia, cuda, ssh-client.
            (
                "nvidia",
                &["gnupg", "direnv", "ssh-client", "nvidia", "ffmpeg", "cuda"],
                &["direnv", "ffmpeg", "gnupg", "nvidia", "cuda", "ssh-client"],
            ),
        ],
        evals: &["nvidia"],
    });
}

#[test]
fn base_stack_cloud_image_vm_has_no_image_edge() {
    let graph = Ov::new(&shared_fixture("base-stack")).graph(&[]);
    assert_eq!(
        graph.deps("disk:vm"),
        BTreeSet::from(["cloud-image:vm".to_string()])
    );
    assert_eq!(
        graph.deps("boot:vm"),
        BTreeSet::from(["disk:vm".to_string(), "seed:vm".to_string()])
    );
    assert!(graph.deps("cloud-image:vm").is_empty());
    assert!(graph.deps("seed:vm").is_empty());
}

#[test]
fn bootc() {
    check(&Golden {
        fixture: "bootc",
        validate: "ok: 1 images, 4 layers, 1 vms",
        warnings: &[
            "vm.yml:12:9: warning: vm `bootc-demo-vm`: `cpu` is read as `cpus` (ov itself ignores `cpu`)",
        ],
        list: &["bootc-demo"],
        // 3 source (bootc-base is only expanded) + 1 base + 1 preamble + 3
        // layer + 1 image + 1 eval (sshd's build-scope checks) + disk + boot
        // (no cloud_init, so no seed).
        nodes: 12,
        // 3 source→layer, base→preamble→sshd→qemu-guest-agent→bootc-config→
        // image, image→eval, image→disk→boot.
        edges: 11,
        kinds: &[
            ("base", 1),
            ("boot", 1),
            ("disk", 1),
            ("eval", 1),
            ("image", 1),
            ("layer", 3),
            ("preamble", 1),
            ("source", 3),
        ],
        // Ours: bootc-base's members in their written order. ov's global
        // order is bootc-config, qemu-guest-agent, sshd (ties by name).
        images: &[(
            "bootc-demo",
            &["sshd", "qemu-guest-agent", "bootc-config"],
            &["bootc-config", "qemu-guest-agent", "sshd"],
        )],
        evals: &["bootc-demo"],
    });
}

#[test]
fn bootc_vm_disk_is_built_from_the_image() {
    let graph = Ov::new(&shared_fixture("bootc")).graph(&[]);
    assert!(graph.has_edge("image:bootc-demo", "disk:bootc-demo-vm"));
    assert_eq!(
        graph.deps("disk:bootc-demo-vm"),
        BTreeSet::from(["image:bootc-demo".to_string()])
    );
    assert_eq!(
        graph.deps("boot:bootc-demo-vm"),
        BTreeSet::from(["disk:bootc-demo-vm".to_string()])
    );
    assert!(!graph.ids().contains("seed:bootc-demo-vm"));
}

#[test]
fn shared_prefixes_are_one_node() {
    // ov's auto-intermediates: a layer applied on the same parent in the same
    // context is one node whichever image asks for it.
    let g = Ov::new(&shared_fixture("pods")).graph(&[]);
    let sup: Vec<_> = g
        .ids_of("layer")
        .into_iter()
        .filter(|i| i.starts_with("layer:supervisord@"))
        .collect();
    assert_eq!(sup.len(), 1, "{sup:?}");
    for pod in ["os", "web", "redis-server", "redis-client"] {
        assert_eq!(layer_chain(&g, pod)[0], "supervisord");
        assert!(
            g.ancestors(&format!("image:{pod}")).contains(&sup[0]),
            "{pod}"
        );
    }
    let g = Ov::new(&shared_fixture("eval-beds")).graph(&[]);
    let eil: Vec<_> = g
        .ids_of("layer")
        .into_iter()
        .filter(|i| i.starts_with("layer:eval-image-layer@"))
        .collect();
    assert_eq!(eil.len(), 1, "{eil:?}");
    for img in ["eval-image", "eval-layer", "eval-pod", "eval-deploy"] {
        assert!(
            g.ancestors(&format!("image:{img}")).contains(&eil[0]),
            "{img}"
        );
    }
}

// The same rules on the mini project, where each can be switched on and off.

#[test]
fn bootc_vm_with_cloud_init_gets_a_seed() {
    let p = Project::mini();
    let g = Ov::new(p.path()).graph(&[]);
    assert!(!g.ids().contains("seed:app-vm"));
    assert_eq!(
        g.deps("boot:app-vm"),
        BTreeSet::from(["disk:app-vm".to_string()])
    );
    p.append("vm.yml", "    cloud_init: {package: [qemu-guest-agent]}\n");
    let g = Ov::new(p.path()).graph(&[]);
    assert_eq!(
        g.deps("boot:app-vm"),
        BTreeSet::from(["disk:app-vm".to_string(), "seed:app-vm".to_string()])
    );
    assert_eq!(
        g.deps("disk:app-vm"),
        BTreeSet::from(["image:app".to_string()])
    );
}

#[test]
fn deploy_scope_checks_get_no_eval_node() {
    let p = Project::mini();
    assert!(Ov::new(p.path()).graph(&[]).ids().contains("eval:app"));
    p.edit(
        "layers/web/layer.yml",
        "exists: true}",
        "exists: true, scope: deploy}",
    );
    let g = Ov::new(p.path()).graph(&[]);
    assert!(g.ids_of("eval").is_empty(), "{:?}", g.ids_of("eval"));
    // An image's own build-scope check brings it back.
    p.append(
        "image.yml",
        "    eval:\n      - {id: motd, file: /etc/hello.txt, exists: true}\n",
    );
    let g = Ov::new(p.path()).graph(&[]);
    assert_eq!(g.ids_of("eval"), BTreeSet::from(["eval:app".to_string()]));
}

#[test]
fn checks_of_layers_the_base_already_has_are_not_repeated() {
    // base-os installs web (and so greeting); app on base-os adds nothing of
    // its own, so only base-os checks nginx.
    let p = Project::mini();
    p.edit(
        "image.yml",
        "    distro: [fedora:43, fedora]\n",
        "    distro: [fedora:43, fedora]\n    layer: [web]\n",
    );
    let ov = Ov::new(p.path());
    assert_eq!(ov.inspect("app")["install"], serde_json::json!([]));
    assert_eq!(
        ov.inspect("app")["closure"],
        serde_json::json!(["greeting", "web"])
    );
    let g = ov.graph(&[]);
    assert_eq!(
        g.ids_of("eval"),
        BTreeSet::from(["eval:base-os".to_string()])
    );
    assert_eq!(
        g.deps("image:app"),
        BTreeSet::from(["image:base-os".to_string()])
    );
}
