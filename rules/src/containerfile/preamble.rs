//! The preamble of an image on an external base, as ov's generator writes
//! it right after `FROM <base>` (`writeBootstrap`): the distro's bootstrap
//! packages (`curl ca-certificates gnupg` on Debian), the image user and
//! group, and `WORKDIR` the user's home. Images on an internal base get it
//! from their base image; bootstrapped rootfs images (`from: builder:…`)
//! get none, as in ov.
//!
//! Two differences, both said in BUILD.md: ov's RUN goes on to download the
//! latest `task` binary from GitHub, which nothing of a build uses and no
//! key could cover; and a last RUN checks that the account at the uid is
//! the one planned (ov instead reads the base image's `/etc/passwd` from
//! its registry and takes over whatever account it finds there).

use super::accept::{has_control, is_home_path, is_package_name, is_user_name};
use super::quote::sh_sq;
use super::{RenderError, RenderOpts, Rendered, Steps};
use crate::rule::PreambleSpec;
use crate::template::{cache_mount_flag, cache_sharing};

/// ov's line continuation inside a RUN.
const NEXT: &str = " \\\n    ";

/// Renders the preamble's steps.
pub fn render_preamble(spec: &PreambleSpec, opts: &RenderOpts) -> Result<Rendered, RenderError> {
    let node = "preamble".to_string();
    let err = |message: String| RenderError::Spec {
        node: node.clone(),
        message,
    };
    let u = &spec.user;
    if !is_user_name(&u.name) {
        return Err(err(format!("user {:?} is not a login name", u.name)));
    }
    if !is_home_path(&u.home) {
        return Err(err(format!(
            "home {:?} is not a plain absolute path",
            u.home
        )));
    }
    let mut out = Steps::default();
    out.step("# Bootstrap");
    let mut run = String::from("RUN ");
    if let Some(b) = &spec.bootstrap {
        for m in &b.cache_mount {
            if has_control(&m.dst) || m.dst.contains(char::is_whitespace) || m.dst.contains(',') {
                return Err(err(format!(
                    "distro `{}` bootstrap cache mount {:?} is not a plain path",
                    b.distro, m.dst
                )));
            }
            let sharing = cache_sharing(m.sharing.as_deref(), opts.helpers());
            run.push_str(&cache_mount_flag(&m.dst, sharing.as_deref(), None));
            run.push_str(NEXT);
        }
        if let Some(p) = b.package.iter().find(|p| !is_package_name(p)) {
            return Err(err(format!(
                "distro `{}` bootstrap package {p:?} is not a package name",
                b.distro
            )));
        }
        if has_control(&b.install_cmd) || b.workaround.iter().any(|w| has_control(w)) {
            return Err(err(format!(
                "distro `{}`: `bootstrap.install_cmd` and `workaround` must be one line each",
                b.distro
            )));
        }
        if !b.install_cmd.is_empty() && !b.package.is_empty() {
            run.push_str(&format!(
                "{} {} &&{NEXT}",
                b.install_cmd,
                b.package.join(" ")
            ));
        }
        for w in &b.workaround {
            run.push_str(&format!("{w} &&{NEXT}"));
        }
    }
    // On ostree-style images /usr/local is a link into /var; its target
    // must exist before anything installs into /usr/local/bin.
    run.push_str(
        r#"{ [ -L /usr/local ] && mkdir -p "$(readlink /usr/local)"; mkdir -p /usr/local/bin; }"#,
    );
    out.step(run);
    let (name, uid, gid, home) = (&u.name, u.uid, u.gid, &u.home);
    if u.adopted {
        out.step(format!(
            "# User {name} (uid={uid}) adopted from base image (declared in build.yml \
             distro.base_user) — no useradd needed"
        ));
    } else {
        out.step(format!(
            "RUN if ! getent passwd {uid} >/dev/null 2>&1; then \\\n      \
             (getent group {gid} >/dev/null 2>&1 || groupadd -g {gid} {name}) && \\\n      \
             useradd -m -u {uid} -g {gid} -s /bin/bash {name}; \\\n    fi"
        ));
    }
    let want = format!("{name}:{gid}:{home}");
    let why = format!(
        "ov: the account at uid {uid} is not {name} (gid {gid}, home {home}) as planned; \
         when the base image has its own account there, set the image user, uid and gid \
         to it, or declare it as base_user of the distro in build.yml"
    );
    out.step(format!(
        "RUN test \"$(getent passwd {uid} | cut -d: -f1,4,6)\" = {} || \
         {{ echo {} >&2; getent passwd {uid} >&2; exit 1; }}",
        sh_sq(&want),
        sh_sq(&why)
    ));
    out.step(format!("WORKDIR {home}"));
    out.finish(&node)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rule::preamble::{Bootstrap, CacheMount, PreambleUser};

    fn user(adopted: bool) -> PreambleUser {
        PreambleUser {
            name: "user".into(),
            uid: 1000,
            gid: 1000,
            home: "/home/user".into(),
            adopted,
        }
    }

    fn spec(bootstrap: Option<Bootstrap>, user: PreambleUser) -> PreambleSpec {
        PreambleSpec {
            parent: "base:debian:13".into(),
            bootstrap,
            user,
        }
    }

    /// build.yml's `distro.debian` of the shared fixtures.
    fn debian() -> Bootstrap {
        Bootstrap {
            distro: "debian".into(),
            install_cmd: "apt-get update && apt-get install -y --no-install-recommends".into(),
            package: vec!["curl".into(), "ca-certificates".into(), "gnupg".into()],
            cache_mount: vec![
                CacheMount {
                    dst: "/var/cache/apt".into(),
                    sharing: Some("locked".into()),
                },
                CacheMount {
                    dst: "/var/lib/apt".into(),
                    sharing: Some("locked".into()),
                },
            ],
            workaround: vec![],
        }
    }

    /// The check that the planned account is the one at the uid.
    fn check(name: &str, uid: u32, gid: u32, home: &str) -> String {
        format!(
            "RUN test \"$(getent passwd {uid} | cut -d: -f1,4,6)\" = '{name}:{gid}:{home}' || \
             {{ echo 'ov: the account at uid {uid} is not {name} (gid {gid}, home {home}) as \
             planned; when the base image has its own account there, set the image user, uid \
             and gid to it, or declare it as base_user of the distro in build.yml' >&2; \
             getent passwd {uid} >&2; exit 1; }}"
        )
    }

    /// The text of ov's `writeBootstrap` for the fixtures' Debian distro,
    /// written out from reading it (up to where it downloads `task`).
    #[test]
    fn debian_as_ov_writes_it() {
        let r =
            render_preamble(&spec(Some(debian()), user(false)), &RenderOpts::default()).unwrap();
        let want = [
            "# Bootstrap".to_string(),
            "RUN --mount=type=cache,id=ov-var-cache-apt,dst=/var/cache/apt,sharing=locked \\\n    \
             --mount=type=cache,id=ov-var-lib-apt,dst=/var/lib/apt,sharing=locked \\\n    \
             apt-get update && apt-get install -y --no-install-recommends curl ca-certificates gnupg && \\\n    \
             { [ -L /usr/local ] && mkdir -p \"$(readlink /usr/local)\"; mkdir -p /usr/local/bin; }"
                .to_string(),
            "RUN if ! getent passwd 1000 >/dev/null 2>&1; then \\\n      \
             (getent group 1000 >/dev/null 2>&1 || groupadd -g 1000 user) && \\\n      \
             useradd -m -u 1000 -g 1000 -s /bin/bash user; \\\n    fi"
                .to_string(),
            check("user", 1000, 1000, "/home/user"),
            "WORKDIR /home/user".to_string(),
        ];
        assert_eq!(r.steps, want);
        assert!(r.context_files.is_empty());
    }

    /// Fedora's bootstrap carries a workaround, run after the install.
    #[test]
    fn fedora_workaround_follows_the_install() {
        let b = Bootstrap {
            distro: "fedora".into(),
            install_cmd: "dnf install -y --setopt=install_weak_deps=False".into(),
            package: vec![
                "curl".into(),
                "ca-certificates".into(),
                "tar".into(),
                "gzip".into(),
            ],
            cache_mount: vec![CacheMount {
                dst: "/var/cache/libdnf5".into(),
                sharing: Some("locked".into()),
            }],
            workaround: vec!["rm -f /etc/yum.repos.d/terra-mesa.repo 2>/dev/null || true".into()],
        };
        let u = PreambleUser {
            name: "dev".into(),
            uid: 1500,
            gid: 1600,
            home: "/home/dev".into(),
            adopted: false,
        };
        let r = render_preamble(&spec(Some(b), u), &RenderOpts::default()).unwrap();
        assert_eq!(
            r.steps[1],
            "RUN --mount=type=cache,id=ov-var-cache-libdnf5,dst=/var/cache/libdnf5,sharing=locked \\\n    \
             dnf install -y --setopt=install_weak_deps=False curl ca-certificates tar gzip && \\\n    \
             rm -f /etc/yum.repos.d/terra-mesa.repo 2>/dev/null || true && \\\n    \
             { [ -L /usr/local ] && mkdir -p \"$(readlink /usr/local)\"; mkdir -p /usr/local/bin; }"
        );
        assert!(r.steps[2].contains("groupadd -g 1600 dev"));
        assert!(r.steps[2].contains("useradd -m -u 1500 -g 1600 -s /bin/bash dev"));
        assert_eq!(r.steps[3], check("dev", 1500, 1600, "/home/dev"));
        assert_eq!(r.steps[4], "WORKDIR /home/dev");
    }

    /// Ubuntu's base image ships `ubuntu` at uid 1000 (build.yml
    /// `base_user`): ov writes a comment instead of `useradd`.
    #[test]
    fn an_adopted_user_is_not_created() {
        let u = PreambleUser {
            name: "ubuntu".into(),
            home: "/home/ubuntu".into(),
            ..user(true)
        };
        let r = render_preamble(&spec(Some(debian()), u), &RenderOpts::default()).unwrap();
        assert_eq!(
            r.steps[2],
            "# User ubuntu (uid=1000) adopted from base image (declared in build.yml \
             distro.base_user) — no useradd needed"
        );
        assert!(!r.containerfile().contains("useradd -m"));
        assert_eq!(r.steps[3], check("ubuntu", 1000, 1000, "/home/ubuntu"));
        assert_eq!(r.steps[4], "WORKDIR /home/ubuntu");
    }

    /// No distro in build.yml: no packages, no mounts; the user still.
    #[test]
    fn without_a_distro_only_the_user() {
        let r = render_preamble(&spec(None, user(false)), &RenderOpts::default()).unwrap();
        assert_eq!(
            r.steps[1],
            "RUN { [ -L /usr/local ] && mkdir -p \"$(readlink /usr/local)\"; mkdir -p /usr/local/bin; }"
        );
        assert_eq!(r.steps.len(), 5);
    }

    /// podman 4.3's buildah hangs on two locked mounts in one RUN.
    #[test]
    fn unlocked_mounts_where_the_engine_needs_them() {
        let opts = RenderOpts {
            locked_cache_mounts: false,
        };
        let r = render_preamble(&spec(Some(debian()), user(false)), &opts).unwrap();
        assert!(!r.steps[1].contains("sharing=locked"));
        assert!(r.steps[1].contains("--mount=type=cache,id=ov-var-lib-apt,dst=/var/lib/apt \\"));
    }

    #[test]
    fn names_that_would_break_out_are_refused() {
        let bad_user = PreambleUser {
            name: "u; rm -rf /".into(),
            ..user(false)
        };
        assert!(render_preamble(&spec(None, bad_user), &RenderOpts::default()).is_err());
        let bad_home = PreambleUser {
            home: "/home/$(id)".into(),
            ..user(false)
        };
        assert!(render_preamble(&spec(None, bad_home), &RenderOpts::default()).is_err());
        let mut b = debian();
        b.install_cmd = "apt-get install\nRUN id".into();
        assert!(render_preamble(&spec(Some(b), user(false)), &RenderOpts::default()).is_err());
    }
}
