//! One step order whatever the inputs: stage by stage, each stage's steps by their position
//! (`[builder 3/6]` after `[builder 2/6]`).
//!
//! BuildKit reports vertices in the order it reaches them (often the final stage first), and
//! a plain log in the order they started, so the order of the steps as read depends on which
//! inputs were given. Stages are put in Dockerfile order instead, from what tells it, first
//! that is known for every stage: the Dockerfile's own list of stages, then each stage's
//! first Dockerfile line (provenance gives every step's). Whatever tells it, a stage comes
//! after the stages it uses (an input of one of its steps, or `--from=STAGE`); stages that
//! nothing else orders come in `stage-N` order, then by name. Platforms come one after the
//! other, in name order.

use std::collections::{BTreeSet, HashMap};

use crate::model::Step;

/// A stage of one platform, and what is known of its place.
#[derive(Debug)]
struct Group {
    platform: Option<String>,
    stage: Option<String>,
    /// Index of the stage among the Dockerfile's stages.
    declared: Option<usize>,
    /// The stage's first Dockerfile line.
    line: Option<u32>,
    /// `stage-N`: the unnamed stage N.
    number: Option<usize>,
}

impl Group {
    /// Among stages nothing else orders: Dockerfile order when every stage has it, else
    /// `stage-N` order, then the name.
    fn key(&self, use_declared: bool, use_lines: bool) -> (usize, u32, usize, String) {
        (
            if use_declared {
                self.declared.unwrap_or(usize::MAX)
            } else {
                usize::MAX
            },
            if use_lines {
                self.line.unwrap_or(u32::MAX)
            } else {
                u32::MAX
            },
            self.number.unwrap_or(usize::MAX),
            self.stage.clone().unwrap_or_default(),
        )
    }
}

/// The stages of a Dockerfile in order: `Some(name)` for `FROM ... AS name`, `None` for an
/// unnamed stage (which BuildKit calls `stage-N`).
pub fn dockerfile_stages(dockerfile: &str) -> Vec<Option<String>> {
    let mut stages = Vec::new();
    let mut continued = false;
    for line in dockerfile.lines() {
        let text = line.trim();
        let starts_instruction = !continued && !text.starts_with('#');
        continued = text.ends_with('\\');
        if !starts_instruction {
            continue;
        }
        let words: Vec<&str> = text.split_whitespace().collect();
        if !words
            .first()
            .is_some_and(|w| w.eq_ignore_ascii_case("FROM"))
        {
            continue;
        }
        let name = words
            .iter()
            .position(|w| w.eq_ignore_ascii_case("AS"))
            .and_then(|at| words.get(at + 1))
            .map(|name| name.to_string());
        stages.push(name);
    }
    stages
}

/// Puts `steps` in the one order; `dockerfile` is the Dockerfile's text, when known.
pub fn dockerfile_order(steps: &mut Vec<Step>, dockerfile: Option<&str>) {
    if steps.len() < 2 {
        return;
    }
    let declared_stages = dockerfile.map(dockerfile_stages);
    let mut groups: Vec<Group> = Vec::new();
    let mut group_of: Vec<usize> = Vec::with_capacity(steps.len());
    for step in steps.iter() {
        let at = match groups
            .iter()
            .position(|g| g.platform == step.platform && g.stage == step.stage)
        {
            Some(at) => at,
            None => {
                groups.push(Group {
                    platform: step.platform.clone(),
                    stage: step.stage.clone(),
                    declared: declared_stages
                        .as_deref()
                        .and_then(|stages| declared_index(stages, step.stage.as_deref())),
                    line: None,
                    number: step.stage.as_deref().and_then(stage_number),
                });
                groups.len() - 1
            }
        };
        if let Some(line) = step.dockerfile_line {
            let group = &mut groups[at];
            group.line = Some(group.line.map_or(line, |l| l.min(line)));
        }
        group_of.push(at);
    }
    let use_declared = groups.iter().all(|g| g.declared.is_some());
    let use_lines = !use_declared && groups.iter().all(|g| g.line.is_some());

    let uses = stage_uses(steps, &group_of, &groups);
    let rank = ranks(&groups, &uses, use_declared, use_lines);

    let mut keyed: Vec<((usize, u32), Step)> = std::mem::take(steps)
        .into_iter()
        .zip(group_of)
        .map(|(step, g)| ((rank[g], step.index.unwrap_or(u32::MAX)), step))
        .collect();
    // Stable: steps without a position keep their order at the end of their stage.
    keyed.sort_by_key(|(key, _)| *key);
    steps.extend(keyed.into_iter().map(|(_, step)| step));
}

