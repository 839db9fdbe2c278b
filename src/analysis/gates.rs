//! `--fail-on` gates: conditions on a report that turn into a non-zero exit with a one-line
//! reason.
//!
//! Syntax (comma-separated, or the option repeated):
//! `hit-ratio-drop>POINTS`, `hit-ratio<PERCENT`, `pull-bytes>SIZE` (`500MB`, `1.5GB`, bytes),
//! `rebuilt>N`, `regression` (any step cached before, rebuilt now), `regression:TEXT` (a step
//! whose name contains TEXT regressed), `diagnosis:KIND` (e.g. `diagnosis:cache-not-delivered`),
//! `failed` (the build failed). A `diagnosis:` kind this cachehit does not know is a syntax
//! error listing the known ones, and so is a ratio over 100 %: either would never trip. A
//! `regression:` text that no step of the build or its baseline contains is reported among
//! the gates not evaluated (a warning on every run).

use crate::model::{BuildStatus, Transition};
use crate::report::{DiagnosisKind, Report};

#[derive(Clone, Debug, PartialEq)]
pub enum Gate {
    HitRatioDrop(f64),
    HitRatioBelow(f64),
    PullBytesAbove(u64),
    RebuiltAbove(u32),
    AnyRegression,
    RegressionOf(String),
    Diagnosis(DiagnosisKind),
    BuildFailed,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid --fail-on condition `{condition}`: {why}")]
pub struct GateSyntaxError {
    pub condition: String,
    pub why: String,
}

pub fn parse_gates(specs: &[String]) -> Result<Vec<Gate>, GateSyntaxError> {
    specs
        .iter()
        .flat_map(|s| s.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(parse_gate)
        .collect()
}

fn parse_gate(condition: &str) -> Result<Gate, GateSyntaxError> {
    let error = |why: &str| GateSyntaxError {
        condition: condition.to_string(),
        why: why.to_string(),
    };
    let number = |text: &str| -> Result<f64, GateSyntaxError> {
        text.trim()
            .trim_end_matches('%')
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite() && *n >= 0.0)
            .ok_or_else(|| error("expected a non-negative number"))
    };
    // A ratio is 0 to 100 %: a limit outside that range can never trip, or always does.
    let percent = |text: &str, what: &str| -> Result<f64, GateSyntaxError> {
        let n = number(text)?;
        if n > 100.0 {
            return Err(error(&format!(
                "{what} is at most 100 (a percentage); {n} can never be reached"
            )));
        }
        Ok(n)
    };
    if let Some(v) = condition.strip_prefix("hit-ratio-drop>") {
        return Ok(Gate::HitRatioDrop(percent(v, "a drop in points")?));
    }
    if let Some(v) = condition.strip_prefix("hit-ratio<") {
        return Ok(Gate::HitRatioBelow(percent(v, "the hit ratio")?));
    }
    if let Some(v) = condition.strip_prefix("pull-bytes>") {
        return parse_size(v)
            .map(Gate::PullBytesAbove)
            .ok_or_else(|| error("expected a size such as 500MB, 1.5GB or a number of bytes"));
    }
    if let Some(v) = condition.strip_prefix("rebuilt>") {
        return v
            .trim()
            .parse()
            .map(Gate::RebuiltAbove)
            .map_err(|_| error("expected a whole number"));
    }
    if condition == "regression" {
        return Ok(Gate::AnyRegression);
    }
    if let Some(v) = condition.strip_prefix("regression:") {
        if v.trim().is_empty() {
            return Err(error(
                "expected the text of a step after `regression:` (e.g. `regression:npm ci`)",
            ));
        }
        return Ok(Gate::RegressionOf(v.to_string()));
    }
    if let Some(v) = condition.strip_prefix("diagnosis:") {
        return DiagnosisKind::known(v.trim())
            .map(Gate::Diagnosis)
            .ok_or_else(|| {
                error(&format!(
                    "unknown diagnosis kind `{}`; known kinds: {}",
                    v.trim(),
                    DiagnosisKind::known_list()
                ))
            });
    }
    if condition == "failed" {
        return Ok(Gate::BuildFailed);
    }
    Err(error(
        "known conditions: hit-ratio-drop>N, hit-ratio<N, pull-bytes>SIZE, rebuilt>N, regression, regression:STEP, diagnosis:KIND, failed",
    ))
}

/// Decimal units (`kB`, `MB`, `GB`), binary ones (`KiB`, `MiB`, `GiB`), or plain bytes.
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let factor = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" | "k" => 1e3,
        "mb" | "m" => 1e6,
        "gb" | "g" => 1e9,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    Some((number * factor).round() as u64)
}

