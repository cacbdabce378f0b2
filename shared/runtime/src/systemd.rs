//! systemd's service notification (`Type=notify` units): `READY=1` once the binary serves,
//! `STOPPING=1` when it starts its graceful stop. Without `NOTIFY_SOCKET` (not under systemd)
//! both do nothing.

use sd_notify::NotifyState;

/// Tells systemd the service is up, with a one-line status for `systemctl status`.
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// Tells systemd the graceful stop has begun.
pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}

fn send(states: &[NotifyState<'_>]) {
    if let Err(err) = sd_notify::notify(states) {
        tracing::warn!(cause = %err, "cannot notify systemd (NOTIFY_SOCKET)");
    }
}
