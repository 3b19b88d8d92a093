//! Start-up failures end the process with a message that says what to fix.

use std::process::Command;

fn serve(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_rewind"))
        .arg("serve")
        .args([
            "--grpc-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
            "--query-listen",
            "127.0.0.1:0",
        ])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_settings_and_foreign_directories_are_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, err) = serve(&[
        "--data-dir",
        dir.path().to_str().unwrap(),
        "--retention",
        "5parsecs",
    ]);
    assert!(!ok);
    assert!(
        err.contains("retention") && err.contains("unknown unit"),
        "{err}"
    );

    let (ok, err) = serve(&[
        "--data-dir",
        dir.path().to_str().unwrap(),
        "--queue-bytes",
        "1KiB",
    ]);
    assert!(!ok);
    assert!(err.contains("queue-bytes"), "{err}");

    std::fs::write(dir.path().join("thesis.tex"), "mine").unwrap();
    let (ok, err) = serve(&["--data-dir", dir.path().to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("not a rewind store"), "{err}");

    let env_file = dir.path().join("bad.toml");
    std::fs::write(&env_file, "seal_rows = \"many\"").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_rewind"))
        .arg("serve")
        .env("REWIND_CONFIG", &env_file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("seal_rows"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