/// The place of a stage among the Dockerfile's: by name, or `stage-N`, or the only stage of
/// a single-stage Dockerfile (BuildKit then shows no stage).
fn declared_index(stages: &[Option<String>], stage: Option<&str>) -> Option<usize> {
    match stage {
        None => (stages.len() == 1).then_some(0),
        Some(name) => stages
            .iter()
            .position(|s| s.as_deref() == Some(name))
            .or_else(|| stage_number(name).filter(|n| *n < stages.len())),
    }
}

/// `stage-2` → 2.
fn stage_number(stage: &str) -> Option<usize> {
    stage.strip_prefix("stage-")?.parse().ok()
}

/// For each group, the groups of the same platform it uses.
fn stage_uses(steps: &[Step], group_of: &[usize], groups: &[Group]) -> Vec<BTreeSet<usize>> {
    let mut produced_by: HashMap<&str, usize> = HashMap::new();
    for (step, &g) in steps.iter().zip(group_of) {
        if let Some(digest) = &step.vertex_digest {
            produced_by.insert(digest.as_str(), g);
        }
    }
    let mut uses = vec![BTreeSet::new(); groups.len()];
    for (step, &g) in steps.iter().zip(group_of) {
        for input in &step.inputs {
            if let Some(&h) = produced_by.get(input.as_str())
                && h != g
            {
                uses[g].insert(h);
            }
        }
        for name in from_stages(&step.instruction) {
            let used = groups.iter().position(|other| {
                other.platform == groups[g].platform
                    && (other.stage.as_deref() == Some(name)
                        || name.parse::<usize>().is_ok_and(|n| other.number == Some(n)))
            });
            if let Some(h) = used.filter(|h| *h != g) {
                uses[g].insert(h);
            }
        }
    }
    uses
}

/// Stage names an instruction reads from: `COPY --from=NAME`, `RUN --mount=...,from=NAME`.
fn from_stages(instruction: &str) -> Vec<&str> {
    let mut names = Vec::new();
    // The keyword, then its flags.
    for word in instruction.split_whitespace().skip(1) {
        if !word.starts_with("--") {
            // Flags come first; the arguments after them are the command's own.
            break;
        }
        if let Some(name) = word.strip_prefix("--from=") {
            names.push(name);
        } else if let Some(mount) = word.strip_prefix("--mount=") {
            names.extend(mount.split(',').filter_map(|kv| kv.strip_prefix("from=")));
        }
    }
    names
}

