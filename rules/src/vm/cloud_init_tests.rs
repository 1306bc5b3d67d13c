//! Golden renders. The expected text is what ov's `RenderCloudInit`
//! marshals for the same spec (keys sorted as Go sorts map keys, the same
//! defaults), written with this emitter's indentation.

use super::*;
use proptest::prelude::*;

const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKey";

fn cx<'a>(ssh_user: Option<&'a str>, base_user: Option<&'a str>) -> Context<'a> {
    Context {
        ssh_user,
        base_user,
        distro: None,
        authorized_key: Some(KEY),
        instance_id: "iid-1",
    }
}

/// The shared fixture's cloud-image VM: base_user fedora adopted, the key
/// merged into it, ov's minimum packages and sshd command first.
#[test]
fn adopting_the_base_user_adds_only_the_key() {
    let ci = CloudInit {
        package: vec!["qemu-guest-agent".into(), "curl".into()],
        runcmd: vec![
            "setenforce 0 || true".into(),
            "echo '10.89.0.1 ov-web' >> /etc/hosts".into(),
        ],
        ..Default::default()
    };
    let r = render(&ci, &cx(Some("fedora"), Some("fedora"))).unwrap();
    assert_eq!(
        r.user_data,
        "#cloud-config
packages:
  - openssh
  - curl
  - tar
  - qemu-guest-agent
runcmd:
  - systemctl enable --now sshd
  - setenforce 0 || true
  - \"echo '10.89.0.1 ov-web' >> /etc/hosts\"
users:
  - default
  - name: fedora
    ssh_authorized_keys:
      - ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKey
"
    );
    assert_eq!(r.meta_data, "instance-id: iid-1\n");
    assert_eq!(r.network_config, None);
}

