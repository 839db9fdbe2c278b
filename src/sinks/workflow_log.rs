//! The step's log as the runner reads it: workflow commands on standard output (masks,
//! warnings, errors, annotations on Dockerfile lines).

use crate::github::runner::{annotation, escape_data};
use crate::report::{Report, Severity};

fn say(line: &str) {
    println!("{line}");
}

/// Hides `secret` from every later line of the log; print it before anything else. The
/// runner unescapes command data, so the secret is escaped to be masked as it is.
pub fn mask(secret: &str) {
    say(&format!("::add-mask::{}", escape_data(secret)));
}

pub fn warning(message: &str) {
    say(&format!(
        "::warning title=cachehit::{}",
        escape_data(message)
    ));
}

pub fn error(message: &str) {
    say(&format!("::error title=cachehit::{}", escape_data(message)));
}

/// A gate that tripped: the reason the step fails.
pub fn gate_failed(reason: &str) {
    say(&format!(
        "::error title=cachehit gate::{}",
        escape_data(reason)
    ));
}

/// Each finding as an annotation on its Dockerfile line (`dockerfile` as the workflow names
/// it): notices as notices, the rest as warnings.
pub fn annotate(report: &Report, dockerfile: &str) {
    annotate_all(&[report], dockerfile);
}

/// The findings of several reports of one run (bake targets sharing a Dockerfile): an
/// annotation two of them make is made once.
pub fn annotate_all(reports: &[&Report], dockerfile: &str) {
    let mut made = std::collections::HashSet::new();
    for d in reports.iter().flat_map(|r| &r.diagnoses) {
        let level = if d.severity == Severity::Notice {
            "notice"
        } else {
            "warning"
        };
        let line = annotation(
            level,
            Some(dockerfile),
            d.dockerfile_line,
            &format!("cachehit: {}", d.kind),
            &format!("{} Fix: {}", d.message, d.fix),
        );
        if made.insert(line.clone()) {
            say(&line);
        }
    }
}