/// Gates the report holds no evidence for, with what is missing: they cannot trip, and a
/// gate that silently passes would look like a pass.
pub fn unevaluated(gates: &[Gate], report: &Report) -> Vec<String> {
    gates
        .iter()
        .filter_map(|gate| match gate {
            Gate::HitRatioDrop(_) | Gate::AnyRegression | Gate::RegressionOf(_)
                if report.comparison.is_none() =>
            {
                Some(format!(
                    "{} not evaluated: there is no baseline to compare with",
                    gate.condition()
                ))
            }
            Gate::PullBytesAbove(_) if report.summary.pull_bytes.is_none() => Some(format!(
                "{} not evaluated: the pull cost is unknown (it needs both images' layers: \
                 provenance mode=max, or --image and a baseline)",
                gate.condition()
            )),
            Gate::HitRatioBelow(_) if report.summary.cache_hit_ratio.is_none() => Some(format!(
                "{} not evaluated: no step finished",
                gate.condition()
            )),
            // Steps change with the Dockerfile, and a failed build's later steps may be
            // unknown: a step text that names nothing is a warning on every run, not an error.
            Gate::RegressionOf(text) if !names_a_step(report, text) => Some(format!(
                "{} can never trip: no step of this build or of its baseline contains `{text}`",
                gate.condition()
            )),
            _ => None,
        })
        .collect()
}

/// Whether a step of the build, or one the baseline had and this build removed, contains `text`.
fn names_a_step(report: &Report, text: &str) -> bool {
    let removed = report
        .comparison
        .iter()
        .flat_map(|c| &c.removed_steps)
        .map(|s| s.name.as_str());
    report
        .build
        .steps
        .iter()
        .map(|s| s.name.as_str())
        .chain(removed)
        .any(|name| name.contains(text))
}

impl Gate {
    /// The condition as written on the command line.
    pub fn condition(&self) -> String {
        match self {
            Gate::HitRatioDrop(n) => format!("hit-ratio-drop>{n}"),
            Gate::HitRatioBelow(n) => format!("hit-ratio<{n}"),
            Gate::PullBytesAbove(n) => format!("pull-bytes>{n}"),
            Gate::RebuiltAbove(n) => format!("rebuilt>{n}"),
            Gate::AnyRegression => "regression".into(),
            Gate::RegressionOf(text) => format!("regression:{text}"),
            Gate::Diagnosis(kind) => format!("diagnosis:{kind}"),
            Gate::BuildFailed => "failed".into(),
        }
    }
}

