//! `devstack up | status | down` with its own ports and state dir: the registry answers, the
//! broker listens, and `down` stops exactly the processes `up` started.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use devstack::broker::free_port;

fn devstack(dir: &std::path::Path, args: &[&str]) -> (bool, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_devstack"))
        .arg("--state-dir")
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    (
        o.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

/// Runs `down` on drop, so a failing assertion does not leave the stack running.
struct Down(std::path::PathBuf);

impl Drop for Down {
    fn drop(&mut self) {
        let _ = devstack(&self.0, &["down"]);
    }
}

#[tokio::test]
async fn up_status_down() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("stack");
    let _cleanup = Down(state.clone());
    let (bp, rp) = (free_port().unwrap(), free_port().unwrap());
    let (ok, out) = devstack(
        &state,
        &[
            "up",
            "--broker-port",
            &bp.to_string(),
            "--registry-port",
            &rp.to_string(),
        ],
    );
    assert!(ok, "{out}");
    let env = std::fs::read_to_string(state.join("env")).unwrap();
    assert!(
        env.contains(&format!("SECFLOW_BOOTSTRAP=127.0.0.1:{bp}")),
        "{env}"
    );

    // A second `up` is a no-op that reports the same processes.
    let (ok, again) = devstack(
        &state,
        &[
            "up",
            "--broker-port",
            &bp.to_string(),
            "--registry-port",
            &rp.to_string(),
        ],
    );
    assert!(ok && again == out, "{again}");

    let (ok, status) = devstack(&state, &["status"]);
    assert!(ok);
    assert_eq!(status.matches("running listening").count(), 2, "{status}");

    let body = reqwest::get(format!("http://127.0.0.1:{rp}/subjects"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body, "[]");

    let st: devstack::launcher::StackState =
        serde_json::from_str(&std::fs::read_to_string(state.join("state.json")).unwrap()).unwrap();
    let (ok, down) = devstack(&state, &["down"]);
    assert!(ok, "{down}");
    assert!(
        down.contains("stopped registry") && down.contains("stopped broker"),
        "{down}"
    );
    assert!(!devstack::launcher::is_ours(&st.broker));
    assert!(!devstack::launcher::is_ours(&st.registry));
    let (_, status) = devstack(&state, &["status"]);
    assert!(status.contains("stack is down"), "{status}");
}

/// A stack left running by an older build (here: its broker binary replaced, as a rebuild with
/// new tansu patches does) is restarted by `up` instead of reused.
#[tokio::test]
async fn up_restarts_a_broker_whose_binary_was_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("stack");
    let _cleanup = Down(state.clone());
    let tansu = dir.path().join("tansu");
    std::fs::copy(devstack::broker::find_tansu().unwrap(), &tansu).unwrap();
    let (bp, rp) = (free_port().unwrap(), free_port().unwrap());
    let up = |state: &std::path::Path| {
        let o = Command::new(env!("CARGO_BIN_EXE_devstack"))
            .arg("--state-dir")
            .arg(state)
            .args(["up", "--broker-port", &bp.to_string()])
            .args(["--registry-port", &rp.to_string()])
            .env("SECFLOW_TANSU", &tansu)
            .output()
            .unwrap();
        assert!(o.status.success(), "{o:?}");
        let st: devstack::launcher::StackState =
            serde_json::from_str(&std::fs::read_to_string(state.join("state.json")).unwrap())
                .unwrap();
        st
    };
    let first = up(&state);
    assert!(devstack::launcher::runs_current_program(&first.broker));
    assert_eq!(up(&state).broker.pid, first.broker.pid, "unchanged: reused");

    // Replace the binary the way `cargo install` does: a new file renamed over the old one.
    let fresh = dir.path().join("tansu.new");
    std::fs::copy(&tansu, &fresh).unwrap();
    std::fs::rename(&fresh, &tansu).unwrap();
    assert!(!devstack::launcher::runs_current_program(&first.broker));
    let second = up(&state);
    assert_ne!(second.broker.pid, first.broker.pid, "rebuilt: restarted");
    assert!(
        !devstack::launcher::is_ours(&first.broker),
        "the old broker is stopped"
    );
    assert!(devstack::launcher::runs_current_program(&second.broker));
}