/// Each group's place: platforms in name order; within one, a stage after the stages it uses,
/// ties broken by [`Group::key`]. A cycle (which no Dockerfile has) is broken at the smallest key.
fn ranks(
    groups: &[Group],
    uses: &[BTreeSet<usize>],
    use_declared: bool,
    use_lines: bool,
) -> Vec<usize> {
    let mut platforms: Vec<&Option<String>> = groups.iter().map(|g| &g.platform).collect();
    platforms.sort();
    platforms.dedup();
    let mut rank = vec![0; groups.len()];
    let mut next = 0;
    for platform in platforms {
        let mut left: Vec<usize> = (0..groups.len())
            .filter(|&g| &groups[g].platform == platform)
            .collect();
        while !left.is_empty() {
            let ready = left
                .iter()
                .copied()
                .filter(|&g| uses[g].iter().all(|h| !left.contains(h)));
            let candidates: Vec<usize> = match ready.clone().next() {
                Some(_) => ready.collect(),
                None => left.clone(),
            };
            let chosen = candidates
                .into_iter()
                .min_by_key(|&g| groups[g].key(use_declared, use_lines))
                .unwrap_or(left[0]);
            rank[chosen] = next;
            next += 1;
            left.retain(|&g| g != chosen);
        }
    }
    rank
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(stage: Option<&str>, index: u32, instruction: &str) -> Step {
        Step {
            name: format!(
                "[{}{index}/9] {instruction}",
                stage.map(|s| format!("{s} ")).unwrap_or_default()
            ),
            stage: stage.map(str::to_string),
            index: Some(index),
            total: Some(9),
            instruction: instruction.into(),
            ..Step::default()
        }
    }

    fn names(steps: &[Step]) -> Vec<String> {
        steps.iter().map(|s| s.name.clone()).collect()
    }

    const DOCKERFILE: &str = "FROM busybox AS zeta\nRUN a\n\nFROM busybox AS alpha\nRUN b\n\
                              FROM alpha AS final\nCOPY --from=zeta /a /a\n";

    #[test]
    fn the_order_is_the_same_whatever_the_order_read() {
        let final_copy = step(Some("final"), 1, "COPY --from=zeta /a /a");
        let zeta = step(Some("zeta"), 2, "RUN a");
        let alpha = step(Some("alpha"), 2, "RUN b");
        let zeta_from = step(Some("zeta"), 1, "FROM busybox");
        let orders = [
            vec![
                final_copy.clone(),
                zeta.clone(),
                alpha.clone(),
                zeta_from.clone(),
            ],
            vec![
                alpha.clone(),
                zeta_from.clone(),
                zeta.clone(),
                final_copy.clone(),
            ],
            vec![
                zeta.clone(),
                final_copy.clone(),
                zeta_from.clone(),
                alpha.clone(),
            ],
        ];
        // With the Dockerfile: its stage order.
        for order in &orders {
            let mut steps = order.clone();
            dockerfile_order(&mut steps, Some(DOCKERFILE));
            assert_eq!(
                names(&steps),
                [
                    "[zeta 1/9] FROM busybox",
                    "[zeta 2/9] RUN a",
                    "[alpha 2/9] RUN b",
                    "[final 1/9] COPY --from=zeta /a /a"
                ]
            );
        }
        // Without it: a stage after the stages it uses, the others by name.
        for order in &orders {
            let mut steps = order.clone();
            dockerfile_order(&mut steps, None);
            assert_eq!(
                names(&steps),
                [
                    "[alpha 2/9] RUN b",
                    "[zeta 1/9] FROM busybox",
                    "[zeta 2/9] RUN a",
                    "[final 1/9] COPY --from=zeta /a /a"
                ]
            );
        }
    }

    #[test]
    fn lines_order_stages_when_every_stage_has_one_and_inputs_link_them() {
        let mut late = step(Some("builder"), 1, "RUN make");
        late.dockerfile_line = Some(2);
        late.vertex_digest = Some("sha256:b".into());
        let mut early = step(Some("runtime"), 1, "COPY /x /x");
        early.dockerfile_line = Some(9);
        early.inputs = vec!["sha256:b".into()];
        let mut steps = vec![early, late];
        dockerfile_order(&mut steps, None);
        assert_eq!(
            names(&steps),
            ["[builder 1/9] RUN make", "[runtime 1/9] COPY /x /x"]
        );
    }

    #[test]
    fn unnamed_stages_and_mount_sources() {
        assert_eq!(
            dockerfile_stages("FROM a\nRUN x \\\n  FROM not-a-stage\nFROM b as Named\n"),
            [None, Some("Named".to_string())]
        );
        assert_eq!(
            from_stages("RUN --mount=type=cache,from=deps,target=/c --network=none make --from=x"),
            ["deps"]
        );
        let mut steps = vec![
            step(Some("stage-1"), 1, "RUN --mount=from=0,target=/t true"),
            step(Some("stage-0"), 1, "RUN true"),
        ];
        dockerfile_order(&mut steps, None);
        assert_eq!(steps[0].stage.as_deref(), Some("stage-0"));
    }
}