/// The reasons of every gate that trips; empty when the report passes.
pub fn evaluate(gates: &[Gate], report: &Report) -> Vec<String> {
    let summary = &report.summary;
    let regressed = || {
        report
            .build
            .steps
            .iter()
            .filter(|s| s.transition == Some(Transition::Regressed))
    };
    gates
        .iter()
        .filter_map(|gate| match gate {
            Gate::HitRatioDrop(limit) => {
                let change = report.comparison.as_ref()?.hit_ratio_change_points?;
                (-change > *limit)
                    .then(|| format!("hit ratio dropped {:.1} points (limit {limit})", -change))
            }
            Gate::HitRatioBelow(limit) => {
                let ratio = summary.cache_hit_ratio? * 100.0;
                (ratio < *limit).then(|| format!("hit ratio {ratio:.1}% is below {limit}%"))
            }
            Gate::PullBytesAbove(limit) => {
                let bytes = summary.pull_bytes?;
                (bytes > *limit).then(|| {
                    format!(
                        "upgrade pull of {} exceeds {}",
                        crate::report::format_bytes(bytes),
                        crate::report::format_bytes(*limit)
                    )
                })
            }
            Gate::RebuiltAbove(limit) => {
                let n = summary.steps_rebuilt + summary.steps_failed;
                (n > *limit).then(|| format!("{n} steps rebuilt (limit {limit})"))
            }
            Gate::AnyRegression => {
                let names: Vec<&str> = regressed().map(|s| s.name.as_str()).collect();
                (!names.is_empty()).then(|| {
                    format!(
                        "{} step(s) regressed from cached to rebuilt: {}",
                        names.len(),
                        names.join(", ")
                    )
                })
            }
            Gate::RegressionOf(text) => regressed()
                .find(|s| s.name.contains(text.as_str()))
                .map(|s| format!("`{}` regressed from cached to rebuilt", s.name)),
            Gate::Diagnosis(kind) => report
                .diagnoses
                .iter()
                .find(|d| &d.kind == kind)
                .map(|d| format!("{}: {}", d.kind, d.message)),
            Gate::BuildFailed => (report.build.build.status == BuildStatus::Failed)
                .then(|| "the build failed".to_string()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax() {
        let gates = parse_gates(&[
            "hit-ratio-drop>10, pull-bytes>500MB".into(),
            "regression:install".into(),
        ])
        .unwrap();
        assert_eq!(
            gates,
            vec![
                Gate::HitRatioDrop(10.0),
                Gate::PullBytesAbove(500_000_000),
                Gate::RegressionOf("install".into())
            ]
        );
        assert_eq!(parse_size("1.5GB"), Some(1_500_000_000));
        assert_eq!(parse_size("2MiB"), Some(2 * 1024 * 1024));
        let err = parse_gates(&["hit-ratio>5".into()]).unwrap_err();
        assert!(err.to_string().contains("hit-ratio>5"));
        assert!(parse_gates(&["pull-bytes>lots".into()]).is_err());
    }

    #[test]
    fn ratios_are_percentages_and_a_step_gate_names_a_step() {
        for bad in [
            "hit-ratio<150",
            "hit-ratio-drop>101",
            "hit-ratio<-5",
            "regression:",
            "regression: ",
        ] {
            let err = parse_gates(&[bad.into()]).unwrap_err();
            assert_eq!(err.condition, bad.trim());
        }
        let err = parse_gates(&["hit-ratio<150".into()]).unwrap_err();
        assert!(err.why.contains("at most 100"), "{err}");
        assert_eq!(
            parse_gates(&["hit-ratio<100,hit-ratio-drop>0".into()]).unwrap(),
            vec![Gate::HitRatioBelow(100.0), Gate::HitRatioDrop(0.0)]
        );
    }

    #[test]
    fn a_diagnosis_gate_names_a_known_kind() {
        assert_eq!(
            parse_gates(&["diagnosis:cache-mode-min".into()]).unwrap(),
            vec![Gate::Diagnosis(DiagnosisKind::CacheModeMin)]
        );
        let err = parse_gates(&["diagnosis:cache-not-delivred".into()]).unwrap_err();
        assert_eq!(err.condition, "diagnosis:cache-not-delivred");
        assert!(
            err.why
                .starts_with("unknown diagnosis kind `cache-not-delivred`; known kinds: "),
            "{err}"
        );
        for kind in DiagnosisKind::KNOWN {
            assert!(err.why.contains(kind.as_str()), "{err}");
            assert!(parse_gates(&[format!("diagnosis:{kind}")]).is_ok());
        }
    }
}
