//! `cache-busting-order`: a step copying the whole context (`COPY . .`) rebuilt, and a
//! dependency install after it rebuilt only because of it.

use std::collections::HashMap;

use crate::analysis::diagnose::{Evidence, total_ms};
use crate::model::{RebuildReason, Step, StepKind};
use crate::report::{Diagnosis, DiagnosisKind, Severity};

const INSTALL_WORDS: &[&str] = &[
    "install", "pip ", "pip3 ", "poetry", "uv sync", "uv pip", "npm ", "yarn", "pnpm", "bundle ",
    "composer", "go mod", "go build", "cargo ", "apt-get", "apk add", "dnf ", "yum ", "mvn ",
    "gradle", "download", "restore",
];

/// `COPY . .`, `COPY . /app`, `ADD . /src`, `COPY ./ ./`: the whole build context.
fn copies_whole_context(step: &Step) -> bool {
    if !matches!(step.kind, StepKind::Copy | StepKind::Add) || step.instruction.contains("--from") {
        return false;
    }
    let args: Vec<&str> = step
        .instruction
        .split_whitespace()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    args.len() >= 2
        && args[..args.len() - 1]
            .iter()
            .all(|a| matches!(*a, "." | "./" | "*"))
}

pub(super) fn find(evidence: &Evidence) -> Vec<Diagnosis> {
    let report = evidence.current;
    let steps = &report.build.steps;
    // Only when the copy itself was rebuilt because the context changed: on a cold build
    // everything is rebuilt anyway, and the order is not what cost the install.
    // One pass: each step rebuilt only because of its upstream inherits the copy its chain
    // starts from, so long builds with many copies stay linear.
    let mut copies: Vec<(&Step, Vec<&Step>)> = Vec::new();
    let mut chain_start: HashMap<&str, usize> = HashMap::new();
    for step in steps {
        if copies_whole_context(step)
            && step.status.did_work()
            && matches!(
                step.rebuild_reason,
                Some(RebuildReason::ContextChanged { .. })
            )
        {
            chain_start.insert(step.name.as_str(), copies.len());
            copies.push((step, Vec::new()));
        } else if let Some(RebuildReason::UpstreamRebuilt { upstream }) = &step.rebuild_reason
            && let Some(&copy) = chain_start.get(upstream.as_str())
        {
            chain_start.insert(step.name.as_str(), copy);
            let lower = step.instruction.to_lowercase();
            if step.kind == StepKind::Run && INSTALL_WORDS.iter().any(|w| lower.contains(w)) {
                copies[copy].1.push(step);
            }
        }
    }
    let mut found = Vec::new();
    for (copy, victims) in copies {
        let Some(install) = victims.first() else {
            continue;
        };
        found.push(Diagnosis {
            kind: DiagnosisKind::CacheBustingOrder,
            severity: Severity::Warning,
            message: format!(
                "`{}` copies the whole build context before `{}`: any source change invalidates the dependency install, which was rebuilt ({}).",
                copy.name,
                install.name,
                install.duration_ms.map(crate::report::format_duration).unwrap_or_else(|| "time unknown".into())
            ),
            fix: "Copy only the dependency manifests first (e.g. `COPY requirements.txt .` or `COPY package.json package-lock.json ./`), run the install, then `COPY . .`.".into(),
            step: Some(copy.name.clone()),
            dockerfile_line: copy.dockerfile_line,
            wasted_ms: Some(total_ms(victims.iter().copied())),
        });
    }
    found
}
