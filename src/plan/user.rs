//! The image user: who `USER <uid>` is, where its home is, and whether the
//! base image already ships the account. ov resolves it in two passes,
//! reproduced here as one function:
//!
//! 1. From the image's own fields, then `defaults`, then `user`/1000/1000;
//!    home `/root` for root, else `/home/<user>`. Then `user_policy`
//!    against the distro's `base_user` (build.yml): `adopt` takes it (and
//!    needs it), `auto` takes it when neither the image nor `defaults`
//!    names a user, `create` never does.
//! 2. On an internal base, every field the image does not set itself (not
//!    even through `defaults`) comes from the parent image, and so does the
//!    home when the image sets neither `user` nor `uid`.
//!
//! ov also reads an external base's `/etc/passwd` from its registry and
//! takes over an account it finds at the uid. That would make every render
//! depend on a registry fetch at plan time; instead the preamble checks at
//! build time that the account at the uid is the one planned, and fails
//! naming the fix when it is not (see BUILD.md).

use crate::load::model::Image;
use serde::Serialize;
use serde_json::Value as Json;

/// The three `user_policy` values ov accepts.
pub const POLICIES: &[&str] = &["auto", "adopt", "create"];

/// An account build.yml says a distro's base image already has
/// (`distro.<d>.base_user`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BaseUser {
    /// Login name.
    pub name: String,
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Home directory.
    pub home: String,
}

impl BaseUser {
    /// Reads `base_user` from a distro definition; `None` when it is absent
    /// or incomplete (the loader reports incomplete ones).
    pub fn from_distro(def: &Json) -> Option<BaseUser> {
        let b = def.get("base_user")?;
        let id = |k: &str| -> Option<u32> {
            let v = b.get(k)?;
            v.as_u64()
                .or_else(|| v.as_str()?.parse().ok())
                .and_then(|n| u32::try_from(n).ok())
        };
        Some(BaseUser {
            name: b.get("name")?.as_str()?.to_string(),
            uid: id("uid")?,
            gid: id("gid")?,
            home: b.get("home")?.as_str()?.to_string(),
        })
    }
}

/// The resolved image user.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ImageUser {
    /// Login name.
    pub name: String,
    /// User id (`USER <uid>`).
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Home directory: `WORKDIR`, and what `~` and `$HOME` expand to.
    pub home: String,
    /// The account comes from the distro's `base_user`: the preamble does
    /// not create it.
    pub adopted: bool,
}

/// Why a user cannot be resolved.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    /// `user_policy: adopt` on a distro without `base_user`.
    #[error("`user_policy: adopt` needs build.yml to declare `base_user` for distro {0}")]
    AdoptWithoutBaseUser(String),
}

fn default_home(name: &str) -> String {
    if name == "root" {
        "/root".into()
    } else {
        format!("/home/{name}")
    }
}

