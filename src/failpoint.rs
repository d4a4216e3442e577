//! Test-only crash points, compiled only with the `failpoints` feature: when the
//! configured failpoint names this point, the process dies here at once, as `kill -9`
//! would. Tests use it to prove the exactly-once ticket flush.

pub fn hit(armed: Option<&str>, name: &str) {
    if armed == Some(name) {
        tracing::error!(failpoint = name, "failpoint hit: aborting");
        std::process::abort();
    }
}
