//! The Dockerfile, where one is given: lines for steps and findings when no provenance gave
//! them (the instructions, per stage, matched to the steps' instructions), and each step's
//! instruction as written, before BuildKit expanded its arguments (`written_steps`).

use std::collections::HashMap;

use crate::model::{Step, StepKind};
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

/// A step's instruction as the Dockerfile writes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Written {
    pub line: u32,
    /// Whitespace folded, `${NAME}` references as written.
    pub text: String,
    /// Build arguments declared (`ARG NAME`) in the step's stage before it: they are in the
    /// environment of a `RUN`, whether the command uses them or not.
    pub args_in_scope: Vec<String>,
}

/// The Dockerfile's steps, per stage, numbered as BuildKit numbers them (`[stage 3/6]`).
#[derive(Debug, Default)]
pub struct WrittenSteps {
    stages: Vec<Vec<Written>>,
    names: HashMap<String, usize>,
}

/// Numbers the steps of each stage the way BuildKit's Dockerfile frontend does: the `FROM`
/// (unless the stage starts from `scratch` or from another stage), then every `RUN`, `COPY`,
/// `ADD` and `WORKDIR`; other instructions make no step.
pub fn written_steps(dockerfile: &str) -> WrittenSteps {
    let parsed = parse(dockerfile);
    let mut out = WrittenSteps {
        names: parsed
            .names
            .iter()
            .map(|(name, stage)| (name.to_ascii_lowercase(), *stage))
            .collect(),
        ..WrittenSteps::default()
    };
    let mut args: Vec<String> = Vec::new();
    for ins in &parsed.instructions {
        let mut words = ins.text.split(' ');
        let keyword = words.next().unwrap_or("").to_ascii_uppercase();
        if keyword == "FROM" {
            // Global ARGs are not in a stage's scope until it declares them again.
            args.clear();
            out.stages.push(Vec::new());
            let base = ins
                .text
                .split(' ')
                .skip(1)
                .find(|w| !w.starts_with("--"))
                .unwrap_or("")
                .to_ascii_lowercase();
            let from_stage = parsed
                .names
                .iter()
                .any(|(name, stage)| name.eq_ignore_ascii_case(&base) && *stage < ins.stage);
            if base == "scratch" || from_stage {
                continue;
            }
        } else if keyword == "ARG" {
            for word in words {
                let name = word.split('=').next().unwrap_or(word);
                if !name.is_empty() && !args.iter().any(|a| a == name) {
                    args.push(name.to_string());
                }
            }
            continue;
        } else if !matches!(keyword.as_str(), "RUN" | "COPY" | "ADD" | "WORKDIR") {
            continue;
        }
        if let Some(stage) = out.stages.last_mut() {
            stage.push(Written {
                line: ins.line,
                text: ins.text.clone(),
                args_in_scope: args.clone(),
            });
        }
    }
    out
}

impl WrittenSteps {
    /// The instruction `step` comes from, found by its stage and its number in the stage; `None`
    /// when the Dockerfile does not have that many steps there (another Dockerfile).
    pub fn of(&self, step: &Step) -> Option<&Written> {
        let (index, total) = (step.index? as usize, step.total? as usize);
        let stage = match step.stage.as_deref() {
            Some(name) => self
                .names
                .get(&name.to_ascii_lowercase())
                .copied()
                .or_else(|| {
                    name.strip_prefix("stage-")
                        .and_then(|n| n.parse::<usize>().ok())
                })?,
            // BuildKit names no stage when there is one, or when the name is the platform's.
            None => {
                let fits: Vec<usize> = (0..self.stages.len())
                    .filter(|s| self.stages[*s].len() == total)
                    .collect();
                match fits[..] {
                    [only] => only,
                    _ => return None,
                }
            }
        };
        let steps = self.stages.get(stage)?;
        if steps.len() != total {
            return None;
        }
        steps.get(index.checked_sub(1)?)
    }
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
