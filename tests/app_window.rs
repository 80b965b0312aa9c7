//! The desktop app in a real window under Xvfb (X11, drawn by wgpu on lavapipe): it starts,
//! generates from `--prompt`, writes a screenshot of itself to test-output/ and quits.

use std::process::Command;

#[test]
fn the_window_opens_generates_and_takes_a_screenshot() {
    let xvfb = Command::new("xvfb-run").arg("--help").output();
    assert!(xvfb.is_ok(), "xvfb-run is missing: `./build.sh deps` installs it (Debian package xvfb)");
    let out = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("test-output");
    std::fs::create_dir_all(&out).unwrap();
    let png = out.join("app.png");
    let _ = std::fs::remove_file(&png);
    let o = Command::new("timeout")
        .args(["300", "xvfb-run", "-a", "-s", "-screen 0 1280x900x24"])
        .arg(env!("CARGO_BIN_EXE_unmask"))
        .args(["app", "--prompt", "Once upon a time", "--screenshot"])
        .arg(&png)
        // X11 only: a Wayland session of the machine running the tests must not take the window.
        .env_remove("WAYLAND_DISPLAY")
        .env("WINIT_UNIX_BACKEND", "x11")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "the app exited with {}: {err}", o.status);
    // The generation ran to its end: a window surface reconfigured while a long pass ran once
    // failed it ("GPU error: ... In Surface::configure").
    assert!(!err.contains("generation failed"), "{err}");
    let img = image::open(&png).unwrap_or_else(|e| panic!("no screenshot at {}: {e}\n{err}", png.display())).to_rgba8();
    assert!(img.width() >= 800 && img.height() >= 600, "screenshot is {}x{}", img.width(), img.height());
    // Not a blank window: the fresh-commit colours or the canvas' blue must be in it.
    let distinct: std::collections::BTreeSet<[u8; 4]> = img.pixels().map(|p| p.0).collect();
    assert!(distinct.len() > 50, "the screenshot has only {} colours", distinct.len());
    let done = [0x2a, 0x4f, 0x80];
    let near = |p: &image::Rgba<u8>| (0..3).all(|i| p.0[i].abs_diff(done[i]) <= 2);
    assert!(img.pixels().filter(|p| near(p)).count() > 100, "no committed cells in the screenshot");
}
