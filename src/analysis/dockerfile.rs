//! Dockerfile lines for steps and findings when no provenance gave them: the Dockerfile's
//! instructions, per stage, matched to the steps' instructions.

use std::collections::HashMap;

use crate::model::StepKind;
use crate::report::Report;

struct Instruction {
    line: u32,
    stage: usize,
    text: String,
}

struct Parsed {
    instructions: Vec<Instruction>,
    /// Stage names (`AS builder`) to stage numbers.
    names: HashMap<String, usize>,
}

fn normalize(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn parse(dockerfile: &str) -> Parsed {
    let mut parsed = Parsed {
        instructions: Vec::new(),
        names: HashMap::new(),
    };
    let mut stage: Option<usize> = None;
    let mut pending: Option<(u32, String)> = None;
    for (i, raw) in dockerfile.lines().enumerate() {
        let number = i as u32 + 1;
        let trimmed = raw.trim();
        if pending.is_none() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        let (continues, content) = match trimmed.strip_suffix('\\') {
            Some(c) => (true, c),
            None => (false, trimmed),
        };
        let (line, mut text) = pending.take().unwrap_or((number, String::new()));
        if !content.starts_with('#') {
            text.push(' ');
            text.push_str(content);
        }
        if continues {
            pending = Some((line, text));
            continue;
        }
        let text = normalize(&text);
        let keyword = text.split(' ').next().unwrap_or("").to_ascii_uppercase();
        if keyword == "FROM" {
            let next = stage.map_or(0, |s| s + 1);
            stage = Some(next);
            let words: Vec<&str> = text.split(' ').collect();
            if let Some(pos) = words.iter().position(|w| w.eq_ignore_ascii_case("as"))
                && let Some(name) = words.get(pos + 1)
            {
                parsed.names.insert(name.to_string(), next);
            }
        }
        parsed.instructions.push(Instruction {
            line,
            stage: stage.unwrap_or(0),
            text,
        });
    }
    parsed
}

fn same_instruction(step: &str, kind: StepKind, dockerfile: &str) -> bool {
    let step = normalize(step);
    if kind == StepKind::From {
        // BuildKit shows the resolved reference (`@sha256:...`), not the stage name.
        let image = |t: &str| {
            t.split(' ')
                .nth(1)
                .map(|r| r.split('@').next().unwrap_or(r).to_string())
        };
        let bare = |r: Option<String>| {
            r.map(|r| {
                r.trim_start_matches("docker.io/")
                    .trim_start_matches("library/")
                    .to_string()
            })
        };
        return bare(image(&step)) == bare(image(dockerfile));
    }
    step.eq_ignore_ascii_case(dockerfile) || step == dockerfile
}

/// Fills `dockerfile_line` of steps and findings that have none.
pub fn locate_lines(report: &mut Report, dockerfile: &str) {
    let parsed = parse(dockerfile);
    let mut used = vec![false; parsed.instructions.len()];
    let mut found: HashMap<String, u32> = HashMap::new();
    for step in &mut report.build.steps {
        if let Some(line) = step.dockerfile_line {
            found.insert(step.name.clone(), line);
            continue;
        }
        let stage = step.stage.as_deref().and_then(|s| {
            parsed
                .names
                .get(s)
                .copied()
                .or_else(|| s.strip_prefix("stage-").and_then(|n| n.parse().ok()))
        });
        let hit = parsed.instructions.iter().enumerate().position(|(i, ins)| {
            !used[i]
                && stage.is_none_or(|s| s == ins.stage)
                && same_instruction(&step.instruction, step.kind, &ins.text)
        });
        if let Some(i) = hit {
            // Repeated instructions pair up in order; each platform walks the file anew.
            if step.platform.is_none() {
                used[i] = true;
            }
            step.dockerfile_line = Some(parsed.instructions[i].line);
            found.insert(step.name.clone(), parsed.instructions[i].line);
        }
    }
    for diagnosis in &mut report.diagnoses {
        if diagnosis.dockerfile_line.is_none()
            && let Some(step) = &diagnosis.step
        {
            diagnosis.dockerfile_line = found.get(step).copied();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Build, Step};

    fn step(stage: Option<&str>, instruction: &str) -> Step {
        Step {
            name: instruction.to_string(),
            stage: stage.map(str::to_string),
            kind: StepKind::from_keyword(instruction.split(' ').next().unwrap()),
            instruction: instruction.to_string(),
            ..Step::default()
        }
    }

    #[test]
    fn stages_continuations_and_repeats() {
        let dockerfile = "# syntax=docker/dockerfile:1\nFROM base:1 AS builder\nRUN make\nRUN apt-get update && \\\n    apt-get install -y x\nRUN make\n\nFROM base:1\nCOPY --from=builder /out /out\n";
        let mut report = crate::analysis::analyze(Build {
            steps: vec![
                step(Some("builder"), "FROM docker.io/library/base:1@sha256:ab"),
                step(Some("builder"), "RUN make"),
                step(
                    Some("builder"),
                    "RUN apt-get update &&     apt-get install -y x",
                ),
                step(Some("builder"), "RUN make"),
                step(Some("stage-1"), "COPY --from=builder /out /out"),
            ],
            ..Build::default()
        });
        locate_lines(&mut report, dockerfile);
        let lines: Vec<Option<u32>> = report
            .build
            .steps
            .iter()
            .map(|s| s.dockerfile_line)
            .collect();
        assert_eq!(lines, [Some(2), Some(3), Some(4), Some(6), Some(9)]);
    }
}