/// Resolves the user of an image from its own entry `own`, `defaults`, the
/// resolved user of its internal base (`parent`, `None` for external and
/// bootstrapped bases), its `user_policy` and its distro's `base_user`.
/// `distro` names the distro tags for the message.
pub fn resolve_user(
    own: &Image,
    defaults: &Image,
    parent: Option<&ImageUser>,
    policy: &str,
    base_user: Option<&BaseUser>,
    distro: &[String],
) -> Result<ImageUser, UserError> {
    let name = own
        .user
        .clone()
        .or_else(|| defaults.user.clone())
        .unwrap_or_else(|| "user".into());
    let mut u = ImageUser {
        uid: own.uid.or(defaults.uid).unwrap_or(1000),
        gid: own.gid.or(defaults.gid).unwrap_or(1000),
        home: default_home(&name),
        name,
        adopted: false,
    };
    let named = own.user.is_some() || defaults.user.is_some();
    let adopt = match policy {
        "adopt" => {
            Some(base_user.ok_or_else(|| UserError::AdoptWithoutBaseUser(format!("{distro:?}")))?)
        }
        "auto" if !named => base_user,
        _ => None,
    };
    if let Some(b) = adopt {
        u = ImageUser {
            name: b.name.clone(),
            uid: b.uid,
            gid: b.gid,
            home: b.home.clone(),
            adopted: true,
        };
    }
    if let Some(p) = parent {
        if own.user.is_none() {
            u.name = p.name.clone();
        }
        if own.uid.is_none() {
            u.uid = p.uid;
        }
        if own.gid.is_none() {
            u.gid = p.gid;
        }
        u.home = if u.name == "root" {
            "/root".into()
        } else if own.user.is_none() && own.uid.is_none() {
            p.home.clone()
        } else {
            format!("/home/{}", u.name)
        };
    }
    Ok(u)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img(user: Option<&str>, uid: Option<u32>) -> Image {
        Image {
            user: user.map(str::to_string),
            uid,
            ..Image::default()
        }
    }

    fn ubuntu() -> BaseUser {
        BaseUser {
            name: "ubuntu".into(),
            uid: 1000,
            gid: 1000,
            home: "/home/ubuntu".into(),
        }
    }

    #[test]
    fn defaults_then_fallbacks() {
        let u = resolve_user(&img(None, None), &Image::default(), None, "auto", None, &[]).unwrap();
        assert_eq!((u.name.as_str(), u.uid, u.gid), ("user", 1000, 1000));
        assert_eq!(u.home, "/home/user");
        assert!(!u.adopted);
        let d = img(Some("dev"), Some(1500));
        let u = resolve_user(&img(None, None), &d, None, "auto", None, &[]).unwrap();
        assert_eq!(
            (u.name.as_str(), u.uid, u.home.as_str()),
            ("dev", 1500, "/home/dev")
        );
        let u = resolve_user(&img(Some("root"), Some(0)), &d, None, "create", None, &[]).unwrap();
        assert_eq!(u.home, "/root");
    }

    #[test]
    fn policies_against_base_user() {
        let b = ubuntu();
        let auto = resolve_user(
            &img(None, None),
            &Image::default(),
            None,
            "auto",
            Some(&b),
            &[],
        );
        assert_eq!(auto.unwrap().home, "/home/ubuntu");
        // A user named anywhere (image or defaults) keeps `auto` from adopting.
        let named = resolve_user(
            &img(Some("me"), None),
            &Image::default(),
            None,
            "auto",
            Some(&b),
            &[],
        )
        .unwrap();
        assert_eq!((named.name.as_str(), named.adopted), ("me", false));
        let adopt = resolve_user(
            &img(Some("me"), None),
            &Image::default(),
            None,
            "adopt",
            Some(&b),
            &[],
        )
        .unwrap();
        assert_eq!((adopt.name.as_str(), adopt.adopted), ("ubuntu", true));
        let create = resolve_user(
            &img(None, None),
            &Image::default(),
            None,
            "create",
            Some(&b),
            &[],
        )
        .unwrap();
        assert_eq!((create.name.as_str(), create.adopted), ("user", false));
        let e = resolve_user(
            &img(None, None),
            &Image::default(),
            None,
            "adopt",
            None,
            &["debian".into()],
        );
        assert!(matches!(e, Err(UserError::AdoptWithoutBaseUser(_))));
    }

    #[test]
    fn internal_base_inherits_what_the_image_does_not_set() {
        let parent = ImageUser {
            name: "dev".into(),
            uid: 1500,
            gid: 1600,
            home: "/srv/dev".into(),
            adopted: false,
        };
        // defaults do not count as the image's own: the parent wins.
        let d = img(Some("other"), Some(7));
        let u = resolve_user(&img(None, None), &d, Some(&parent), "auto", None, &[]).unwrap();
        assert_eq!(u, parent);
        let u = resolve_user(&img(None, Some(2000)), &d, Some(&parent), "auto", None, &[]).unwrap();
        assert_eq!(
            (u.name.as_str(), u.uid, u.gid, u.home.as_str()),
            ("dev", 2000, 1600, "/home/dev")
        );
        let u = resolve_user(
            &img(Some("root"), None),
            &d,
            Some(&parent),
            "auto",
            None,
            &[],
        )
        .unwrap();
        assert_eq!((u.uid, u.home.as_str()), (1500, "/root"));
    }
}