/// A user that is not the image's own is created with sudo, wheel and
/// bash; Debian names the ssh package and unit differently; hostname,
/// timezone, locale, bootcmd, write_files, mirrors and network come out
/// under cloud-init's names.
#[test]
fn a_new_ssh_user_and_every_field() {
    let ci = CloudInit {
        hostname: Some("web-1".into()),
        timezone: Some("UTC".into()),
        locale: Some("en_US.UTF-8".into()),
        users: vec![User {
            name: "ops".into(),
            sudo: true,
            groups: vec!["docker".into()],
            shell: Some("/bin/zsh".into()),
            lock_passwd: Some(false),
        }],
        bootcmd: vec!["echo early".into()],
        write_files: vec![WriteFile {
            path: "/etc/motd".into(),
            content: "hello\nworld\n".into(),
            owner: Some("root:root".into()),
            perms: Some("0644".into()),
            encoding: None,
        }],
        network: Some(Network {
            version: None,
            ethernets: [("eth0".to_string(), serde_json::json!({"dhcp4": true}))]
                .into_iter()
                .collect(),
        }),
        mirrors: Some(Mirrors {
            apt: vec!["http://deb.example/debian".into()],
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut c = cx(Some("admin"), None);
    c.distro = Some("debian");
    let r = render(&ci, &c).unwrap();
    assert_eq!(
        r.user_data,
        "#cloud-config
apt:
  preserve_sources_list: false
  primary:
    - arches:
        - default
      uri: \"http://deb.example/debian\"
bootcmd:
  - echo early
hostname: web-1
locale: en_US.UTF-8
packages:
  - openssh-server
  - curl
  - tar
runcmd:
  - systemctl enable --now ssh
timezone: UTC
users:
  - default
  - groups:
      - docker
    lock_passwd: false
    name: ops
    shell: /bin/zsh
    sudo: \"ALL=(ALL) NOPASSWD:ALL\"
  - groups:
      - wheel
    name: admin
    shell: /bin/bash
    ssh_authorized_keys:
      - ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKey
    sudo: \"ALL=(ALL) NOPASSWD:ALL\"
write_files:
  - content: |
      hello
      world
    owner: \"root:root\"
    path: /etc/motd
    permissions: \"0644\"
"
    );
    assert_eq!(r.meta_data, "instance-id: iid-1\nlocal-hostname: web-1\n");
    assert_eq!(
        r.network_config.as_deref(),
        Some("ethernets:\n  eth0:\n    dhcp4: true\nversion: 2\n")
    );
}

/// A declared user named like the SSH user gets the key; no key (none, or
/// injection off) means no `ssh_authorized_keys`; no SSH user adds no
/// entry.
#[test]
fn the_key_goes_to_the_declared_ssh_user_or_nowhere() {
    let ci = CloudInit {
        users: vec![User {
            name: "dev".into(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let r = render(&ci, &cx(Some("dev"), None)).unwrap();
    assert!(r.user_data.contains(
        "users:\n  - default\n  - name: dev\n    ssh_authorized_keys:\n      - ssh-ed25519"
    ));
    let mut none = cx(Some("dev"), None);
    none.authorized_key = None;
    let r = render(&ci, &none).unwrap();
    assert!(
        !r.user_data.contains("ssh_authorized_keys"),
        "{}",
        r.user_data
    );
    let r = render(&CloudInit::default(), &cx(None, None)).unwrap();
    assert!(
        r.user_data.contains("users:\n  - default\n"),
        "{}",
        r.user_data
    );
    assert!(!r.user_data.contains("name:"), "{}", r.user_data);
}

/// `ov_install.strategy: url` downloads ov at first boot; the URL is a
/// single shell word whatever it holds.
#[test]
fn ov_install_url_is_quoted_for_the_shell() {
    let ci = CloudInit {
        ov_install: Some(OvInstall {
            strategy: Some("url".into()),
            url: Some("https://h/ov';reboot;'".into()),
            checksum: Some(format!("sha256:{}", "a".repeat(64))),
        }),
        ..Default::default()
    };
    let r = render(&ci, &cx(None, None)).unwrap();
    let doc = &YamlLoader::load_from_str(&r.user_data).unwrap()[0];
    let cmds: Vec<&str> = doc["runcmd"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|y| y.as_str().unwrap())
        .collect();
    assert_eq!(
        cmds[1],
        r"curl -fL 'https://h/ov'\'';reboot;'\''' -o /usr/local/bin/ov"
    );
    assert_eq!(cmds[2], "chmod +x /usr/local/bin/ov");
    assert!(cmds[3].starts_with(&format!(
        "echo '{}  /usr/local/bin/ov' | sha256sum",
        "a".repeat(64)
    )));
}

/// `extra:` follows as a second document, keys as written.
#[test]
fn extra_is_a_second_document() {
    let ci = CloudInit {
        extra: Some(serde_json::json!({"ssh_pwauth": false, "final_message": "up"})),
        ..Default::default()
    };
    let r = render(&ci, &cx(None, None)).unwrap();
    assert!(
        r.user_data
            .ends_with("\n---\nssh_pwauth: false\nfinal_message: up\n"),
        "{}",
        r.user_data
    );
    assert_eq!(YamlLoader::load_from_str(&r.user_data).unwrap().len(), 2);
}

#[test]
fn instance_ids_are_stable_uuids_per_instance_and_spec() {
    let a = instance_id("ov-web", b"spec");
    assert_eq!(a, instance_id("ov-web", b"spec"));
    assert_ne!(a, instance_id("ov-web-two", b"spec"));
    assert_ne!(a, instance_id("ov-web", b"spec2"));
    assert_eq!(a.len(), 36);
    assert_eq!(&a[14..15], "4", "{a}");
}

proptest! {
    /// Whatever text vm.yml gives, it comes back from the rendered YAML as
    /// the same string in the same place: no value can add a key or an
    /// item, and no quoting slip changes a command.
    #[test]
    fn strings_survive_the_emitter(
        cmd in any::<String>(),
        content in "(?s).{0,40}",
        host in "[ -~]{0,20}",
    ) {
        let ci = CloudInit {
            hostname: Some(host.clone()),
            runcmd: vec![cmd.clone()],
            write_files: vec![WriteFile {
                path: "/x".into(),
                content: content.clone(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let r = render(&ci, &cx(Some("u"), None)).unwrap();
        let doc = &YamlLoader::load_from_str(&r.user_data).unwrap()[0];
        prop_assert_eq!(doc["runcmd"][1].as_str(), Some(cmd.as_str()));
        prop_assert_eq!(doc["write_files"][0]["content"].as_str(), Some(content.as_str()));
        if !host.is_empty() {
            prop_assert_eq!(doc["hostname"].as_str(), Some(host.as_str()));
        }
        prop_assert_eq!(doc.as_hash().unwrap().len(), if host.is_empty() { 4 } else { 5 });
    }
}
