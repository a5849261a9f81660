//! Built-in corpora, deterministic for a seed: `stories`, `instructions` (question → answer
//! about a story) and `preferences` (a question with a correct and a plausible wrong answer).

mod rng;
mod story;

use pipelines::Generator;

/// Events (fewest, most) in the story a question is asked about: fewer than a `stories`
/// story's 4–9, so that a prompt is 60–130 tokens. docs/finetuning.md says why.
const QUESTION_EVENTS: (usize, usize) = (1, 3);

pub use rng::Rng;
pub use story::{Question, Story};

/// `documents` records of `generator`, each a list of fields in [`pipelines::RecordShape`]
/// column order. `stream` separates several synthetic sources under one seed.
pub fn generate(
    generator: Generator,
    documents: usize,
    seed: u64,
    stream: u64,
) -> Vec<Vec<String>> {
    let mut rng = Rng::new(seed, stream);
    (0..documents)
        .map(|_| {
            let story = match generator {
                Generator::Stories => Story::generate(&mut rng),
                _ => Story::with_events(&mut rng, QUESTION_EVENTS.0, QUESTION_EVENTS.1),
            };
            match generator {
                Generator::Stories => vec![story.text()],
                Generator::Instructions => {
                    let q = story.question(&mut rng);
                    vec![prompt(&story, &q), q.answer]
                }
                Generator::Preferences => {
                    let q = story.question(&mut rng);
                    vec![prompt(&story, &q), q.answer, q.wrong]
                }
            }
        })
        .collect()
}

fn prompt(story: &Story, q: &Question) -> String {
    format!("{}\nQuestion: {}", story.body(), q.question)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_records_other_seed_other_records() {
        for g in [
            Generator::Stories,
            Generator::Instructions,
            Generator::Preferences,
        ] {
            assert_eq!(generate(g, 20, 1, 0), generate(g, 20, 1, 0));
            assert_ne!(generate(g, 20, 1, 0), generate(g, 20, 2, 0));
            assert_ne!(generate(g, 20, 1, 0), generate(g, 20, 1, 1));
        }
    }

    #[test]
    fn records_have_the_shape_of_their_generator() {
        let pairs = generate(Generator::Instructions, 5, 9, 0);
        assert!(pairs
            .iter()
            .all(|r| r.len() == 2 && r[0].contains("\nQuestion: ")));
        let prefs = generate(Generator::Preferences, 5, 9, 0);
        assert!(prefs.iter().all(|r| r.len() == 3 && r[1] != r[2]));
        let stories = generate(Generator::Stories, 5, 9, 0);
        assert!(stories
            .iter()
            .all(|r| r.len() == 1 && r[0].contains("\nIn the end: ")));
    }
}
