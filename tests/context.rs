//! What a layer directory may hold, as the build context the engine gets:
//! sparse files are sent as plain data.

use crate::build::{built_ok, ov_for};
use crate::util::{local_fixture, Project};
use std::path::Path;
use std::process::Command;

/// Copies layer `a`'s file `name` into the image and checks it there with
/// `check` (an eval command that must exit 0).
fn copy_into_image(p: &Project, name: &str, check: &str) {
    p.append(
        "layers/a/layer.yml",
        &format!("    - copy: {name}\n      to: /opt/a/{name}\n      mode: \"0644\"\n"),
    );
    p.edit(
        "image.yml",
        "            - {id: b-env,",
        &format!(
            "            - {{id: copied, command: '{check}', exit_status: 0}}\n            - {{id: b-env,"
        ),
    );
}

fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn a_sparse_file_in_a_layer_dir_is_built_into_the_image_whole() {
    // 4 MiB with a hole at the start, data in the middle and a hole at the
    // end: the tar writer must send every byte, holes as zeros.
    let p = Project::copy_of(&local_fixture("deb-tasks"));
    let path = p.path().join("layers/a/sparse.bin");
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = std::fs::File::create(&path).unwrap();
        f.seek(SeekFrom::Start(2 << 20)).unwrap();
        f.write_all(b"data in the middle").unwrap();
        f.set_len(4 << 20).unwrap();
    }
    let sum = sha256(&path);
    copy_into_image(
        &p,
        "sparse.bin",
        &format!(
            "test \"$(stat -c %s /opt/a/sparse.bin)\" = {} && echo \"{sum}  /opt/a/sparse.bin\" | sha256sum -c",
            4 << 20
        ),
    );
    let b = built_ok(&ov_for(p.path()));
    assert_eq!(b.nodes("built").len(), 4, "{:?}", b.events);
}
