//! The synthetic bench project (2,000 layers, 300 images, 20 VMs at scale
//! 1), shared by the foundation and graph-page benchmarks.
#![allow(dead_code)]

use std::fmt::Write as _;
use std::path::Path;

pub const FILES_PER_LAYER: usize = 5;
pub const FILE_SIZE: usize = 4096;
pub const CLUSTER: usize = 8;
pub const MAX_CHAIN: usize = 6;

/// splitmix64: deterministic, dependency-free.
pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    pub fn fill(&mut self, buf: &mut [u8]) {
        for c in buf.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            c.copy_from_slice(&v[..c.len()]);
        }
    }
}

/// How big a project to generate, and how many timed runs.
pub struct Sizes {
    pub layers: usize,
    pub images: usize,
    pub vms: usize,
    pub runs: usize,
}

/// Sizes from `OV_BENCH_SCALE` and `OV_BENCH_RUNS`.
pub fn sizes() -> Sizes {
    let scale: f64 = std::env::var("OV_BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|s: &f64| *s > 0.0)
        .unwrap_or(1.0);
    let n = |full: f64, min: usize| ((full * scale).round() as usize).max(min);
    Sizes {
        layers: n(2000.0, 16),
        images: n(300.0, 6),
        vms: n(20.0, 2),
        runs: std::env::var("OV_BENCH_RUNS")
            .ok()
            .and_then(|s| s.parse().ok())
            .filter(|r| *r > 0)
            .unwrap_or(15),
    }
}

pub fn layer_name(i: usize) -> String {
    format!("l{i:04}")
}

pub fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// Writes the synthetic project into `root` (deterministic: fixed seed).
pub fn generate(root: &Path, sz: &Sizes) {
    let mut rng = Rng(0x0f00_ba11_2026_0141);
    write(
        &root.join("overthink.yml"),
        "version: 2026.141.1600\n\
         include: [image.yml, vm.yml, build.yml]\n\
         discover:\n  layer:\n    - path: layers\n      recursive: true\n\
         defaults:\n  registry: localhost/bench\n  build: [deb]\n  distro: [debian]\n",
    );
    write(
        &root.join("build.yml"),
        "version: 2026.141.1600\n\
         distro:\n  debian:\n    format:\n      deb:\n        install_template: \"RUN apt-get install -y{{range .Packages}} {{.}}{{end}}\"\n",
    );

    // Layers: `require` stays inside a cluster of CLUSTER consecutive layers
    // and points only at lower numbers, so closures stay small and acyclic.
    let mut data = vec![0u8; FILE_SIZE];
    for i in 0..sz.layers {
        let name = layer_name(i);
        let dir = root.join("layers").join(&name);
        std::fs::create_dir_all(&dir).unwrap();
        let cluster = i - i % CLUSTER;
        let mut req: Vec<usize> = Vec::new();
        if i > cluster {
            for _ in 0..rng.below(3) {
                let r = cluster + rng.below(i - cluster);
                if !req.contains(&r) {
                    req.push(r);
                }
            }
        }
        req.sort_unstable();
        let mut y = String::new();
        writeln!(y, "layer:").unwrap();
        writeln!(y, "  name: {name}").unwrap();
        writeln!(y, "  version: \"1.{}\"", rng.below(10)).unwrap();
        writeln!(y, "  description: synthetic layer {i}").unwrap();
        if !req.is_empty() {
            let r: Vec<String> = req.iter().map(|r| layer_name(*r)).collect();
            writeln!(y, "  require: [{}]", r.join(", ")).unwrap();
        }
        writeln!(y, "  package:").unwrap();
        for p in 0..1 + rng.below(3) {
            writeln!(y, "    - pkg-{name}-{p}").unwrap();
        }
        writeln!(y, "  env:\n    {}_HOME: /opt/{name}", name.to_uppercase()).unwrap();
        writeln!(y, "  task:").unwrap();
        for f in 0..FILES_PER_LAYER {
            writeln!(
                y,
                "    - copy: data{f}.bin\n      to: /opt/{name}/data{f}.bin\n      mode: \"0644\"\n      user: root"
            )
            .unwrap();
        }
        writeln!(y, "    - cmd: \"test -d /opt/{name}\"").unwrap();
        std::fs::write(dir.join("layer.yml"), y).unwrap();
        for f in 0..FILES_PER_LAYER {
            rng.fill(&mut data);
            std::fs::write(dir.join(format!("data{f}.bin")), &data).unwrap();
        }
    }

    // Images: chains of 1..=MAX_CHAIN images, each chain rooted on an
    // external base. Every layer is listed by some image (a shuffled
    // permutation cut into slices), plus a couple of random extras.
    let mut perm: Vec<usize> = (0..sz.layers).collect();
    for i in (1..perm.len()).rev() {
        perm.swap(i, rng.below(i + 1));
    }
    let per = sz.layers.div_ceil(sz.images);
    let mut y = String::from("version: 2026.141.1600\nimage:\n");
    let mut chain_left = 0;
    let mut leaves = Vec::new();
    for j in 0..sz.images {
        let name = format!("img{j:03}");
        writeln!(y, "  {name}:").unwrap();
        if chain_left == 0 {
            chain_left = 1 + rng.below(MAX_CHAIN);
            writeln!(y, "    base: docker.io/library/debian:bookworm").unwrap();
        } else {
            writeln!(y, "    base: img{:03}", j - 1).unwrap();
        }
        chain_left -= 1;
        if chain_left == 0 {
            leaves.push(name.clone());
        }
        let mut ls: Vec<usize> = perm.iter().skip(j * per).take(per).copied().collect();
        for _ in 0..2 {
            let extra = rng.below(sz.layers);
            if !ls.contains(&extra) {
                ls.push(extra);
            }
        }
        let ls: Vec<String> = ls.iter().map(|l| layer_name(*l)).collect();
        writeln!(y, "    layer: [{}]", ls.join(", ")).unwrap();
        if rng.below(4) == 0 {
            writeln!(y, "    port: [\"{}:8080\"]", 8000 + j).unwrap();
        }
    }
    write(&root.join("image.yml"), &y);

    // VMs: half cloud images, half bootc disks of leaf images.
    let mut y = String::from("version: 2026.141.1600\nvm:\n");
    for v in 0..sz.vms {
        writeln!(y, "  vm{v:02}:").unwrap();
        if v % 2 == 0 {
            let mut hex = String::new();
            for _ in 0..4 {
                write!(hex, "{:016x}", rng.next()).unwrap();
            }
            writeln!(
                y,
                "    source:\n      kind: cloud_image\n      url: https://example.org/images/cloud-{v:02}.qcow2\n      checksum: {{type: sha256, value: \"{hex}\"}}\n      base_user: debian"
            )
            .unwrap();
        } else {
            let img = &leaves[rng.below(leaves.len())];
            writeln!(
                y,
                "    source:\n      kind: bootc\n      image: {img}\n      rootfs: xfs"
            )
            .unwrap();
        }
        writeln!(y, "    disk_size: 20G\n    ram: 2G\n    cpus: 2").unwrap();
    }
    write(&root.join("vm.yml"), &y);
}
