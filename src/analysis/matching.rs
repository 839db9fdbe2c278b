//! Matching a build's steps with a baseline's, across renumbering (`[3/6]` becoming `[4/7]`),
//! stages, platforms and repeated identical instructions.

use std::collections::HashMap;

use crate::model::{Step, StepKind};

/// How a current step was paired with a baseline step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatchKind {
    /// Same LLB vertex digest: the same operation on the same inputs.
    SameVertex,
    /// Same instruction in the same stage and platform (its inputs may differ).
    SameInstruction,
    /// Same position in the same stage, instruction edited.
    Edited,
}

/// For each current step, the index of its baseline counterpart and how it was found.
/// Each baseline step is used at most once. Linear in the number of steps.
pub fn match_steps(current: &[Step], baseline: &[Step]) -> Vec<Option<(usize, MatchKind)>> {
    let mut result: Vec<Option<(usize, MatchKind)>> = vec![None; current.len()];
    let mut taken = vec![false; baseline.len()];

    let mut by_digest: HashMap<(&str, Option<&str>), Vec<usize>> = HashMap::new();
    for (i, step) in baseline.iter().enumerate().rev() {
        if let Some(d) = step.vertex_digest.as_deref() {
            by_digest
                .entry((d, step.platform.as_deref()))
                .or_default()
                .push(i);
        }
    }
    for (i, step) in current.iter().enumerate() {
        if let Some(d) = step.vertex_digest.as_deref()
            && let Some(candidates) = by_digest.get_mut(&(d, step.platform.as_deref()))
            && let Some(j) = candidates.pop()
        {
            taken[j] = true;
            result[i] = Some((j, MatchKind::SameVertex));
        }
    }

    // Repeated identical instructions pair up in order of appearance.
    let mut by_instruction: HashMap<InstructionKey<'_>, Vec<usize>> = HashMap::new();
    for (j, step) in baseline.iter().enumerate().rev() {
        if !taken[j] {
            by_instruction
                .entry(instruction_key(step))
                .or_default()
                .push(j);
        }
    }
    for (i, step) in current.iter().enumerate() {
        if result[i].is_some() {
            continue;
        }
        if let Some(candidates) = by_instruction.get_mut(&instruction_key(step))
            && let Some(j) = candidates.pop()
        {
            taken[j] = true;
            result[i] = Some((j, MatchKind::SameInstruction));
        }
    }

    // What is left: an edited instruction at the same place of the same stage. A step whose
    // instruction the record does not give (a plain log's step that never started) can only
    // be matched by its place, whatever the instruction's kind.
    let mut by_position: HashMap<PositionKey<'_>, usize> = HashMap::new();
    let mut by_place: HashMap<PositionKey<'_>, usize> = HashMap::new();
    for (j, step) in baseline.iter().enumerate() {
        if !taken[j] {
            by_position.entry(position_key(step)).or_insert(j);
            by_place.entry(place_key(step)).or_insert(j);
        }
    }
    for (i, step) in current.iter().enumerate() {
        if result[i].is_some() || step.index.is_none() {
            continue;
        }
        let found = if step.instruction.is_empty() {
            by_place.get(&place_key(step))
        } else {
            by_position.get(&position_key(step))
        };
        if let Some(&j) = found
            && !taken[j]
        {
            taken[j] = true;
            result[i] = Some((j, MatchKind::Edited));
        }
    }
    result
}

type InstructionKey<'a> = (Option<&'a str>, Option<&'a str>, StepKind, String);
type PositionKey<'a> = (
    Option<&'a str>,
    Option<&'a str>,
    StepKind,
    Option<u32>,
    Option<u32>,
);

fn place_key(step: &Step) -> PositionKey<'_> {
    (
        step.platform.as_deref(),
        step.stage.as_deref(),
        StepKind::Other,
        step.index,
        step.total,
    )
}

fn instruction_key(step: &Step) -> InstructionKey<'_> {
    (
        step.platform.as_deref(),
        step.stage.as_deref(),
        step.kind,
        normalize(&step.instruction, step.kind),
    )
}

fn position_key(step: &Step) -> PositionKey<'_> {
    (
        step.platform.as_deref(),
        step.stage.as_deref(),
        step.kind,
        step.index,
        step.total,
    )
}

/// Whitespace folded; a FROM's pinned digest dropped (the base moving is reported separately).
fn normalize(instruction: &str, kind: StepKind) -> String {
    let folded = instruction.split_whitespace().collect::<Vec<_>>().join(" ");
    if kind == StepKind::From {
        return folded.split('@').next().unwrap_or(&folded).to_string();
    }
    folded
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(name: &str, index: u32, total: u32, digest: Option<&str>) -> Step {
        let instruction = name.to_string();
        Step {
            name: format!("[{index}/{total}] {name}"),
            index: Some(index),
            total: Some(total),
            kind: StepKind::from_keyword(name.split(' ').next().unwrap()),
            instruction,
            vertex_digest: digest.map(str::to_string),
            ..Step::default()
        }
    }

    #[test]
    fn survives_an_inserted_step_and_repeats() {
        let baseline = vec![
            step("WORKDIR /app", 2, 5, None),
            step("RUN make", 3, 5, None),
            step("RUN make", 4, 5, None),
            step("RUN pip install x==1", 5, 5, None),
        ];
        let current = vec![
            step("WORKDIR /app", 2, 6, None),
            step("COPY new .", 3, 6, None),
            step("RUN make", 4, 6, None),
            step("RUN make", 5, 6, None),
            step("RUN pip install x==2", 6, 6, None),
        ];
        let m = match_steps(&current, &baseline);
        assert_eq!(m[0], Some((0, MatchKind::SameInstruction)));
        assert_eq!(m[1], None);
        assert_eq!(m[2], Some((1, MatchKind::SameInstruction)));
        assert_eq!(m[3], Some((2, MatchKind::SameInstruction)));
        // Edited in place is only recognized at the same position of the same stage.
        assert_eq!(m[4], None);
    }

    #[test]
    fn digests_win_and_edits_pair_by_position() {
        let baseline = vec![
            step("RUN a", 2, 3, Some("d1")),
            step("RUN b==1", 3, 3, None),
        ];
        let current = vec![
            step("RUN a --changed-name", 2, 3, Some("d1")),
            step("RUN b==2", 3, 3, None),
        ];
        let m = match_steps(&current, &baseline);
        assert_eq!(m[0], Some((0, MatchKind::SameVertex)));
        assert_eq!(m[1], Some((1, MatchKind::Edited)));
    }
}
