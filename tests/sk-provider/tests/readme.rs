//! README.md's "Try it" block, run as written by /bin/sh from a directory
//! laid out like the workspace root (target/debug/libpam_tap_sk_provider.so
//! is the provider cargo built for these tests), with TMPDIR inside it.

mod common;

use std::process::Command;

fn try_it_block() -> String {
    let readme = include_str!("../README.md");
    let section = readme.split("\n## Try it\n").nth(1).expect("## Try it");
    let block = section.split("```sh\n").nth(1).expect("```sh block");
    block.split("\n```").next().expect("block end").to_owned()
}

#[test]
fn readme_try_it_runs() {
    let root = tempfile::tempdir().expect("tempdir");
    let profile = root.path().join("target/debug");
    std::fs::create_dir_all(&profile).expect("mkdir");
    std::os::unix::fs::symlink(
        common::provider(),
        profile.join("libpam_tap_sk_provider.so"),
    )
    .expect("symlink");
    let tmp = root.path().join("tmp");
    std::fs::create_dir(&tmp).expect("mkdir");

    let block = try_it_block();
    assert!(block.contains("ssh-keygen -Y verify"), "{block}");
    let output = Command::new("/bin/sh")
        .arg("-e")
        .arg("-c")
        .arg(&block)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", root.path())
        .env("TMPDIR", &tmp)
        .current_dir(root.path())
        .output()
        .expect("sh");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    assert!(
        stdout.contains("Good \"file\" signature for me with ED25519-SK key"),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    // The attestation and the state landed in the mktemp directory.
    let made: Vec<_> = std::fs::read_dir(&tmp).expect("tmp").collect();
    assert_eq!(made.len(), 1);
    let dir = made[0].as_ref().expect("entry").path();
    assert!(dir.join("id.attest").is_file());
    assert!(dir.join("sk-state.json").is_file());
}
