//! What a build leaves in the engine, beyond the store: the user's tag on
//! the right image after a cached build, the cost of a no-op in engine
//! calls, and the debris of a build whose engine died under it.
//!
//! Each test gives its project an image tag of its own, so builds of the
//! same fixture elsewhere never move the tag it checks.

use crate::build::{build, built_ok, ov_for};
use crate::util::{local_fixture, Project};
use std::process::Command;

/// A copy of `deb-tasks` whose image is `localhost/ov-test/app:<unique>`;
/// the tag goes away with the value.
struct Tagged {
    project: Project,
    tag: String,
}

impl Tagged {
    fn new() -> Tagged {
        let project = Project::copy_of(&local_fixture("deb-tasks"));
        let unique = format!(
            "es{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        );
        project.edit("overthink.yml", "tag: test", &format!("tag: {unique}"));
        Tagged {
            project,
            tag: format!("localhost/ov-test/app:{unique}"),
        }
    }
}

impl Drop for Tagged {
    fn drop(&mut self) {
        let _ = Command::new("podman")
            .args(["untag", &self.tag, &self.tag])
            .output();
    }
}

/// The id `reference` points at, or `None` when the engine has no such tag.
fn image_of(reference: &str) -> Option<String> {
    let out = Command::new("podman")
        .args(["image", "inspect", "--format", "{{.Id}}", reference])
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[test]
fn an_edit_and_its_revert_leave_the_user_tag_on_the_reverted_image() {
    let t = Tagged::new();
    let ov = ov_for(t.project.path());
    built_ok(&ov);
    let first = image_of(&t.tag).expect("the first build tagged its image");
    t.project.write("layers/a/a.txt", "alpha\nand more\n");
    built_ok(&ov);
    let second = image_of(&t.tag).expect("the second build tagged its image");
    assert_ne!(first, second, "the edit did not change the image");
    t.project.write("layers/a/a.txt", "alpha\n");
    let back = built_ok(&ov);
    assert_eq!(back.count("built"), 0, "{:?}", back.events);
    assert_eq!(
        image_of(&t.tag).as_deref(),
        Some(first.as_str()),
        "a cached build left the tag on the edited image"
    );
    // Moving the tag back within one project is no fight between projects.
    assert!(
        back.warnings().is_empty(),
        "unexpected warnings: {:?}",
        back.warnings()
    );
}

#[test]
fn a_cached_build_recreates_a_removed_user_tag() {
    let t = Tagged::new();
    let ov = ov_for(t.project.path());
    built_ok(&ov);
    let id = image_of(&t.tag).expect("the build tagged its image");
    let rmi = Command::new("podman")
        .args(["rmi", &t.tag])
        .output()
        .unwrap();
    assert!(rmi.status.success(), "{rmi:?}");
    assert_eq!(image_of(&t.tag), None);
    let again = built_ok(&ov);
    assert_eq!(again.count("built"), 0, "{:?}", again.events);
    assert_eq!(
        image_of(&t.tag).as_deref(),
        Some(id.as_str()),
        "the cached build did not put the tag back"
    );
}

#[test]
fn a_no_op_build_makes_at_most_three_engine_calls() {
    let t = Tagged::new();
    let ov = ov_for(t.project.path());
    let cold = built_ok(&ov);
    assert!(
        cold.count("engine_calls") > 3,
        "a cold build cannot take 3 calls: {:?}",
        cold.summary()
    );
    let again = built_ok(&ov);
    assert_eq!(again.count("cached_local"), 4, "{:?}", again.summary());
    assert!(
        again.count("engine_calls") <= 3,
        "a no-op build made {} engine calls",
        again.count("engine_calls")
    );
}

#[test]
fn two_projects_building_one_image_name_say_so_when_they_take_the_tag() {
    let t = Tagged::new();
    let other = Project::copy_of(t.project.path());
    other.write("layers/a/a.txt", "alpha from the other project\n");
    let ov = ov_for(t.project.path());
    let ov_other = ov_for(other.path());
    built_ok(&ov);
    let mine = image_of(&t.tag).unwrap();
    let theirs = built_ok(&ov_other);
    let taken = image_of(&t.tag).unwrap();
    assert_ne!(mine, taken);
    let said = |w: &[String], from: &str| {
        w.iter()
            .any(|w| w.contains(&t.tag) && w.contains(&from[..12.min(from.len())]))
    };
    assert!(
        said(&theirs.warnings(), &mine),
        "the other project took the tag silently: {:?}",
        theirs.warnings()
    );
    // Cached here, the tag comes back, and that is said too.
    let back = build(&ov, &[]);
    assert_eq!(back.code, Some(0), "{}", back.stderr);
    assert_eq!(back.count("built"), 0);
    assert_eq!(image_of(&t.tag), Some(mine));
    assert!(
        said(&back.warnings(), &taken),
        "the tag was taken back silently: {:?}",
        back.warnings()
    );
}
